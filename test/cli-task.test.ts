import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Cache, explain, explainEntry, openStore, task, type Store } from "../src/index.js";
import { runCli, tempDir } from "./helpers.js";

describe("cachet cache ls / explain on task entries", () => {
  const dir = tempDir();
  after(dir.cleanup);

  test("ls shows per-task entries; explain says which input changed since the previous entry", async () => {
    const store = await openStore({ cacheDir: dir.path });
    const translate = task({ name: "translate", cache: new Cache({ version: "3" }), store }, async (text: string, options: { lang: string }) => `${text}@${options.lang}`);
    await translate("hello", { lang: "fr" });
    await new Promise((resolve) => setTimeout(resolve, 10));
    await translate("hello", { lang: "de" });
    await store.close();

    const ls = await runCli(["cache", "ls", "translate", "--cache-dir", dir.path]);
    assert.equal(ls.code, 0, ls.stderr);
    assert.equal(ls.stdout.trim().split("\n").length, 3, ls.stdout); // header + 2 entries
    assert.match(ls.stdout, /translate\t[0-9a-f]{64}\t\d+B\tcomputed/);

    const explained = await runCli(["cache", "explain", "translate", "--cache-dir", dir.path]);
    assert.equal(explained.code, 0, explained.stderr);
    assert.match(explained.stdout, /version 3 \(explicit\)/);
    assert.match(explained.stdout, /input "options.lang" changed/);
    assert.doesNotMatch(explained.stdout, /input "text" changed/);

    const json = await runCli(["cache", "explain", "translate", "--json", "--cache-dir", dir.path]);
    const parsed = JSON.parse(json.stdout) as { key: string; comparedWith: string; changes: Array<{ component: string; path: string }> };
    assert.deepEqual(parsed.changes.map((c) => `${c.component}:${c.path}`), ["input:options.lang"]);
    assert.match(parsed.comparedWith, /^[0-9a-f]{64}$/);
    assert.notEqual(parsed.comparedWith, parsed.key);

    const missing = await runCli(["cache", "explain", "nobody", "--cache-dir", dir.path]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^error: no entries for "nobody"/);
  });

  test("the CLI explains with the library: both compare with the task's most recently used other entry", async () => {
    const root = `${dir.path}/recency`;
    const define = (store: Store) =>
      task({ name: "translate", cache: new Cache({ version: "3" }), store }, async (text: string, options: { lang: string }) => `${text}@${options.lang}`);
    const first = await openStore({ cacheDir: root });
    const translated = define(first);
    const fr = (await explain(translated, "hello", { lang: "fr" })).key;
    const de = (await explain(translated, "hello", { lang: "de" })).key;
    await translated("hello", { lang: "fr" });
    await new Promise((resolve) => setTimeout(resolve, 10));
    await translated("hello", { lang: "de" });
    await new Promise((resolve) => setTimeout(resolve, 10));
    await translated("hello", { lang: "fr" }); // a hit: fr is now the most recently used, de the newest created
    await first.close(); // writes the queued use times

    const store = await openStore({ cacheDir: root });
    const translate = define(store);
    const call = await explain(translate, "hello", { lang: "it" });
    assert.equal(call.comparedWith?.key, fr);
    const entry = await explainEntry(store, "translate");
    assert.equal(entry?.key, fr);
    assert.equal(entry?.comparedWith?.key, de);
    assert.deepEqual(entry?.changes.map((change) => change.path), ["options.lang"]);
    await store.put("raw", "abc1", "x");
    await store.put("raw", "abc2", "y");
    await store.close();

    const latest = await runCli(["cache", "explain", "translate", "--cache-dir", root]);
    assert.equal(latest.code, 0, latest.stderr);
    assert.equal(latest.stdout.split("\n")[0], `translate/${fr}`);
    assert.match(latest.stdout, new RegExp(`^Compared with translate/${de}: it differs from the most recent entry: input "options.lang" changed$`, "m"));

    // A key's start, as `cache ls` shows it on a terminal, names the entry.
    const byPrefix = await runCli(["cache", "explain", "translate", `${de.slice(0, 12)}…`, "--cache-dir", root]);
    assert.equal(byPrefix.code, 0, byPrefix.stderr);
    assert.equal(byPrefix.stdout.split("\n")[0], `translate/${de}`);
    assert.match(byPrefix.stdout, new RegExp(`^Compared with translate/${fr}:`, "m"));

    const ambiguous = await runCli(["cache", "explain", "raw", "abc", "--cache-dir", root]);
    assert.equal(ambiguous.code, 2);
    assert.equal(ambiguous.stderr, 'error: key "abc" matches several entries of "raw": give more of it\n');
    const unknown = await runCli(["cache", "explain", "translate", "0000", "--cache-dir", root]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /^error: no entry translate\/0000 in /);
  });
});

describe("explain on components this build did not write", () => {
  const dir = tempDir();
  after(dir.cleanup);

  test("components of another shape (another build's, or a damaged value) count as none recorded", async () => {
    const store = await openStore({ cacheDir: dir.path });
    const square = task({ name: "square", cache: new Cache({ version: "1" }), store }, async (n: number) => n * n);
    await square(2);
    await square(3);
    await store.close();
    const Database = (await import("better-sqlite3")).default;
    for (const value of ["5", '"x"', "[]", '{"inputs":5}', '{"task":"square","ignoredInputs":5}']) {
      const db = new Database(`${dir.path}/index-v1/index.sqlite`);
      db.prepare("UPDATE entries SET components = ?").run(value);
      db.close();
      const cli = await runCli(["cache", "explain", "square", "--cache-dir", dir.path]);
      assert.equal(cli.code, 0, `${value}: ${cli.stderr}`);
      assert.match(cli.stdout, /no key components were recorded/);
      const reopened = await openStore({ cacheDir: dir.path });
      const again = task({ name: "square", cache: new Cache({ version: "1" }), store: reopened }, async (n: number) => n * n);
      const explanation = await explain(again, 4);
      assert.equal(explanation.wouldHit, false);
      assert.doesNotMatch(explanation.reason ?? "", /cannot be read/, value);
      await reopened.close();
    }
  });
});
