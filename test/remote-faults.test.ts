// The shared tier failing under a running client: PostgreSQL (a server of the test's own, on a spare port)
// unreachable at start, killed mid-upload and mid-download, stopped so it never answers; Redis down. Each is one
// warning, the work still runs and is cached locally, nothing waits past the time limits, and nothing partial
// is left in the remote.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Cache, TieredStore, openRemoteStore, openStore, pushToRemote, task, type StoreWarning } from "../src/index.js";
import { freePort } from "./registry-servers.js";
import { startNode, workerPath } from "./workers/child.js";
import { ownPostgresSkipReason, ownRedisSkipReason, sql, startOwnPostgres, startOwnRedis, type OwnPostgres } from "./remote-servers.js";
import { tempDir } from "./helpers.js";

const skip = ownPostgresSkipReason;

describe("the shared tier when its servers fail", { skip }, () => {
  let server: OwnPostgres;
  const dirs = tempDir("cachet-remote-faults-");
  let counter = 0;
  before(async () => {
    server = await startOwnPostgres();
    // The schema first, so the tests below start from a migrated database.
    await (await openRemoteStore({ url: server.url })).close();
  });
  after(() => {
    server?.remove();
    dirs.cleanup();
  });

  async function tiered(url: string, timeoutMs = 2000) {
    const warnings: StoreWarning[] = [];
    const store = new TieredStore({
      local: await openStore({ cacheDir: join(dirs.path, `cache-${++counter}`) }),
      openRemote: () => openRemoteStore({ url, timeoutMs }),
      remoteName: "own",
      onWarning: (warning) => warnings.push(warning),
      timeoutMs,
      flushLimitMs: 5000,
    });
    return { store, warnings };
  }

  async function remoteCounts(): Promise<{ entries: number; blobs: number; chunks: number }> {
    const [row] = await sql<{ entries: string; blobs: string; chunks: string }>(
      server.url,
      "SELECT (SELECT count(*) FROM cachet_entries) AS entries, (SELECT count(*) FROM cachet_blobs) AS blobs, (SELECT count(*) FROM cachet_blob_chunks) AS chunks",
    );
    return { entries: Number(row!.entries), blobs: Number(row!.blobs), chunks: Number(row!.chunks) };
  }

  test("unreachable at start: tasks compute and are cached locally, with one warning and no wait", async () => {
    const port = await freePort();
    const { store, warnings } = await tiered(`postgres://postgres:hunter22@127.0.0.1:${port}/nothing`);
    let runs = 0;
    const double = task({ name: "double", cache: new Cache({ version: "1", serialize: true }), store }, async (n: number) => {
      runs++;
      return n * 2;
    });
    try {
      for (let i = 0; i < 6; i++) assert.equal(await double(i), i * 2);
      for (let i = 0; i < 6; i++) assert.equal(await double(i), i * 2);
      assert.equal(runs, 6);
      assert.ok(store.local.info("double", [...(await listKeys(store.local, "double"))][0]!));
      assert.deepEqual(warnings.map((warning) => warning.code), ["CACHET_REMOTE_UNAVAILABLE"]);
      assert.doesNotMatch(warnings[0]!.message, /hunter22/);
      assert.match(warnings[0]!.message, /postgres:\/\/postgres:\*\*\*@127\.0\.0\.1/);
    } finally {
      await store.close();
    }
  });

  test("killed mid-upload: the entry stays local, one warning, nothing partial in the remote", async () => {
    const { store, warnings } = await tiered(server.url);
    try {
      await store.put("warmup", "k", "opens the connection");
      assert.equal(await store.getValue("warmup", "k").then((value) => value !== undefined), true);
      await waitFor(() => store.pendingUploads === 0);
      const big = Buffer.alloc(96 << 20, 5);
      await store.put("upload", "big", big);
      assert.equal(store.pendingUploads, 1);
      await new Promise((resolve) => setTimeout(resolve, 150));
      server.kill();
      await store.close();
      assert.deepEqual(warnings.map((warning) => warning.code), ["CACHET_REMOTE_UNAVAILABLE"]);
    } finally {
      await store.close();
      await server.start();
    }
    const counts = await remoteCounts();
    assert.deepEqual(await sql(server.url, "SELECT name FROM cachet_entries"), [{ name: "warmup" }]);
    assert.equal(counts.blobs, 0, "no blob, complete or not");
    assert.equal(counts.chunks, 0);
    const local = await openStore({ cacheDir: join(dirs.path, `cache-${counter}`) });
    try {
      assert.equal((await local.getValue("upload", "big"))!.data.byteLength, 96 << 20);
    } finally {
      await local.close();
    }
  });

  test("killed mid-download: a miss with one warning, nothing kept locally", async () => {
    const writer = await openRemoteStore({ url: server.url });
    await writer.put("download", "big", Buffer.alloc(96 << 20, 6));
    await writer.close();
    const { store, warnings } = await tiered(server.url);
    try {
      const reading = store.getValue("download", "big");
      await new Promise((resolve) => setTimeout(resolve, 200));
      server.kill();
      assert.equal(await reading, undefined);
      assert.equal(store.local.info("download", "big"), undefined);
      assert.deepEqual(warnings.map((warning) => warning.code), ["CACHET_REMOTE_UNAVAILABLE"]);
    } finally {
      await store.close();
      await server.start();
    }
  });

  test("a server that stops answering: every call ends by its time limit, then the remote is skipped", async () => {
    const { store, warnings } = await tiered(server.url, 800);
    const pid = Number(readFileSync(join(server.dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
    await store.put("paused", "before", "x");
    process.kill(pid, "SIGSTOP");
    try {
      for (let i = 0; i < 5; i++) assert.equal(await store.getValue("paused", `k${i}`), undefined);
      const local = await store.put("paused", "after", "still written locally");
      assert.equal(local.storage, "inline");
      assert.deepEqual(warnings.map((warning) => warning.code), ["CACHET_REMOTE_UNAVAILABLE"]);
      assert.match(warnings[0]!.message, /did not (answer|finish) within 800 ms/);
    } finally {
      process.kill(pid, "SIGCONT");
      await store.close();
    }
  });

  test("the breaker: after 3 failures the remote is skipped, then probed once after the cool-off, and used again", async () => {
    const warnings: StoreWarning[] = [];
    let opened = 0;
    const store = new TieredStore({
      local: await openStore({ cacheDir: join(dirs.path, `cache-${++counter}`) }),
      openRemote: () => (opened++, openRemoteStore({ url: server.url, timeoutMs: 2000 })),
      remoteName: "own",
      onWarning: (warning) => warnings.push(warning),
      timeoutMs: 2000,
      breakerCoolOffMs: 1500,
    });
    try {
      assert.equal(await store.getValue("breaker", "a"), undefined); // opens the remote
      server.kill();
      for (let i = 0; i < 3; i++) assert.equal(await store.getValue("breaker", `miss-${i}`), undefined);
      await server.start();
      // Skipped: the server is back, but nothing asks it until the cool-off has passed.
      const writer = await openRemoteStore({ url: server.url });
      await writer.put("breaker", "b", "on the server");
      await writer.close();
      assert.equal(await store.getValue("breaker", "b"), undefined);
      await new Promise((resolve) => setTimeout(resolve, 1600));
      assert.equal(Buffer.from((await store.getValue("breaker", "b"))!.data).toString(), "on the server");
      assert.deepEqual(warnings.map((warning) => warning.code), ["CACHET_REMOTE_UNAVAILABLE"]);
    } finally {
      await store.close();
    }
  });

  test("a full upload queue drops uploads with one warning, and the caller never waits for them", async () => {
    const { store, warnings } = await tiered(server.url, 1500);
    const pid = Number(readFileSync(join(server.dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
    const limited = new TieredStore({
      local: store.local,
      openRemote: () => openRemoteStore({ url: server.url, timeoutMs: 1500 }),
      remoteName: "own",
      onWarning: (warning) => warnings.push(warning),
      timeoutMs: 1500,
      queueLimit: 2,
      flushLimitMs: 200,
    });
    process.kill(pid, "SIGSTOP");
    try {
      for (let i = 0; i < 6; i++) await limited.put("queue", `k${i}`, `value ${i}`);
      // Every put returned while the first two uploads are still stuck on the stopped server.
      assert.equal(limited.pendingUploads, 2);
      for (let i = 0; i < 6; i++) assert.equal(Buffer.from((await limited.local.getValue("queue", `k${i}`))!.data).toString(), `value ${i}`);
      assert.deepEqual(warnings.filter((warning) => warning.code === "CACHET_REMOTE_QUEUE_FULL").length, 1);
      await limited.close();
      assert.ok(warnings.some((warning) => warning.code === "CACHET_REMOTE_UPLOADS_DROPPED"));
    } finally {
      process.kill(pid, "SIGCONT");
      await store.close();
    }
  });

  /**
   * A program writing through the tiered store while its server is frozen (SIGSTOP), with a query time limit of
   * two minutes: it must exit by itself long before that limit (the wait is bounded at 30 s, a quarter of it),
   * with everything it wrote in its local cache. What the frozen server holds is not waited for.
   */
  async function frozenWriter(mode: "close" | "no-close", limits: { call: number; flush: number }, redis?: { url: string; pid: number }) {
    const cache = join(dirs.path, `cache-${++counter}`);
    // The PostgreSQL server is frozen, or, with Redis for leases, Redis alone.
    const pid = redis?.pid ?? Number(readFileSync(join(server.dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
    const child = startNode(["--import", "tsx", workerPath("frozen-remote-writer.ts")], {
      REMOTE_URL: server.url,
      CACHE_DIR: cache,
      QUERY_LIMIT_MS: "120000",
      CALL_LIMIT_MS: String(limits.call),
      FLUSH_LIMIT_MS: String(limits.flush),
      LEASES_URL: redis?.url ?? "",
      MODE: mode,
    }, { cwd: new URL("..", import.meta.url).pathname });
    try {
      await child.waitFor("warm\n");
      process.kill(pid, "SIGSTOP");
      child.send("go");
      const exit = await child.waitForExit({ timeoutMs: 30_000 });
      assert.equal(exit.code, 0, child.stderr());
    } finally {
      process.kill(pid, "SIGCONT");
      await child.kill9();
    }
    const local = await openStore({ cacheDir: cache });
    try {
      for (let i = 0; i < 3; i++) assert.equal(Buffer.from((await local.getValue("frozen", `k${i}`))!.data).toString(), `value ${i}`);
    } finally {
      await local.close();
    }
    return { output: child.stdout(), cache };
  }

  test("a server frozen while uploads run: close gives up after the flush limit and the process exits, not waiting for the query time limit", async () => {
    const { output, cache } = await frozenWriter("close", { call: 120_000, flush: 300 });
    assert.match(output, /^closed CACHET_REMOTE_UPLOADS_DROPPED\n$/m);
    // The dropped uploads are sent by a push once the server answers again.
    const local = await openStore({ cacheDir: cache });
    const remote = await openRemoteStore({ url: server.url });
    try {
      await pushToRemote(local, remote);
      for (let i = 0; i < 3; i++) assert.equal(Buffer.from((await remote.getValue("frozen", `k${i}`))!.data).toString(), `value ${i}`);
    } finally {
      await remote.close();
      await local.close();
    }
  });

  test("a server frozen while uploads run, the store never closed: once the breaker skips the remote, the process exits", async () => {
    const { output } = await frozenWriter("no-close", { call: 500, flush: 300 });
    assert.match(output, /^written /m);
  });

  test("Redis frozen while a lease is held: close releases what it can and the process exits, not waiting for Redis's time limit", { skip: ownRedisSkipReason }, async () => {
    const redis = await startOwnRedis();
    try {
      // PostgreSQL answers, so the uploads finish; a flush limit of seconds, not 300 ms, lets them on a loaded machine.
      const { output } = await frozenWriter("close", { call: 120_000, flush: 5000 }, { url: redis.url, pid: redis.child.pid });
      assert.match(output, /^closed \n$/m, "the uploads went to PostgreSQL");
      assert.equal((await sql(server.url, "SELECT key FROM cachet_entries WHERE name = 'frozen' AND key LIKE 'k%'")).length, 3);
      assert.deepEqual(await sql(server.url, "SELECT key FROM cachet_leases WHERE name = 'frozen'"), [], "the PostgreSQL lease was released");
    } finally {
      await redis.child.kill9();
    }
  });

  test("Redis down: leases go through PostgreSQL alone, with one warning", { skip: ownRedisSkipReason }, async () => {
    const redis = await startOwnRedis();
    const warnings: StoreWarning[] = [];
    const store = await openRemoteStore({ url: server.url, leasesUrl: redis.url, timeoutMs: 1000, onWarning: (warning) => warnings.push(warning) });
    try {
      const first = await store.lockKey("redis", "a");
      assert.ok(first.lease);
      first.release();
      await redis.child.kill9();
      const second = await store.lockKey("redis", "b");
      assert.ok(second.lease);
      second.release();
      const third = await store.lockKey("redis", "c");
      third.release();
      assert.deepEqual(warnings.map((warning) => warning.code), ["CACHET_LEASES_UNAVAILABLE"]);
    } finally {
      await store.close();
      await redis.child.kill9();
    }
  });
});

async function listKeys(store: { list(name?: string): AsyncIterableIterator<{ key: string }> }, name: string): Promise<Set<string>> {
  const keys = new Set<string>();
  for await (const entry of store.list(name)) keys.add(entry.key);
  return keys;
}

async function waitFor(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 25));
  assert.ok(condition());
}
