// A damaged index never yields wrong data and never stops the cache: a changed byte makes its row a miss; a cut
// or overwritten index file is replaced by a fresh one (kept aside as corrupt-<time>.sqlite) with one warning;
// every CLI command works on such a root; `cache verify --repair` puts back what can be trusted.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, existsSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openStore, type StoreWarning } from "../src/store/index.js";
import { runCli, tempDir } from "./helpers.js";

const scratch = tempDir("cachet-damage-");
after(scratch.cleanup);
let rootCount = 0;

const valueOf = (i: number): string => `value-${i}-${"v".repeat(40)}-end`;

/** A closed cache with `count` inline entries `k-<i>` → `value-<i>-…`, checkpointed into the index file. */
async function seededRoot(count: number): Promise<string> {
  const root = join(scratch.path, `root-${rootCount++}`);
  const store = await openStore({ cacheDir: root });
  for (let i = 1; i <= count; i++) await store.put("tool", `k-${i}`, valueOf(i));
  await store.put("tool", "big", Buffer.alloc(40_000, 3)); // a blob entry, so content exists beside the index
  await store.close();
  return root;
}

const indexFile = (root: string): string => join(root, "index-v1", "index.sqlite");

function offsetsOf(file: string, text: string): number[] {
  const bytes = readFileSync(file);
  const needle = Buffer.from(text);
  const found: number[] = [];
  for (let at = bytes.indexOf(needle); at >= 0; at = bytes.indexOf(needle, at + 1)) found.push(at);
  return found;
}

function patch(file: string, offset: number, replacement: string): void {
  const bytes = readFileSync(file);
  Buffer.from(replacement).copy(bytes, offset);
  writeFileSync(file, bytes);
}

async function open(root: string) {
  const warnings: StoreWarning[] = [];
  const store = await openStore({ cacheDir: root, onWarning: (w) => warnings.push(w) });
  return { store, warnings };
}

describe("a changed byte in the index file", () => {
  test("inside a value: that entry is a miss with a warning, never the changed value; the others are intact", async () => {
    const root = await seededRoot(5);
    const [offset] = offsetsOf(indexFile(root), valueOf(3));
    assert.ok(offset !== undefined, "the value is in the index file");
    patch(indexFile(root), offset + 12, "V");
    const { store, warnings } = await open(root);
    try {
      assert.equal(await store.get("tool", "k-3"), undefined);
      assert.equal(warnings.filter((w) => w.code === "CACHET_INTEGRITY").length, 1, JSON.stringify(warnings));
      assert.match(warnings[0]!.message, /tool\/k-3/);
      for (const i of [1, 2, 4, 5]) assert.equal(Buffer.from((await store.get("tool", `k-${i}`))!).toString(), valueOf(i));
      assert.equal(await store.get("tool", "k-3"), undefined, "still a miss (the damaged row was dropped)");
    } finally {
      await store.close();
    }
  });

  test("inside a key (in the table or in its index b-tree): no other key ever answers with that value", async () => {
    const seed = await seededRoot(5);
    const offsets = offsetsOf(indexFile(seed), "k-2");
    assert.ok(offsets.length >= 2, "the key is stored in the table and in the unique index");
    for (const offset of offsets) {
      const root = join(scratch.path, `root-${rootCount++}`);
      cpSync(seed, root, { recursive: true });
      patch(indexFile(root), offset, "k-9"); // a key that was never written
      const { store } = await open(root);
      try {
        assert.equal(await store.get("tool", "k-9"), undefined, `k-9 answered after the change at ${offset}`);
        // A b-tree out of order may hide other keys too: each is its own value or a miss, never another's.
        for (const i of [1, 2, 3, 4, 5]) {
          const got = await store.get("tool", `k-${i}`);
          if (got !== undefined) assert.equal(Buffer.from(got).toString(), valueOf(i));
        }
      } finally {
        await store.close();
      }
    }
  });
});

