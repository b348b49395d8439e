// The shared tier across real processes, each with its own local cache (CACHET_CACHE_DIR) and the same
// PostgreSQL (CACHET_REMOTE, a throwaway database): sharing a result, compute-once across machines, a holder
// SIGKILLed (another takes over after the lease expires) and a holder SIGSTOPped past its expiry (its commit is
// refused and the newer result stands).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { deserializeValue, openStore } from "../src/index.js";
import { createTestDatabase, postgresSkipReason, redisSkipReason, sql } from "./remote-servers.js";
import { tempDir } from "./helpers.js";
import { startNode, workerPath, type Child } from "./workers/child.js";

const WORKER = workerPath("remote-task.ts");
const REPO = new URL("..", import.meta.url).pathname;

describe("the shared tier across processes", { skip: postgresSkipReason }, () => {
  let db: { url: string; drop: () => Promise<void> };
  const dirs = tempDir("cachet-remote-processes-");
  let counter = 0;
  before(async () => {
    db = await createTestDatabase();
  });
  after(async () => {
    await db?.drop();
    dirs.cleanup();
  });

  function start(mode: string, sleepMs: number, log: string, env: NodeJS.ProcessEnv = {}): Child {
    const cacheDir = join(dirs.path, `cache-${++counter}`);
    return startNode(["--import", "tsx", WORKER, log, String(sleepMs), mode], { CACHET_CACHE_DIR: cacheDir, CACHET_REMOTE: db.url, ...env }, { cwd: REPO });
  }

  function runs(log: string): string[] {
    try {
      return readFileSync(log, "utf8").split("\n").filter(Boolean);
    } catch {
      return [];
    }
  }

  async function storedResult(n: number): Promise<string> {
    const rows = await sql<{ key: string; inline: Buffer }>(db.url, "SELECT key, inline FROM cachet_entries WHERE name = 'remote-square'");
    const values = rows.map((row) => deserializeValue(row.inline) as string).filter((value) => value.startsWith(`${n * n} by `));
    assert.equal(values.length, 1, `one stored result for ${n}: ${JSON.stringify(values)}`);
    return values[0]!;
  }

  test("two processes with separate local caches share a result, and the remote hit fills the local cache", async () => {
    const log = join(dirs.path, "share.log");
    const first = start("once", 0, log, { N: "3" });
    try {
      await first.waitForExit();
      assert.match(first.stdout(), /miss 9 by \d+/);
    } finally {
      await first.kill9();
    }
    const second = start("once", 0, log, { N: "3" });
    const secondCache = join(dirs.path, `cache-${counter}`);
    try {
      await second.waitForExit();
      assert.match(second.stdout(), /hit 9 by /, second.stderr());
    } finally {
      await second.kill9();
    }
    assert.equal(runs(log).length, 1);
    const local = await openStore({ cacheDir: secondCache });
    try {
      const entries = [];
      for await (const entry of local.list("remote-square")) entries.push(entry);
      assert.equal(entries.length, 1);
    } finally {
      await local.close();
    }
  });

  test("a result that is not serialized is uploaded in the background, and the queue drains before the process exits", async () => {
    const log = join(dirs.path, "plain.log");
    const first = start("plain", 0, log, { N: "4" });
    try {
      await first.waitForExit();
      assert.match(first.stdout(), /miss 16 by \d+/, first.stderr());
    } finally {
      await first.kill9();
    }
    const second = start("plain", 0, log, { N: "4" });
    try {
      await second.waitForExit();
      assert.match(second.stdout(), /hit 16 by /, second.stderr());
    } finally {
      await second.kill9();
    }
    assert.equal(runs(log).length, 1);
  });

  for (const [label, env, rounds] of [
    ["PostgreSQL leases", {}, 20],
    ["Redis hand-off", { CACHET_LEASES: "redis://127.0.0.1:6379" }, 8],
  ] as const) {
    test(`8 processes call one serialized task at once: exactly one execution, ${rounds} times in a row (${label})`, { skip: label === "Redis hand-off" && redisSkipReason }, async () => {
      const log = join(dirs.path, `rounds-${label.length}.log`);
      writeFileSync(log, "");
      const workers = Array.from({ length: 8 }, () => start("rounds", 150, log, env));
      try {
        await Promise.all(workers.map((worker) => worker.waitFor("ready", { timeoutMs: 60_000 })));
        for (let round = 1; round <= rounds; round++) {
          const n = 100 * label.length + round;
          for (const worker of workers) worker.send(`go ${n}`);
          await Promise.all(workers.map((worker) => worker.waitFor(new RegExp(`done ${n} `), { timeoutMs: 60_000 })));
          const ran = runs(log).filter((line) => line.startsWith(`run ${n} `));
          assert.equal(ran.length, 1, `round ${round}: ${ran.length} executions\n${workers.map((worker) => worker.stderr()).join("\n")}`);
          const results = new Set(workers.map((worker) => new RegExp(`done ${n} \\w+ (.*)`).exec(worker.stdout())![1]));
          assert.equal(results.size, 1, `round ${round}: everyone got the one result`);
        }
        for (const worker of workers) assert.doesNotMatch(worker.stderr(), /CACHET_/);
      } finally {
        await Promise.all(workers.map((worker) => worker.kill9()));
      }
    });
  }

  test("a holder SIGKILLed while it computes: another takes over once the lease expires", async () => {
    const log = join(dirs.path, "killed.log");
    const env = { N: "5", CACHET_LEASE_EXPIRY: "2" };
    const holder = start("hang", 0, log, env);
    let taker: Child | undefined;
    try {
      for (let i = 0; i < 400 && runs(log).length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(runs(log).length, 1);
      taker = start("once", 0, log, env);
      await taker.waitFor("ready", { timeoutMs: 60_000 });
      await new Promise((resolve) => setTimeout(resolve, 300));
      await holder.kill9();
      await taker.waitForExit({ timeoutMs: 30_000 });
      assert.match(taker.stdout(), /miss 25 by (\d+)/, taker.stderr());
      assert.equal(runs(log).length, 2);
      assert.match(await storedResult(5), new RegExp(`by ${taker.pid}$`));
    } finally {
      await holder.kill9();
      await taker?.kill9();
    }
  });

  test("a holder SIGSTOPped past its expiry, then SIGCONTed: its commit is refused and the newer result stands", async () => {
    const log = join(dirs.path, "stopped.log");
    const env = { N: "7", CACHET_LEASE_EXPIRY: "1" };
    const paused = start("once", 2500, log, env);
    try {
      for (let i = 0; i < 200 && runs(log).length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
      paused.process.kill("SIGSTOP");
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const newer = start("once", 0, log, env);
      try {
        await newer.waitForExit({ timeoutMs: 30_000 });
        assert.match(newer.stdout(), /miss 49 by /, newer.stderr());
      } finally {
        await newer.kill9();
      }
      paused.process.kill("SIGCONT");
      await paused.waitForExit({ timeoutMs: 30_000 });
      assert.match(paused.stdout(), new RegExp(`miss 49 by ${paused.pid}`));
      assert.match(paused.stderr(), /CACHET_LEASE_LOST/);
      assert.match(await storedResult(7), new RegExp(`by ${newer.pid}$`));
    } finally {
      paused.process.kill("SIGCONT");
      await paused.kill9();
    }
  });
});
