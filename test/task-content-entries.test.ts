// The naming rule of content entries (`<key>.<n>` beside the envelope `<key>`): one owner makes and recognizes
// them, the task layer stores file/dir results under those keys, and explain never compares with one.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  RESULT_WITH_REFS_FORMAT,
  contentEntryKey,
  contentEntryOwner,
  dir,
  explain,
  file,
  isContentEntryKey,
  task,
} from "../src/index.js";
import { suiteStore } from "./suite-store.js";

const suite = suiteStore();

describe("the content-entry rule", () => {
  test("a content entry's key names its envelope and position, and nothing else does", () => {
    const key = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    for (const index of [0, 1, 12]) {
      const content = contentEntryKey(key, index);
      assert.equal(content, `${key}.${index}`);
      assert.deepEqual(contentEntryOwner(content), { owner: key, index });
      assert.equal(isContentEntryKey(content), true);
    }
    for (const other of [key, "v1.2.x", ".3", "", "abc.", "abc.-1", "abc.1a"]) {
      assert.equal(contentEntryOwner(other), undefined, other);
      assert.equal(isContentEntryKey(other), false, other);
    }
    // A key that itself looks like one still has exactly one owner: the part before the last suffix.
    assert.deepEqual(contentEntryOwner("v1.2.3"), { owner: "v1.2", index: 3 });
  });

  test("a result with files is stored as content entries <key>.0, <key>.1 and the envelope <key>", async () => {
    const { store } = suite;
    const work = join(suite.root, "work");
    mkdirSync(join(work, "site"), { recursive: true });
    const build = task({ name: "bundle", store }, async (flavor: string) => {
      writeFileSync(join(work, "report.txt"), flavor);
      writeFileSync(join(work, "site", "index.html"), `<p>${flavor}</p>`);
      return { report: file(join(work, "report.txt")), site: dir(join(work, "site")) };
    });
    await build("a");
    const entries = [];
    for await (const entry of store.list("bundle")) entries.push(entry);
    const envelopes = entries.filter((entry) => !isContentEntryKey(entry.key));
    assert.equal(envelopes.length, 1);
    const envelope = envelopes[0]!;
    assert.equal(envelope.format, RESULT_WITH_REFS_FORMAT);
    const contents = entries.filter((entry) => isContentEntryKey(entry.key)).sort((a, b) => a.key.localeCompare(b.key));
    assert.deepEqual(
      contents.map((entry) => [entry.key, entry.storage]),
      [
        [contentEntryKey(envelope.key, 0), "blob"],
        [contentEntryKey(envelope.key, 1), "tree"],
      ],
    );
    for (const content of contents) assert.equal(contentEntryOwner(content.key)?.owner, envelope.key);

    // A hit reads the envelope, then restores its content entries: they become the task's most recently used
    // entries (once the batched use times are written), yet explain compares a new call with the envelope.
    await build("a");
    const deadline = Date.now() + 5000;
    while (isContentEntryKey((await first(store.list("bundle")))!.key) === false && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(isContentEntryKey((await first(store.list("bundle")))!.key), true, "a content entry is the most recently used");
    const why = await explain(build, "b");
    assert.equal(why.wouldHit, false);
    assert.equal(why.comparedWith?.key, envelope.key);
    assert.deepEqual(
      why.changes.map((change) => [change.component, change.path]),
      [["input", "flavor"]],
    );
  });
});

async function first<T>(items: AsyncIterable<T>): Promise<T | undefined> {
  for await (const item of items) return item;
  return undefined;
}
