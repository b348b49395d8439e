// The store under faults, with real processes: an index file cut or its -shm deleted while processes use it,
// cleans and prunes racing a stream of stores, and a clean that a stream of short-lived stores must not starve.
// Every worker checks each value it reads against what it wrote and exits 2 at the first wrong one.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, rmSync, statSync, truncateSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { openStore } from "../src/store/index.js";
import { tempDir } from "./helpers.js";
import { CLI_PATH, startNode, workerPath, type Child, type ChildExit } from "./workers/child.js";

const scratch = tempDir("cachet-faults-");
after(scratch.cleanup);
let rootCount = 0;
const newRoot = (): string => join(scratch.path, `root-${rootCount++}`);

const LOAD = workerPath("store-load-worker.mjs");
const MAINTENANCE = workerPath("maintenance-runner.mjs");
const ONE_OP = workerPath("store-one-op.mjs");

/** Runs one put or get on `root` in a child process; returns its output line. */
async function inChild(root: string, ...args: string[]): Promise<string> {
  const child = startNode([ONE_OP, root, ...args]);
  try {
    child.endInput();
    const exit = await within(30_000, child.exit, `store-one-op ${args.join(" ")}`);
    assert.equal(exit.code, 0, child.stderr());
    return child.stdout().trim();
  } finally {
    await child.kill9();
  }
}

/** Resolves with `promise`, or fails the test after `ms` naming what it waited for. */
async function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

interface Summary {
  reads: number;
  writes: number;
  warnings: Record<string, number>;
  errors: Record<string, number>;
}

/** Stops a load worker (closes its stdin) and returns its summary; fails on a wrong value or a crash. */
async function stopWorker(worker: Child): Promise<Summary> {
  worker.endInput();
  const exit: ChildExit = await within(30_000, worker.exit, `worker ${worker.pid} to stop`);
  const out = worker.stdout();
  assert.doesNotMatch(out, /^WRONG/m, out);
  assert.equal(exit.signal, null, `worker died of ${exit.signal}\n${worker.stderr()}`);
  assert.equal(exit.code, 0, worker.stderr());
  assert.doesNotMatch(worker.stderr(), /unexpected/, worker.stderr());
  const line = out.split("\n").find((l) => l.startsWith("summary "));
  assert.ok(line, out);
  return JSON.parse(line.slice("summary ".length)) as Summary;
}

const currentIndex = (root: string): string => {
  let name = "index.sqlite";
  try {
    name = readFileSync(join(root, "index-v1", "CURRENT"), "utf8").trim();
  } catch {
    // no CURRENT: the first index
  }
  return join(root, "index-v1", name);
};

const seedValue = (i: number): string => `seeded value ${i} ${"s".repeat(i % 97)}`;

/** 2000 entries `seed/seed-<i>`, closed, so they live in the index file itself (not only its log). */
async function seed(root: string): Promise<void> {
  const store = await openStore({ cacheDir: root });
  try {
    for (let i = 0; i < 2000; i++) await store.put("seed", `seed-${i}`, seedValue(i));
  } finally {
    await store.close();
  }
}

async function assertUsable(root: string): Promise<void> {
  const store = await openStore({ cacheDir: root, onWarning: () => {} });
  try {
    await store.put("after", "k", "still works");
    assert.equal(Buffer.from((await store.get("after", "k"))!).toString(), "still works");
  } finally {
    await store.close();
  }
}

describe("the index damaged under running processes", () => {
  test("cut in half twice while 3 processes read and write: none dies, none reads a wrong value, the cache goes on", async () => {
    const root = newRoot();
    await seed(root);
    const workers = [0, 1, 2].map((id) => startNode([LOAD, root, String(id), "steady"]));
    try {
      await Promise.all(workers.map((w) => within(30_000, w.waitFor("ready"), "workers to start")));
      for (let round = 0; round < 2; round++) {
        await sleep(700);
        const file = currentIndex(root);
        truncateSync(file, Math.floor(statSync(file).size / 2));
      }
      await sleep(700);
      const summaries = [];
      for (const worker of workers) summaries.push(await stopWorker(worker));
      assert.ok(summaries.every((s) => s.reads > 0 && s.writes > 0), JSON.stringify(summaries));
      const replaced = summaries.reduce((n, s) => n + (s.warnings.CACHET_INDEX_REPLACED ?? 0), 0);
      assert.ok(replaced >= 1, `the damage was noticed and the index replaced: ${JSON.stringify(summaries)}`);
    } finally {
      await Promise.all(workers.map((w) => w.kill9()));
    }
    await assertUsable(root);
  });

  test("-shm deleted again and again under 4 writers: no SIGBUS, no wrong value, and the index ends sound", async () => {
    const root = newRoot();
    await seed(root);
    const workers = [0, 1, 2, 3].map((id) => startNode([LOAD, root, String(id), "steady"]));
    try {
      await Promise.all(workers.map((w) => within(30_000, w.waitFor("ready"), "workers to start")));
      for (let round = 0; round < 20; round++) {
        await sleep(100);
        rmSync(`${currentIndex(root)}-shm`, { force: true });
      }
      await sleep(300);
      for (const worker of workers) await stopWorker(worker);
    } finally {
      await Promise.all(workers.map((w) => w.kill9()));
    }
    const verify = startNode([CLI_PATH, "cache", "verify", "--json"], { CACHET_CACHE_DIR: root });
    try {
      verify.endInput();
      const exit = await within(60_000, verify.exit, "cache verify");
      const report = JSON.parse(verify.stdout()) as { indexProblems: string[]; bad: unknown[] };
      assert.deepEqual(report.indexProblems, [], verify.stdout());
      assert.deepEqual(report.bad, []);
      assert.equal(exit.code, 0, verify.stderr());
    } finally {
      await verify.kill9();
    }
    await assertUsable(root);
  });
});