describe("a damaged index file", () => {
  const damages: Array<[string, (file: string) => void]> = [
    ["cut in half", (file) => truncateSync(file, Math.floor(statSync(file).size / 2))],
    ["with a garbage first page", (file) => patch(file, 0, "garbage ".repeat(512))],
  ];
  for (const [label, damage] of damages) {
    test(`${label}: opening replaces it with a fresh index, keeps it aside, and warns once`, async () => {
      const root = await seededRoot(300);
      damage(indexFile(root));
      const { store, warnings } = await open(root);
      try {
        for (let i = 1; i <= 300; i++) {
          const got = await store.get("tool", `k-${i}`);
          if (got !== undefined) assert.equal(Buffer.from(got).toString(), valueOf(i));
        }
        await store.put("tool", "after", "written after the damage");
        assert.equal(Buffer.from((await store.get("tool", "after"))!).toString(), "written after the damage");
        const replaced = warnings.filter((w) => w.code === "CACHET_INDEX_REPLACED");
        assert.equal(replaced.length, 1, JSON.stringify(warnings));
        assert.match(replaced[0]!.message, /corrupt-[0-9a-z-]+\.sqlite/);
        assert.match(replaced[0]!.message, /cache verify --repair/);
        assert.equal(replaced[0]!.message.includes("\n"), false);
      } finally {
        await store.close();
      }
      const kept = readdirSync(join(root, "index-v1")).filter((name) => /^corrupt-.*\.sqlite$/.test(name));
      assert.equal(kept.length, 1);
      assert.match(readFileSync(join(root, "index-v1", "CURRENT"), "utf8"), /^index-[0-9a-z-]+\.sqlite\n$/);
    });

    test(`${label}: ls, verify, prune and clean --force work, and verify --repair puts back what verifies`, async () => {
      const root = await seededRoot(300);
      damage(indexFile(root));
      const env = { CACHET_CACHE_DIR: root };
      const ls = await runCli(["cache", "ls"], env);
      assert.equal(ls.code, 0, ls.stderr);
      assert.match(ls.stderr, /damaged/);
      assert.equal(ls.stderr.split("\n").filter((l) => /warning:/.test(l)).length, 1, ls.stderr);

      const verify = await runCli(["cache", "verify"], env);
      assert.equal(verify.code, 0, verify.stderr);
      assert.match(verify.stderr, /damaged index cop(y|ies) .*--repair/);

      // prune must keep the content the kept copy refers to, so repair can still use it
      const prune = await runCli(["cache", "prune"], env);
      assert.equal(prune.code, 0, prune.stderr);

      const repair = await runCli(["cache", "verify", "--repair", "--json"], env);
      assert.equal(repair.code, 0, repair.stderr);
      const report = JSON.parse(repair.stdout) as { recovered: Array<{ recovered: number; readable: number }> };
      const recovered = report.recovered.reduce((sum, r) => sum + r.recovered, 0);
      if (label === "cut in half") assert.ok(recovered > 0, `cut index: some rows recovered (${repair.stdout})`);
      const { store, warnings } = await open(root);
      try {
        let found = 0;
        for (let i = 1; i <= 300; i++) {
          const got = await store.get("tool", `k-${i}`);
          if (got === undefined) continue;
          found++;
          assert.equal(Buffer.from(got).toString(), valueOf(i));
        }
        assert.equal(found, Math.min(300, recovered), "every recovered inline entry reads back whole");
        assert.deepEqual(warnings, []);
      } finally {
        await store.close();
      }
      assert.deepEqual(readdirSync(join(root, "index-v1")).filter((name) => name.startsWith("corrupt-")), []);

      damage(join(root, "index-v1", readFileSync(join(root, "index-v1", "CURRENT"), "utf8").trim()));
      const clean = await runCli(["--force", "cache", "clean"], env);
      assert.equal(clean.code, 0, clean.stderr);
      assert.deepEqual(readdirSync(root).sort(), [".lock", ".lock-queue"]);
    });
  }

  test("a CURRENT that names a missing file: the real index is kept aside, prune keeps its content, repair brings it back", async () => {
    const root = await seededRoot(50);
    // A first damage moves the index to a new name, so CURRENT exists; then one character of CURRENT changes.
    truncateSync(indexFile(root), 100);
    {
      const { store } = await open(root);
      for (let i = 1; i <= 50; i++) await store.put("tool", `k-${i}`, valueOf(i));
      await store.put("tool", "big", Buffer.alloc(40_000, 3));
      await store.close();
    }
    const current = readFileSync(join(root, "index-v1", "CURRENT"), "utf8").trim();
    writeFileSync(join(root, "index-v1", "CURRENT"), `${current.replace(/[0-9a-f](?=\.sqlite$)/, (c) => (c === "0" ? "1" : "0"))}\n`);
    const { store, warnings } = await open(root);
    try {
      assert.equal(await store.get("tool", "k-1"), undefined);
      assert.equal(warnings.filter((w) => w.code === "CACHET_INDEX_REPLACED").length, 1, JSON.stringify(warnings));
      assert.match(warnings[0]!.message, /does not exist/);
    } finally {
      await store.close();
    }
    const prune = await runCli(["cache", "prune"], { CACHET_CACHE_DIR: root });
    assert.equal(prune.code, 0, prune.stderr);
    const repair = await runCli(["cache", "verify", "--repair"], { CACHET_CACHE_DIR: root });
    assert.equal(repair.code, 0, repair.stderr);
    const reopened = await open(root);
    try {
      for (let i = 1; i <= 50; i++) assert.equal(Buffer.from((await reopened.store.get("tool", `k-${i}`))!).toString(), valueOf(i));
      assert.equal((await reopened.store.get("tool", "big"))?.byteLength, 40_000, "the blob survived the prune");
    } finally {
      await reopened.store.close();
    }
  });

  test("a CURRENT that names no index file starts a fresh index", async () => {
    const root = await seededRoot(3);
    writeFileSync(join(root, "index-v1", "CURRENT"), "../../etc/passwd\n");
    const { store, warnings } = await open(root);
    try {
      await store.put("tool", "x", "y");
      assert.equal(Buffer.from((await store.get("tool", "x"))!).toString(), "y");
      assert.equal(warnings.filter((w) => w.code === "CACHET_INDEX_REPLACED").length, 1);
    } finally {
      await store.close();
    }
    assert.equal(existsSync("/etc/passwd"), true);
  });
});
