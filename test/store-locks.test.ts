// Locks with real processes: `cache clean`/`cache prune` wait for processes that have the cache open (saying so,
// and that --force skips the wait), give up after CACHET_LOCK_TIMEOUT, and never wait for a dead process;
// `Store.lockKey` makes a second process wait and hands over as soon as the holder dies.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import Database from "better-sqlite3";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { openStore } from "../src/store/index.js";
import { assertCleaned, tempDir } from "./helpers.js";
import { CLI_PATH, runCliToEnd, startNode, workerPath, type Child } from "./workers/child.js";

const HOLDER = workerPath("lock-holder.mjs");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const scratch = tempDir("cachet-locks-");
after(() => scratch.cleanup());
let rootCount = 0;

/** A fresh cache root with a few entries. */
async function populatedRoot(): Promise<string> {
  const root = join(scratch.path, `cache-${rootCount++}`);
  const store = await openStore({ cacheDir: root });
  await store.put("tool", "small", "inline value");
  await store.put("tool", "big", Buffer.alloc(64 * 1024, 7));
  await store.close();
  return root;
}

/** Starts a process that keeps the store at `root` open until its stdin closes. */
async function holdStore(root: string): Promise<Child> {
  const holder = startNode([HOLDER, "store", root]);
  try {
    await holder.waitFor("ready");
  } catch (error) {
    await holder.kill9();
    throw error;
  }
  return holder;
}

async function entryCount(root: string): Promise<number> {
  const store = await openStore({ cacheDir: root, lockTimeout: 5 });
  try {
    let n = 0;
    for await (const _ of store.list()) n++;
    return n;
  } finally {
    await store.close();
  }
}

/** Rows in the index file, read directly (a store would queue behind a waiting clean). */
function indexRowCount(root: string): number {
  const db = new Database(join(root, "index-v1", "index.sqlite"), { readonly: true });
  try {
    return db.prepare("SELECT count(*) FROM entries").pluck().get() as number;
  } finally {
    db.close();
  }
}

