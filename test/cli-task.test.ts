import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Cache, openStore, task } from "../src/index.js";
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
    const parsed = JSON.parse(json.stdout) as { changes: Array<{ component: string; path: string }> };
    assert.deepEqual(parsed.changes.map((c) => `${c.component}:${c.path}`), ["input:options.lang"]);

    const missing = await runCli(["cache", "explain", "nobody", "--cache-dir", dir.path]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^error: no entries for "nobody"/);
  });
});
