// The shared tier against a hostile database and hostile callers: rows and blobs changed behind cachet's back,
// tree archives that try to write outside their target, a schema newer than the client, a read-only client that
// must write nothing at all. Each is a miss (or a refusal), never wrong data or a write where none belongs.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { TieredStore, openRemoteStore, openStore, type RemoteStoreOptions, type StoreWarning } from "../src/index.js";
import pg from "pg";
import { createTestDatabase, suiteDatabase, postgresSkipReason, redisSkipReason, sql } from "./remote-servers.js";
import { startNode, workerPath } from "./workers/child.js";

describe("the shared tier against a hostile database", { skip: postgresSkipReason }, () => {
  const suite = suiteDatabase("cachet-remote-hostile-");
  const { dirs, open, collect } = suite;
  let counter = 0;

  function fresh(label: string): string {
    const dir = join(dirs.path, `${label}-${++counter}`);
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  /** Stores `archive` as a blob and points a tree entry `(name, key)` at it, as a writer with database access could. */
  async function plantTree(name: string, key: string, archive: Buffer): Promise<void> {
    const store = await open();
    try {
      await store.putStream("carrier", `${name}-${key}`, [archive]);
    } finally {
      await store.close();
    }
    const digest = createHash("sha256").update(archive).digest("hex");
    await sql(suite.url, "INSERT INTO cachet_entries (name, key, storage, digest, size, origin, cost_ms) VALUES ($1, $2, 'tree', $3, $4, 'computed', 0)", [
      name,
      key,
      digest,
      archive.byteLength,
    ]);
  }

  function archive(...entries: (Record<string, unknown> | string)[]): Buffer {
    return Buffer.from(["cachet-tree/1\n", ...entries.map((entry) => (typeof entry === "string" ? entry : `${JSON.stringify(entry)}\n`))].join(""));
  }

  test("a tree archive that writes through its own symlink is refused, and nothing lands outside the target", async () => {
    const outside = fresh("outside");
    await plantTree("evil", "through-link", archive({ t: "l", p: "a", l: outside }, { t: "f", p: "a/pwned", m: 0o644, s: 3 }, "bad"));
    await plantTree("evil", "onto-link", archive({ t: "l", p: "b", l: join(outside, "over") }, { t: "f", p: "b", m: 0o644, s: 3 }, "bad"));
    await plantTree("evil", "dir-link", archive({ t: "l", p: "c", l: outside }, { t: "d", p: "c", m: 0o777 }));
    const { warnings, onWarning } = collect();
    const store = await open({ onWarning, scratchDir: fresh("scratch") });
    try {
      for (const key of ["through-link", "onto-link", "dir-link"]) {
        const target = join(fresh("target"), "tree");
        assert.equal(await store.linkTree("evil", key, target), undefined, key);
        assert.equal(existsSync(target), false, key);
        assert.equal(await store.treePath("evil", key), undefined, key);
      }
      assert.deepEqual(readdirSync(outside), []);
      assert.deepEqual([...new Set(warnings.map((warning) => warning.code))], ["CACHET_INTEGRITY"]);
      // Sound bytes (they hash to their digest), so a writable reader leaves the blobs: only damage is removed.
      assert.doesNotMatch(warnings.map((warning) => warning.message).join("\n"), /removed/);
      assert.deepEqual(await sql(suite.url, "SELECT count(*)::int AS n FROM cachet_entries e JOIN cachet_blobs b ON b.digest = e.digest WHERE e.name = 'evil'"), [{ n: 3 }]);
    } finally {
      await store.close();
    }
  });

  test("a database whose schema is newer than this cachet is neither written nor read", async () => {
    const newer = await createTestDatabase();
    try {
      await (await openRemoteStore({ url: newer.url })).close();
      await sql(newer.url, "UPDATE cachet_schema SET version = version + 1");
      await assert.rejects(openRemoteStore({ url: newer.url }), { code: "CACHET_REMOTE", message: /newer/ });
      await assert.rejects(openRemoteStore({ url: newer.url, write: false }), { code: "CACHET_REMOTE", message: /newer/ });
      assert.deepEqual(await sql(newer.url, "SELECT count(*)::int AS n FROM cachet_entries"), [{ n: 0 }]);
    } finally {
      await newer.drop();
    }
  });

  test("a read-only client takes no lease: lockKey is refused and the lease table is untouched", async () => {
    const reader = await open({ write: false });
    try {
      await assert.rejects(reader.lockKey("ro-lease", "k"), { code: "CACHET_REMOTE_READ_ONLY" });
    } finally {
      await reader.close();
    }
    assert.deepEqual(await sql(suite.url, "SELECT count(*)::int AS n FROM cachet_leases WHERE name = 'ro-lease'"), [{ n: 0 }]);
  });

  test("keys and metadata the database cannot hold stay local with one warning, and never trip the breaker", async () => {
    const { warnings, onWarning } = collect();
    const tiered = new TieredStore({
      local: await openStore({ cacheDir: fresh("local") }),
      openRemote: () => open({ onWarning }),
      remoteName: "test",
      onWarning,
      breakerFailures: 3,
    });
    // Keys are opaque to the store: a NUL, or a long incompressible URL, are valid keys PostgreSQL cannot index.
    const odd = [`https://example.com/${randomBytes(2000).toString("hex")}`, `https://example.com/${randomBytes(3000).toString("hex")}`, "a\u0000b", "c\u0000d"];
    try {
      for (const key of odd) {
        assert.equal(await tiered.getValue("odd", key), undefined);
        await tiered.put("odd", key, `value of ${key.length}`);
        assert.equal(Buffer.from((await tiered.getValue("odd", key))!.data).toString(), `value of ${key.length}`);
      }
      await tiered.put("odd", "with-components", "v", { components: { text: "nul \u0000 inside" } });
      await tiered.put("odd", "plain", "shared as usual");
    } finally {
      await tiered.close();
    }
    assert.deepEqual(await sql(suite.url, "SELECT key FROM cachet_entries WHERE name = 'odd'"), [{ key: "plain" }]);
    assert.deepEqual(warnings.map((warning) => warning.code), ["CACHET_REMOTE_REFUSED"]);
  });

  test("damaged blobs read as streams through the tiered store are misses with one warning, and never trip the breaker", async () => {
    const writer = await open();
    const digests: string[] = [];
    try {
      for (const key of ["s1", "s2", "s3", "s4"]) digests.push((await writer.putStream("damaged-streams", key, [Buffer.alloc(2 * (1 << 20) + 7, key)])).digest);
      await writer.put("damaged-streams", "sound", "still shared");
    } finally {
      await writer.close();
    }
    // The second chunk of each blob changed in place (same length, other bytes).
    await sql(suite.url, "UPDATE cachet_blob_chunks c SET data = decode(repeat('00', length(c.data)), 'hex') FROM cachet_blobs b WHERE b.id = c.blob_id AND b.digest = ANY($1) AND c.seq = 1", [digests]);
    const { warnings, onWarning } = collect();
    const local = await openStore({ cacheDir: fresh("local") });
    const tiered = new TieredStore({ local, openRemote: () => open({ onWarning }), remoteName: "test", onWarning, breakerFailures: 3 });
    try {
      for (const key of ["s1", "s2", "s3", "s4"]) {
        assert.equal(await tiered.getStream("damaged-streams", key), undefined, key);
        assert.equal(await local.getValue("damaged-streams", key), undefined, key);
      }
      assert.equal(Buffer.from((await tiered.getValue("damaged-streams", "sound"))!.data).toString(), "still shared");
    } finally {
      await tiered.close();
    }
    assert.deepEqual(warnings.map((warning) => warning.code), ["CACHET_INTEGRITY"]);
  });

  test("uploads waiting for a remote that hangs hold no copy of large values: the queue is bounded in bytes too", async () => {
    const { warnings, onWarning } = collect();
    const tiered = new TieredStore({
      local: await openStore({ cacheDir: fresh("local") }),
      // A remote that never finishes opening: every upload waits in the queue.
      openRemote: () => new Promise(() => {}),
      remoteName: "hanging",
      onWarning,
      timeoutMs: 600_000,
      flushLimitMs: 100,
    });
    const value = Buffer.alloc(4 << 20);
    const before = process.memoryUsage().arrayBuffers;
    try {
      for (let i = 0; i < 64; i++) {
        value.fill(i);
        await tiered.put("large", `v${i}`, value);
      }
      assert.ok(tiered.pendingUploads >= 60);
      const held = process.memoryUsage().arrayBuffers - before;
      assert.ok(held < 128 << 20, `the queue holds ${Math.round(held / (1 << 20))} MiB for 64 uploads of 4 MiB`);
      value.fill(200);
      assert.equal((await tiered.getValue("large", "v5"))!.data[0], 5);
    } finally {
      await tiered.close();
    }
    assert.deepEqual(warnings.map((warning) => warning.code), ["CACHET_REMOTE_UPLOADS_DROPPED"]);
  });

  test("the fence compares owner and token together: a token drawn again after the sequence was reset does not let a stale holder commit", async () => {
    const first = await open();
    const second = await open();
    try {
      await sql(suite.url, "ALTER SEQUENCE cachet_lease_tokens RESTART WITH 100");
      const held = await first.lockKey("reset", "k");
      await sql(suite.url, "UPDATE cachet_leases SET expires_at = now() - interval '1 second' WHERE name = 'reset'");
      // A takeover draws twice (the INSERT's value, then the one of DO UPDATE), so the sequence is set one short.
      await sql(suite.url, `ALTER SEQUENCE cachet_lease_tokens RESTART WITH ${BigInt(held.lease!.token) - 1n}`);
      const taken = await second.lockKey("reset", "k");
      assert.equal(taken.lease!.token, held.lease!.token);
      await second.put("reset", "k", "newer");
      await assert.rejects(first.put("reset", "k", "stale"), { code: "CACHET_LEASE_LOST" });
      held.release();
      assert.equal(Buffer.from((await first.getValue("reset", "k"))!.data).toString(), "newer");
      taken.release();
    } finally {
      await first.close();
      await second.close();
    }
  });

  test("modes from a tree archive are permission bits only: no setuid, setgid or sticky bit is ever made", async () => {
    await plantTree("modes", "k", archive({ t: "d", p: "d", m: 0o3777 }, { t: "f", p: "d/run", m: 0o6755, s: 2 }, "#!"));
    const store = await open({ scratchDir: fresh("scratch") });
    try {
      const target = join(fresh("target"), "tree");
      assert.ok(await store.linkTree("modes", "k", target));
      assert.equal(statSync(join(target, "d")).mode & 0o7000, 0);
      assert.equal(statSync(join(target, "d", "run")).mode & 0o7000, 0);
    } finally {
      await store.close();
    }
  });

  test("a server error that merely names a timeout setting is not reported as the server not answering", async () => {
    const url = `${suite.url}?options=${encodeURIComponent("-c statement_timeout=soon")}`;
    await assert.rejects(openRemoteStore({ url }), (error: Error & { code?: string }) => {
      assert.equal(error.code, "CACHET_REMOTE");
      assert.doesNotMatch(error.message, /did not answer/);
      assert.match(error.message, /statement_timeout/);
      return true;
    });
  });

  test("a process with Redis leases (CACHET_LEASES) exits by itself once its serialized task is done", { skip: redisSkipReason }, async () => {
    const child = startNode(
      ["--import", "tsx", workerPath("remote-task.ts"), join(fresh("log"), "runs.log"), "0", "once"],
      { CACHET_CACHE_DIR: fresh("cache"), CACHET_REMOTE: suite.url, CACHET_LEASES: "redis://127.0.0.1:6379", N: "21" },
      { cwd: new URL("..", import.meta.url).pathname },
    );
    try {
      const exit = await child.waitForExit({ timeoutMs: 20_000 });
      assert.equal(exit.code, 0, child.stderr());
      assert.match(child.stdout(), /miss 441 by \d+/);
    } finally {
      await child.kill9();
    }
  });

  test("asking the tiered store for the wrong kind of a shared entry throws as the local store does, and never trips the breaker", async () => {
    const writer = await open();
    const tree = fresh("tree");
    mkdirSync(join(tree, "d"));
    try {
      await writer.putTree("kinds", "tree", tree);
      await writer.put("kinds", "value", "shared value");
    } finally {
      await writer.close();
    }
    const { warnings, onWarning } = collect();
    const tiered = new TieredStore({ local: await openStore({ cacheDir: fresh("local") }), openRemote: () => open({ onWarning }), remoteName: "test", onWarning, breakerFailures: 3 });
    try {
      for (let i = 0; i < 4; i++) await assert.rejects(tiered.getValue("kinds", "tree"), { code: "CACHET_ENTRY_KIND" });
      await assert.rejects(tiered.getStream("kinds", "tree"), { code: "CACHET_ENTRY_KIND" });
      await assert.rejects(tiered.treePath("kinds", "value"), { code: "CACHET_ENTRY_KIND" });
      assert.equal(Buffer.from((await tiered.getValue("kinds", "value"))!.data).toString(), "shared value");
    } finally {
      await tiered.close();
    }
    assert.deepEqual(warnings, []);
  });

  test("a prune that removes a blob while an entry referring to it is being committed: never an entry without its blob, and the writer sends the content after all", async () => {
    const content = Buffer.alloc((1 << 20) + 1, 9);
    const digest = createHash("sha256").update(content).digest("hex");
    const writer = await open();
    const pruner = new pg.Client({ connectionString: suite.url });
    await pruner.connect();
    try {
      await writer.put("race", "first", content);
      await writer.delete("race", "first");
      // The prune's first step (it locks the entries table against writers), held open while a writer that
      // knows the blob is there already commits an entry referring to it.
      await pruner.query("BEGIN");
      await pruner.query("LOCK TABLE cachet_entries IN SHARE MODE");
      const committing = writer.put("race", "second", content, { digest });
      committing.catch(() => {});
      // Until the writer's INSERT waits on that lock (bounded: 10 s).
      for (let i = 0; ; i++) {
        const [waiting] = await sql<{ n: number }>(suite.url, "SELECT count(*)::int AS n FROM pg_locks WHERE relation = 'cachet_entries'::regclass AND NOT granted");
        if (waiting!.n > 0) break;
        assert.ok(i < 200, "the writer never reached its commit");
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await pruner.query("DELETE FROM cachet_blobs WHERE digest = $1", [digest]);
      await pruner.query("COMMIT");
      // The blob it found is gone, so its entry is not committed on it: the content it holds goes up again with it.
      assert.equal((await committing).digest, digest);
      assert.deepEqual(await sql(suite.url, "SELECT key FROM cachet_entries WHERE name = 'race'"), [{ key: "second" }]);
      assert.deepEqual(await sql(suite.url, "SELECT size FROM cachet_blobs WHERE digest = $1", [digest]), [{ size: String(content.byteLength) }]);
      assert.ok(Buffer.from((await writer.getValue("race", "second"))!.data).equals(content));
    } finally {
      await pruner.end();
      await writer.close();
    }
  });

  test("a large value written twice in a row: the remote ends with the second, and the superseded upload is no failure", async () => {
    const { warnings, onWarning } = collect();
    const tiered = new TieredStore({ local: await openStore({ cacheDir: fresh("local") }), openRemote: () => open({ onWarning }), remoteName: "test", onWarning });
    const second = Buffer.alloc(2 << 20, 2);
    try {
      for (let round = 0; round < 3; round++) {
        await tiered.put("twice", `k${round}`, Buffer.alloc(2 << 20, 1));
        await tiered.put("twice", `k${round}`, second);
      }
    } finally {
      await tiered.close();
    }
    const digest = createHash("sha256").update(second).digest("hex");
    assert.deepEqual(await sql(suite.url, "SELECT key, digest FROM cachet_entries WHERE name = 'twice' ORDER BY key"), ["k0", "k1", "k2"].map((key) => ({ key, digest })));
    assert.deepEqual(warnings, []);
  });
});