describe("the global cache lock", () => {
  it("`cache clean` waits while another process has the cache open, says why and how to skip, and finishes after it exits", async () => {
    const root = await populatedRoot();
    const holder = await holdStore(root);
    const events: string[] = [];
    const clean = startNode([CLI_PATH, "cache", "clean"], { CACHET_CACHE_DIR: root, CACHET_LOCK_TIMEOUT: "60" });
    try {
      void holder.exit.then(() => events.push("holder exited"));
      void clean.exit.then(() => events.push("clean exited"));
      await clean.waitFor(/in use by another process/, "stderr");
      assert.match(clean.stderr(), /--force/);
      // Give clean time to do damage if it were not waiting: it must still be waiting, with the cache intact.
      await sleep(500);
      assert.equal(clean.exitedYet(), false, "clean finished while the cache was in use");
      assert.equal(indexRowCount(root), 2);
      // A waiting clean holds new users back (so a stream of them cannot starve it): a new store waits too.
      await assert.rejects(openStore({ cacheDir: root, lockTimeout: 0.3 }), { code: "CACHET_LOCK_TIMEOUT" });

      holder.endInput();
      const result = await clean.waitForExit();
      assert.deepEqual(events, ["holder exited", "clean exited"]);
      assert.equal(result.code, 0, clean.stderr());
      assert.match(clean.stderr(), /Removed \d+ entries, \d+ files \(/);
      assertCleaned(root);
    } finally {
      await Promise.all([holder.kill9(), clean.kill9()]);
    }
  });

  it("`cache clean --force` does not wait for a process that has the cache open", async () => {
    const root = await populatedRoot();
    const holder = await holdStore(root);
    try {
      const result = await runCliToEnd(["--force", "cache", "clean"], { CACHET_CACHE_DIR: root, CACHET_LOCK_TIMEOUT: "60" });
      assert.equal(result.code, 0, result.stderr);
      assert.doesNotMatch(result.stderr, /in use/);
      assert.match(result.stderr, /Removed /);
      assert.equal(holder.exitedYet(), false, "the holder should still be running: clean did not wait for it");
      assertCleaned(root);
    } finally {
      await holder.kill9();
    }
  });

  it("gives up after CACHET_LOCK_TIMEOUT with one error line that names the variable, and removes nothing", async (t) => {
    const root = await populatedRoot();
    const holder = await holdStore(root);
    try {
      for (const command of [["cache", "clean"], ["cache", "prune", "--max-size", "0"]]) {
        // A lower bound only (it cannot flake under load, which only makes the wait longer), on the monotonic
        // clock: giving up before the timeout would mean the timeout was not honoured. The CLI's deadline is on
        // Date.now(), whose millisecond steps can make a full second measure 999.x ms here; hence 999.
        const started = performance.now();
        const result = await runCliToEnd(command, { CACHET_CACHE_DIR: root, CACHET_LOCK_TIMEOUT: "1" });
        const elapsed = performance.now() - started;
        t.diagnostic(`cachet ${command.join(" ")} gave up after ${Math.round(elapsed)} ms`);
        assert.notEqual(result.code, 0);
        assert.match(result.stderr, /in use by another process/);
        const errors = result.stderr.split("\n").filter((line) => line.startsWith("error:"));
        assert.equal(errors.length, 1, result.stderr);
        assert.match(errors[0]!, /timed out after 1s .*CACHET_LOCK_TIMEOUT/);
        assert.doesNotMatch(result.stderr, /^\s+at /m, "no stack trace");
        assert.ok(elapsed >= 999, `gave up after ${elapsed} ms, before the 1 s timeout`);
      }
      assert.equal(holder.exitedYet(), false);
      assert.equal(existsSync(root), true);
    } finally {
      await holder.kill9();
    }
    assert.equal(await entryCount(root), 2);
  });

  it("is never left behind by a holder killed with SIGKILL: clean right after does not wait", async () => {
    const root = await populatedRoot();
    for (let round = 0; round < 3; round++) {
      const holder = await holdStore(root);
      const exit = await holder.kill9();
      assert.equal(exit.signal, "SIGKILL");
      // A timeout of 0 fails at once if the lock is busy: success proves it was free.
      const prune = await runCliToEnd(["cache", "prune"], { CACHET_CACHE_DIR: root, CACHET_LOCK_TIMEOUT: "0" });
      assert.equal(prune.code, 0, prune.stderr);
      assert.doesNotMatch(prune.stderr, /in use/);
    }
    const holder = await holdStore(root);
    assert.equal((await holder.kill9()).signal, "SIGKILL");
    const clean = await runCliToEnd(["cache", "clean"], { CACHET_CACHE_DIR: root, CACHET_LOCK_TIMEOUT: "0" });
    assert.equal(clean.code, 0, clean.stderr);
    assert.doesNotMatch(clean.stderr, /in use/);
    assertCleaned(root);
  });
});

describe("Store.lockKey across processes", () => {
  const lockKey = (root: string, key: string, timeoutSeconds: number): Child =>
    startNode([HOLDER, "key", root, "tool", key, String(timeoutSeconds)]);

  it("makes a second process wait, and hands the lock over as soon as the holder is SIGKILLed", async (t) => {
    const root = await populatedRoot();
    const first = lockKey(root, "k", 30);
    let second: Child | undefined;
    try {
      await first.waitFor("locked");
      second = lockKey(root, "k", 30);
      await second.waitFor("waiting");
      await sleep(300);
      assert.doesNotMatch(second.stdout(), /locked/, "the second process took a lock the first holds");
      const killedAt = Date.now();
      await first.kill9();
      // With a 30 s timeout, taking the lock at all shows the kernel released it: a stale lock would time out.
      await second.waitFor("locked");
      t.diagnostic(`second process took the key lock ${Date.now() - killedAt} ms after the holder was killed`);
      assert.equal(second.stderr(), "");
      second.endInput();
      assert.deepEqual(await second.waitForExit(), { code: 0, signal: null });
    } finally {
      await Promise.all([first.kill9(), second?.kill9()]);
    }
  });

  it("hands the lock over when the holder releases it, and does not make other keys wait", async () => {
    const root = await populatedRoot();
    const first = lockKey(root, "k", 30);
    let second: Child | undefined;
    let other: Child | undefined;
    try {
      await first.waitFor("locked");
      other = lockKey(root, "another key", 30);
      await other.waitFor("locked");
      assert.doesNotMatch(other.stdout(), /waiting/);
      second = lockKey(root, "k", 30);
      await second.waitFor("waiting");
      first.endInput();
      assert.deepEqual(await first.waitForExit(), { code: 0, signal: null });
      await second.waitFor("locked");
    } finally {
      await Promise.all([first.kill9(), second?.kill9(), other?.kill9()]);
    }
  });

  it("fails with CACHET_LOCK_TIMEOUT when the holder keeps the lock past the timeout", async () => {
    const root = await populatedRoot();
    const first = lockKey(root, "k", 30);
    let second: Child | undefined;
    try {
      await first.waitFor("locked");
      second = lockKey(root, "k", 1);
      const exit = await second.waitForExit();
      assert.equal(exit.code, 3);
      assert.match(second.stdout(), /waiting/);
      assert.match(second.stderr(), /^error CACHET_LOCK_TIMEOUT timed out after 1s/);
    } finally {
      await Promise.all([first.kill9(), second?.kill9()]);
    }
  });
});
