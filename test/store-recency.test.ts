// Use times order pruning exactly (to a fraction of a millisecond, in use order), and entries stamped by a clock
// that was ahead are neither kept forever by --max-age nor protected by --max-size.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { openStore, pruneCache } from "../src/store/index.js";
import { runCli, tempDir } from "./helpers.js";

const scratch = tempDir("cachet-recency-");
after(scratch.cleanup);
let rootCount = 0;
const MiB = 1024 * 1024;
const DAY = 86_400_000;

async function keys(root: string): Promise<string[]> {
  const store = await openStore({ cacheDir: root });
  try {
    const found: string[] = [];
    for await (const entry of store.list()) found.push(entry.key);
    return found.sort();
  } finally {
    await store.close();
  }
}

/** Runs `fn` with `Date.now()` reading `offsetMs` ahead, as on a machine whose clock is wrong. */
async function withClockAhead<T>(offsetMs: number, fn: () => Promise<T>): Promise<T> {
  const real = Date.now;
  Date.now = () => real() + offsetMs;
  try {
    return await fn();
  } finally {
    Date.now = real;
  }
}

describe("pruning by recency", () => {
  test("--max-size keeps the entry read just now, even when all were written within the same second", async () => {
    const root = join(scratch.path, `root-${rootCount++}`);
    const store = await openStore({ cacheDir: root });
    for (let i = 1; i <= 6; i++) await store.put("blob", `e${i}`, Buffer.alloc(MiB, i));
    assert.ok(await store.get("blob", "e1"), "read back the oldest entry");
    await store.close();
    const result = await pruneCache({ cacheDir: root, maxSizeBytes: 3 * MiB });
    assert.equal(result.tally.entries, 3);
    assert.deepEqual(await keys(root), ["e1", "e5", "e6"]);
  });

  test("uses within one millisecond keep their order", async () => {
    const root = join(scratch.path, `root-${rootCount++}`);
    const store = await openStore({ cacheDir: root });
    for (let i = 1; i <= 4; i++) await store.put("small", `s${i}`, `value ${i}`);
    for (const key of ["s3", "s1", "s4", "s2"]) await store.get("small", key);
    await store.close();
    const reopened = await openStore({ cacheDir: root });
    const order: string[] = [];
    for await (const entry of reopened.list("small")) order.push(entry.key);
    await reopened.close();
    assert.deepEqual(order, ["s2", "s4", "s1", "s3"], "most recently used first");
  });
});

describe("entries stamped in the future", () => {
  test("--max-age drops them, and `cache ls` says they are in the future instead of a negative age", async () => {
    const root = join(scratch.path, `root-${rootCount++}`);
    const store = await openStore({ cacheDir: root });
    await store.put("tool", "today", "written with a right clock");
    await withClockAhead(DAY, () => store.put("tool", "tomorrow", "written with a clock a day ahead"));
    await store.close();

    const ls = await runCli(["cache", "ls"], { CACHET_CACHE_DIR: root });
    assert.equal(ls.code, 0, ls.stderr);
    const row = ls.stdout.split("\n").find((line) => line.includes("tomorrow"));
    assert.ok(row, ls.stdout);
    assert.match(row, /in the future/);
    assert.doesNotMatch(ls.stdout, /-\d/, "no negative durations");

    const prune = await runCli(["cache", "prune", "--max-age", "30d"], { CACHET_CACHE_DIR: root });
    assert.equal(prune.code, 0, prune.stderr);
    assert.deepEqual(await keys(root), ["today"]);
  });

  test("--max-size counts them as least recently used", async () => {
    const root = join(scratch.path, `root-${rootCount++}`);
    const store = await openStore({ cacheDir: root });
    await withClockAhead(DAY, () => store.put("blob", "future", Buffer.alloc(MiB, 1)));
    await store.put("blob", "now-1", Buffer.alloc(MiB, 2));
    await store.put("blob", "now-2", Buffer.alloc(MiB, 3));
    await store.close();
    await pruneCache({ cacheDir: root, maxSizeBytes: 2 * MiB });
    assert.deepEqual(await keys(root), ["now-1", "now-2"]);
  });

  test("a use after the clock is right again stamps the real time", async () => {
    const root = join(scratch.path, `root-${rootCount++}`);
    const store = await openStore({ cacheDir: root });
    await withClockAhead(DAY, () => store.put("tool", "k", "v"));
    await store.get("tool", "k");
    await store.close();
    const reopened = await openStore({ cacheDir: root });
    try {
      const info = reopened.info("tool", "k")!;
      assert.ok(info.lastUsedAt.getTime() <= Date.now(), `last use ${info.lastUsedAt.toISOString()} is not in the future`);
    } finally {
      await reopened.close();
    }
  });
});
