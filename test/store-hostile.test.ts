// Reproductions from a hostile test of the store: each case once hung, deadlocked, failed a whole command or
// could hide entries; now each ends in bounded time with a miss, a clear error or the work done.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openStore, pruneCache, type StoreWarning } from "../src/store/index.js";
import { runCli, tempDir } from "./helpers.js";

const scratch = tempDir("cachet-hostile-");
after(scratch.cleanup);
let count = 0;
const newRoot = (): string => join(scratch.path, `root-${count++}`);

describe("names and keys", () => {
  test("half of a surrogate pair is refused up front, not stored under a key no listing can read back", async () => {
    const store = await openStore({ cacheDir: newRoot() });
    try {
      const cut = "file-😀.txt".slice(0, 6); // "file-" and the first half of the emoji
      await assert.rejects(store.put("tool", cut, "v"), { code: "CACHET_INVALID_KEY", message: /surrogate/ });
      await assert.rejects(store.put(cut, "k", "v"), { code: "CACHET_INVALID_NAME", message: /surrogate/ });
      await store.put("tool", "file-😀.txt", "whole characters are fine");
      const keys: string[] = [];
      for await (const entry of store.list()) keys.push(entry.key);
      assert.deepEqual(keys, ["file-😀.txt"]);
    } finally {
      await store.close();
    }
  });
});

describe("bounded waits", () => {
  test("a stuck holder of the index's write lock makes a write fail by CACHET_LOCK_TIMEOUT, not by SQLite's own minute", { timeout: 30_000 }, async () => {
    const root = newRoot();
    const store = await openStore({ cacheDir: root, lockTimeout: 1 });
    await store.put("tool", "before", "v");
    const holder = spawn("flock", [join(root, "index-v1", "write.lock"), "sleep", "30"], { stdio: "ignore" });
    try {
      await new Promise((resolve) => setTimeout(resolve, 300));
      await assert.rejects(store.put("tool", "during", "v"), (error: Error & { code: string }) => {
        assert.equal(error.code, "CACHET_LOCK_TIMEOUT");
        assert.match(error.message, /timed out after 1s/);
        return true;
      });
    } finally {
      holder.kill("SIGKILL");
      await store.close();
    }
  });

  test("a FIFO in place of a blob is a miss with a warning, never a read that waits forever", { timeout: 30_000 }, async () => {
    const root = newRoot();
    const warnings: StoreWarning[] = [];
    const store = await openStore({ cacheDir: root, onWarning: (w) => warnings.push(w) });
    try {
      const info = await store.put("tool", "big", Buffer.alloc(40_000, 1));
      const blob = join(root, "blobs-v1", info.digest.slice(0, 2), info.digest.slice(2, 4), info.digest);
      rmSync(blob, { force: true });
      execFileSync("mkfifo", [blob]);
      assert.equal(await store.get("tool", "big"), undefined);
      assert.equal(warnings.filter((w) => w.code === "CACHET_INTEGRITY").length, 1, JSON.stringify(warnings));
    } finally {
      await store.close();
    }
  });

  test("restoring into a target under /proc fails at once instead of spinning", { timeout: 30_000 }, async () => {
    const root = newRoot();
    const source = join(root, "src");
    mkdirSync(source, { recursive: true });
    writeFileSync(join(source, "a.txt"), "a");
    const store = await openStore({ cacheDir: join(root, "cache") });
    try {
      await store.putTree("t", "k", source);
      await assert.rejects(store.linkTree("t", "k", "/proc/nonexist/out"));
    } finally {
      await store.close();
    }
  });

  test("a root opened through a symlink counts as the root this process already holds: no deadlock with a waiting clean", { timeout: 60_000 }, async () => {
    const root = newRoot();
    const link = `${root}-link`;
    const first = await openStore({ cacheDir: root });
    await first.put("tool", "k", "v");
    symlinkSync(root, link);
    const clean = runCli(["cache", "clean"], { CACHET_CACHE_DIR: root, CACHET_LOCK_TIMEOUT: "30" });
    try {
      await new Promise((resolve) => setTimeout(resolve, 500)); // the clean now waits for `first`, holding the queue
      const second = await openStore({ cacheDir: link, lockTimeout: 5 });
      assert.equal(Buffer.from((await second.get("tool", "k"))!).toString(), "v");
      await second.close();
    } finally {
      await first.close();
    }
    const result = await clean;
    assert.equal(result.code, 0, result.stderr);
  });
});

describe("prune", () => {
  test("stray files in the blob bucket's fan-out are removed, not a reason to fail", async () => {
    const root = newRoot();
    const store = await openStore({ cacheDir: root });
    const info = await store.put("tool", "big", Buffer.alloc(40_000, 1));
    await store.close();
    writeFileSync(join(root, "blobs-v1", ".DS_Store"), "junk");
    writeFileSync(join(root, "blobs-v1", info.digest.slice(0, 2), "junkfile"), "junk");
    const result = await pruneCache({ cacheDir: root });
    assert.equal(result.tally.files, 2);
    assert.deepEqual(readdirSync(join(root, "blobs-v1")), [info.digest.slice(0, 2)]);
    const reopened = await openStore({ cacheDir: root });
    try {
      assert.equal((await reopened.get("tool", "big"))?.byteLength, 40_000);
    } finally {
      await reopened.close();
    }
  });
});

describe("verify", () => {
  test("checking every entry does not count as using it (pruning by recency stays right)", async () => {
    const root = newRoot();
    const store = await openStore({ cacheDir: root });
    await store.put("tool", "small", "inline value");
    await store.put("tool", "big", Buffer.alloc(40_000, 2));
    await store.close();
    const before = await lastUses(root);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const verify = await runCli(["cache", "verify"], { CACHET_CACHE_DIR: root });
    assert.equal(verify.code, 0, verify.stderr);
    assert.deepEqual(await lastUses(root), before);
  });
});

async function lastUses(root: string): Promise<Record<string, number>> {
  const store = await openStore({ cacheDir: root });
  try {
    const uses: Record<string, number> = {};
    for await (const entry of store.list()) uses[entry.key] = entry.lastUsedAt.getTime();
    return uses;
  } finally {
    await store.close();
  }
}
