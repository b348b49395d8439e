// Damaged content in the shared tier is repaired, not a miss forever: a writable client that finds a blob (or an
// inline value) whose bytes fail their digest removes that row, so the next upload of the content stores it again.
// And a chunked upload whose twin blob a prune removes at the last moment still commits, on its own blob.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { createHash } from "node:crypto";
import pg from "pg";
import { TieredStore, openStore, type RemoteStore } from "../src/index.js";
import { postgresSkipReason, sql, suiteDatabase } from "./remote-servers.js";

const MiB = 1 << 20;

function sha256(bytes: Buffer): string {
  return createHash("sha256").update(bytes).digest("hex");
}

async function readAll(stream: Readable | undefined): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream!) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

describe("repairing damaged content in the shared tier", { skip: postgresSkipReason }, () => {
  const suite = suiteDatabase("cachet-remote-repair-");
  const { dirs, open, collect } = suite;
  const signingKey = "repair key";

  const blobRows = async (digest: string) => (await sql<{ n: number }>(suite.url, "SELECT count(*)::int AS n FROM cachet_blobs WHERE digest = $1", [digest]))[0]!.n;
  const damage = (digest: string, seq: number) =>
    sql(suite.url, "UPDATE cachet_blob_chunks c SET data = decode(repeat('00', length(c.data)), 'hex') FROM cachet_blobs b WHERE b.id = c.blob_id AND b.digest = $1 AND c.seq = $2", [digest, seq]);

  /** Reads through a client of its own, as another machine would. */
  async function freshly<T>(read: (store: RemoteStore) => Promise<T>): Promise<T> {
    const store = await open({ signingKey });
    try {
      return await read(store);
    } finally {
      await store.close();
    }
  }

  test("a writable reader removes a damaged blob; the next upload of the content stores it again and its entries are hits again", async () => {
    const { warnings, onWarning } = collect();
    const writer = await open({ signingKey });
    const reader = await open({ signingKey, onWarning });
    try {
      // Several chunks (a chunked upload), and one chunk (one statement).
      const big = Buffer.concat([Buffer.alloc(2 * MiB, 1), Buffer.from("the end")]);
      const small = Buffer.alloc(100_000, 2);
      const bigInfo = await writer.put("repair", "big", big);
      const smallInfo = await writer.put("repair", "small", small);
      await damage(bigInfo.digest, 1);
      await damage(smallInfo.digest, 0);

      assert.equal(await reader.getValue("repair", "big"), undefined);
      assert.equal(await blobRows(bigInfo.digest), 0);
      assert.match(warnings[0]!.message, /corrupt.*removed from the shared cache/);
      // As a stream: the stream fails, and the blob is gone by then.
      await assert.rejects(readAll(await reader.getStream("repair", "small")), { code: "CACHET_INTEGRITY" });
      assert.equal(await blobRows(smallInfo.digest), 0);
      assert.deepEqual(warnings.map((warning) => warning.code), ["CACHET_INTEGRITY"]);
      // The entries stay (a miss until the content is back), and an upload of the content sends it again.
      assert.deepEqual(await sql(suite.url, "SELECT count(*)::int AS n FROM cachet_entries WHERE name = 'repair'"), [{ n: 2 }]);
      await writer.put("repair", "big-again", big);
      await writer.putStream("repair", "small", Readable.from([small]), { digest: smallInfo.digest });
      assert.equal(await blobRows(bigInfo.digest), 1);
      await freshly(async (store) => {
        assert.ok(Buffer.from((await store.getValue("repair", "big"))!.data).equals(big));
        assert.ok(Buffer.from((await store.getValue("repair", "big-again"))!.data).equals(big));
        assert.ok((await readAll(await store.getStream("repair", "small"))).equals(small));
      });
    } finally {
      await Promise.all([writer.close(), reader.close()]);
    }
  });

  test("a damaged inline value: its entry row is removed while it is still that row, and the next write stores it again", async () => {
    const { warnings, onWarning } = collect();
    const writer = await open({ signingKey });
    const reader = await open({ signingKey, onWarning });
    try {
      await writer.put("inline-repair", "k", "the right bytes");
      await sql(suite.url, "UPDATE cachet_entries SET inline = $1 WHERE name = 'inline-repair' AND key = 'k'", [Buffer.from("the wrong bytes")]);
      assert.equal(await reader.getValue("inline-repair", "k"), undefined);
      assert.deepEqual(await sql(suite.url, "SELECT count(*)::int AS n FROM cachet_entries WHERE name = 'inline-repair'"), [{ n: 0 }]);
      assert.deepEqual(warnings.map((warning) => warning.code), ["CACHET_INTEGRITY"]);
      await writer.put("inline-repair", "k", "the right bytes");
      assert.equal(Buffer.from((await freshly((store) => store.getValue("inline-repair", "k")))!.data).toString(), "the right bytes");
    } finally {
      await Promise.all([writer.close(), reader.close()]);
    }
  });

  test("a damaged tree archive is removed, also when the damage makes it unreadable before its end", async () => {
    const { warnings, onWarning } = collect();
    const writer = await open({ signingKey });
    const reader = await open({ signingKey, onWarning, scratchDir: dirs.path });
    try {
      const source = join(dirs.path, "tree-src");
      mkdirSync(join(source, "sub"), { recursive: true });
      writeFileSync(join(source, "sub", "large.bin"), Buffer.alloc(MiB + 1000, 5));
      writeFileSync(join(source, "note.txt"), "a tree");
      const info = await writer.putTree("tree-repair", "t", source);
      // The first chunk holds the archive's header line: unpacking refuses it before the digest is known.
      await damage(info.digest, 0);
      assert.equal(await reader.linkTree("tree-repair", "t", join(dirs.path, "target-1")), undefined);
      assert.equal(await blobRows(info.digest), 0);
      assert.match(warnings[0]!.message, /removed from the shared cache/);
      await writer.putTree("tree-repair", "t", source);
      const target = join(dirs.path, "target-2");
      assert.ok(await freshly((store) => store.linkTree("tree-repair", "t", target)));
      assert.equal(readFileSync(join(target, "note.txt"), "utf8"), "a tree");
    } finally {
      await Promise.all([writer.close(), reader.close()]);
    }
  });

  test("through the tiered store: a local miss, the remote blob damaged, the result computed locally, and its upload repairs the remote", async () => {
    const value = Buffer.concat([Buffer.alloc(3 * MiB, 7), Buffer.from("computed")]);
    const writer = await open({ signingKey });
    let digest: string;
    try {
      digest = (await writer.put("tiered-repair", "k", value)).digest;
    } finally {
      await writer.close();
    }
    await damage(digest, 2);
    const { warnings, onWarning } = collect();
    const tiered = new TieredStore({
      local: await openStore({ cacheDir: join(dirs.path, "tiered-local") }),
      openRemote: () => open({ signingKey, onWarning }),
      remoteName: "test",
      onWarning,
    });
    try {
      assert.equal(await tiered.getValue("tiered-repair", "k"), undefined);
      await tiered.put("tiered-repair", "k", value);
    } finally {
      // Waits for the queued upload.
      await tiered.close();
    }
    assert.deepEqual(warnings.map((warning) => warning.code), ["CACHET_INTEGRITY"]);
    assert.equal(sha256(Buffer.from((await freshly((store) => store.getValue("tiered-repair", "k")))!.data)), digest);
  });

  test("a chunked upload whose stored twin a prune removes before its commit is committed on its own blob", async () => {
    const content = Buffer.concat([Buffer.alloc(2 * MiB, 3), Buffer.from("twin")]);
    const digest = sha256(content);
    const other = await open({ signingKey });
    try {
      // Another writer's blob of the same content, whose entry is gone: unreferenced, so a prune removes it.
      await other.put("twins-gone", "other", content);
      await other.delete("twins-gone", "other");
    } finally {
      await other.close();
    }
    // A prune that runs just before this writer's entry row takes its lock: the twin goes at that very moment.
    await sql(
      suite.url,
      `CREATE FUNCTION cachet_test_prune_twin() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN DELETE FROM cachet_blobs b WHERE b.digest = NEW.digest; RETURN NEW; END $$`,
    );
    await sql(suite.url, "CREATE TRIGGER cachet_test_prune_twin BEFORE INSERT ON cachet_entries FOR EACH ROW WHEN (NEW.name = 'twins-gone') EXECUTE FUNCTION cachet_test_prune_twin()");
    const writer = await open({ signingKey });
    try {
      const info = await writer.putStream("twins-gone", "mine", Readable.from([content]));
      assert.equal(info.digest, digest);
    } finally {
      await writer.close();
      await sql(suite.url, "DROP TRIGGER cachet_test_prune_twin ON cachet_entries");
    }
    assert.equal(await blobRows(digest), 1);
    assert.deepEqual(await sql(suite.url, "SELECT count(*)::int AS n FROM cachet_blobs WHERE digest IS NULL"), [{ n: 0 }]);
    assert.ok(Buffer.from((await freshly((store) => store.getValue("twins-gone", "mine")))!.data).equals(content));
  });

  /**
   * A trigger that makes each writer reaching it wait for an advisory lock the test holds, so the test decides when
   * they go on. `until` waits for `count` rows of `query` (by default: writers waiting for that lock).
   */
  async function heldAt(name: string, timing: string, table: string, when: string, lock: number) {
    await sql(suite.url, `CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_advisory_xact_lock_shared(${lock}); RETURN NEW; END $$`);
    await sql(suite.url, `CREATE TRIGGER ${name} ${timing} ON ${table} FOR EACH ROW WHEN (${when}) EXECUTE FUNCTION ${name}()`);
    const holder = new pg.Client({ connectionString: suite.url });
    await holder.connect();
    await holder.query("SELECT pg_advisory_lock($1)", [lock]);
    return {
      async until(what: string, count: number, query = `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = ${lock} AND NOT granted`) {
        for (let tries = 0; (await holder.query<{ n: number }>(query)).rows[0]!.n < count; tries++) {
          if (tries === 1500) throw new Error(`never reached: ${what}`);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      },
      release: () => holder.query("SELECT pg_advisory_unlock($1)", [lock]),
      async end() {
        await holder.end();
        await sql(suite.url, `DROP TRIGGER ${name} ON ${table}`);
      },
    };
  }

  test("two chunked uploads of the same content naming their blobs at the same moment: one blob, both entries", async () => {
    const content = Buffer.concat([Buffer.alloc(2 * MiB, 4), Buffer.from("same moment")]);
    // Each writer, about to name its blob, waits: both have looked for a stored blob (none) before either names its own.
    const held = await heldAt("cachet_test_hold_naming", "BEFORE UPDATE", "cachet_blobs", "OLD.digest IS NULL AND NEW.digest IS NOT NULL", 7_406_001);
    const [a, b] = [await open({ signingKey }), await open({ signingKey })];
    try {
      const uploads = [a.putStream("same-moment", "a", Readable.from([content])), b.putStream("same-moment", "b", Readable.from([content]))] as const;
      uploads.forEach((upload) => upload.catch(() => {}));
      await held.until("both uploads naming their blobs", 2);
      await held.release();
      const [infoA, infoB] = await Promise.all(uploads);
      assert.equal(infoA.digest, infoB.digest);
    } finally {
      await held.end();
      await Promise.all([a.close(), b.close()]);
    }
    assert.equal(await blobRows(sha256(content)), 1);
    assert.deepEqual(await sql(suite.url, "SELECT count(*)::int AS n FROM cachet_blobs WHERE digest IS NULL"), [{ n: 0 }]);
    await freshly(async (store) => {
      for (const key of ["a", "b"]) assert.ok(Buffer.from((await store.getValue("same-moment", key))!.data).equals(content), key);
    });
  });

  test("a commit on a stored blob and a one-statement upload of the same content to the same key at once: both end, no deadlock", async () => {
    const content = Buffer.alloc(200_000, 5);
    const [seed, a, b] = [await open({ signingKey }), await open({ signingKey }), await open({ signingKey })];
    await seed.put("at-once", "seed", content);
    // The first writer, its entry row written, waits before it checks its blob is still there.
    const held = await heldAt("cachet_test_hold_commit", "AFTER INSERT", "cachet_entries", "NEW.name = 'at-once' AND NEW.origin = 'downloaded'", 7_406_002);
    try {
      // Finds the blob stored, so it commits its entry on its own (entry row, then the blob's row locked).
      const first = a.put("at-once", "k", content, { origin: "downloaded" });
      first.catch(() => {});
      await held.until("the first writer held", 1);
      // Streams the content (no digest known first): its one statement locks the stored blob's row, then waits for the key's row.
      const second = b.putStream("at-once", "k", Readable.from([content]));
      second.catch(() => {});
      await held.until("the second writer waiting for the key", 1, "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'transactionid' AND NOT granted");
      await held.release();
      const [infoA, infoB] = await Promise.all([first, second]);
      assert.equal(infoA.digest, sha256(content));
      assert.equal(infoB.digest, sha256(content));
    } finally {
      await held.end();
      await Promise.all([seed.close(), a.close(), b.close()]);
    }
    assert.equal(await blobRows(sha256(content)), 1);
    assert.ok(Buffer.from((await freshly((store) => store.getValue("at-once", "k")))!.data).equals(content));
  });
});