describe("the -shm deleted under two stores of one process", () => {
  // SQLite maps a database's -shm once per process and shares the mapping among its connections: a store that
  // reconnects while another store of the process still holds the deleted -shm must not end up on that one.
  test("a store that reconnects sees what another process wrote after the deletion, and its writes are seen", async () => {
    const root = newRoot();
    const first = await openStore({ cacheDir: root });
    const second = await openStore({ cacheDir: root });
    // Another process keeps the index open throughout, as in any shared cache (see the next test for the last one).
    const holder = startNode([ONE_OP, root, "hold"]);
    try {
      await within(30_000, holder.waitFor("ready"), "the holder to open the store");
      await first.put("shm", "k", "v1");
      assert.equal(Buffer.from((await second.get("shm", "k"))!).toString(), "v1");
      rmSync(`${currentIndex(root)}-shm`);
      assert.equal(await inChild(root, "put", "shm", "k", "v2"), "stored");
      assert.equal(Buffer.from((await first.get("shm", "k"))!).toString(), "v2");
      assert.equal(Buffer.from((await second.get("shm", "k"))!).toString(), "v2");
      await first.put("shm", "k", "v3");
      assert.equal(await inChild(root, "get", "shm", "k"), "value v3");
      assert.equal(Buffer.from((await second.get("shm", "k"))!).toString(), "v3");
    } finally {
      await first.close();
      await second.close();
      holder.endInput();
      await within(30_000, holder.exit, "the holder to exit");
      await holder.kill9();
    }
    await assertUsable(root);
  });
});

describe("clean and prune racing a stream of stores", () => {
  test("4 workers open, write, read back and close stores while cleans and prunes run: nothing overlaps, nothing read back after the last clean is lost", async () => {
    const root = newRoot();
    await assertUsable(root);
    const workers = [0, 1, 2, 3].map((id) => startNode([LOAD, root, String(id), "sessions"]));
    const windows: Array<[number, number]> = [];
    try {
      const until = Date.now() + 6000;
      let round = 0;
      while (Date.now() < until) {
        const what = round++ % 2 === 0 ? "clean" : "prune";
        const runner = startNode([MAINTENANCE, root, what, String(64 * 1024)]);
        try {
          runner.endInput();
          const exit = await within(60_000, runner.exit, `cache ${what}`);
          assert.equal(exit.code, 0, runner.stderr());
          const window = /^window (\d+) (\d+)/m.exec(runner.stdout());
          if (window) windows.push([Number(window[1]), Number(window[2])]);
        } finally {
          await runner.kill9();
        }
        await sleep(150);
      }
      const lastCleanEnd = Math.max(...windows.map(([, end]) => end));
      const sessions: Array<{ key: string; opened: number; closed: number }> = [];
      for (const worker of workers) {
        await stopWorker(worker);
        for (const match of worker.stdout().matchAll(/^ok (\S+) (\d+) (\d+)$/gm)) {
          sessions.push({ key: match[1]!, opened: Number(match[2]), closed: Number(match[3]) });
        }
      }
      assert.ok(windows.length >= 2, `removals happened (${windows.length})`);
      assert.ok(sessions.length > 20, `sessions ran (${sessions.length})`);
      for (const session of sessions) {
        for (const [start, end] of windows) {
          assert.ok(
            session.closed < start || session.opened > end,
            `a store was in use (${session.opened}–${session.closed}) while a clean or prune removed files (${start}–${end})`,
          );
        }
      }
      const store = await openStore({ cacheDir: root });
      try {
        for (const session of sessions.filter((s) => s.opened > lastCleanEnd)) {
          assert.ok((await store.get("load", session.key)) !== undefined, `${session.key}, read back after the last removal, is gone`);
        }
      } finally {
        await store.close();
      }
    } finally {
      await Promise.all(workers.map((w) => w.kill9()));
    }
  });

  test("a stream of overlapping short-lived stores does not starve a waiting clean", async () => {
    const root = newRoot();
    await assertUsable(root);
    // Staggered sessions that each hold the store 150 ms: at every moment some process holds it shared.
    const workers: Child[] = [];
    try {
      for (const id of [0, 1, 2, 3]) {
        workers.push(startNode([LOAD, root, String(id), "sessions", "150"]));
        await sleep(40);
      }
      await Promise.all(workers.map((w) => within(30_000, w.waitFor(/^ok /m), "sessions to run")));
      const clean = startNode([CLI_PATH, "cache", "clean"], { CACHET_CACHE_DIR: root, CACHET_LOCK_TIMEOUT: "20" });
      try {
        clean.endInput();
        const exit = await within(60_000, clean.exit, "cache clean");
        assert.equal(exit.code, 0, clean.stderr());
        assert.match(clean.stderr(), /Removed/);
      } finally {
        await clean.kill9();
      }
      for (const worker of workers) await stopWorker(worker);
    } finally {
      await Promise.all(workers.map((w) => w.kill9()));
    }
  });
});
