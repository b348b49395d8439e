// The shared tier on a real PostgreSQL (a throwaway database per file on the machine's server): schema creation
// and migration under the advisory lock, values, blobs and trees whole or absent and checked, fenced leases,
// signing, read-only clients, and the tiered store filling the local cache.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync, symlinkSync, readlinkSync, existsSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { createHash } from "node:crypto";
import { LockTimeoutError, SCHEMA_VERSION, TieredStore, openRemoteStore, openStore, type RemoteStoreOptions, type StoreWarning } from "../src/index.js";
import { createTestDatabase, suiteDatabase, postgresSkipReason, sql } from "./remote-servers.js";

describe("the shared tier on PostgreSQL", { skip: postgresSkipReason }, () => {
  const suite = suiteDatabase("cachet-remote-store-");
  const { dirs, open, collect } = suite;

  test("a schema from an older cachet is migrated in place and keeps its entries", async () => {
    const old = await createTestDatabase();
    try {
      await (await openRemoteStore({ url: old.url, schemaVersion: 1 })).close();
      assert.deepEqual(await sql(old.url, "SELECT version FROM cachet_schema"), [{ version: 1 }]);
      const bytes = Buffer.from("written by version 1");
      await sql(old.url, "INSERT INTO cachet_entries (name, key, storage, digest, size, inline, origin, cost_ms, format) VALUES ('t', 'k', 'inline', $1, $2, $3, 'computed', 1, 'f/1')", [
        createHash("sha256").update(bytes).digest("hex"),
        bytes.byteLength,
        bytes,
      ]);
      const store = await openRemoteStore({ url: old.url });
      try {
        assert.deepEqual(await sql(old.url, "SELECT version FROM cachet_schema"), [{ version: SCHEMA_VERSION }]);
        const got = await store.getValue("t", "k");
        assert.equal(Buffer.from(got!.data).toString(), "written by version 1");
        assert.equal(got!.format, "f/1");
        await store.put("t", "k2", "after the migration");
        assert.equal(Buffer.from((await store.getValue("t", "k2"))!.data).toString(), "after the migration");
      } finally {
        await store.close();
      }
    } finally {
      await old.drop();
    }
  });

  test("values inline and as chunked blobs come back exactly, checked, with their metadata", async () => {
    const store = await open();
    try {
      const small = await store.put("values", "small", "hello", { format: "text/1", components: { b: 1, a: [2] }, costMs: 5 });
      assert.equal(small.storage, "inline");
      const big = Buffer.alloc(3 * (1 << 20) + 123, 7);
      big.write("start", 0);
      big.write("end", big.byteLength - 3);
      const blob = await store.put("values", "big", big, { format: "bin/1" });
      assert.equal(blob.storage, "blob");
      assert.equal(blob.digest, createHash("sha256").update(big).digest("hex"));
      const got = await store.getValue("values", "big");
      assert.ok(Buffer.from(got!.data).equals(big));
      assert.equal(got!.format, "bin/1");
      assert.equal(Buffer.from((await store.getValue("values", "small"))!.data).toString(), "hello");
      assert.deepEqual(store.components("values", "small"), { a: [2], b: 1 });
      const chunks = await sql<{ n: string }>(suite.url, "SELECT count(*) AS n FROM cachet_blob_chunks c JOIN cachet_blobs b ON b.id = c.blob_id WHERE b.digest = $1", [blob.digest]);
      assert.equal(Number(chunks[0]!.n), 4);
      const storage = await sql<{ attstorage: string }>(suite.url, "SELECT attstorage FROM pg_attribute WHERE attrelid = 'cachet_blob_chunks'::regclass AND attname = 'data'");
      assert.equal(storage[0]!.attstorage, "e");
      assert.equal(await store.getValue("values", "absent"), undefined);
    } finally {
      await store.close();
    }
  });

  test("a blob shared by many entries is uploaded once; streams go in and out in chunks", async () => {
    const store = await open();
    try {
      const content = Buffer.alloc(40_000, 3);
      for (let i = 0; i < 5; i++) await store.put("shared", `k${i}`, content);
      const digest = createHash("sha256").update(content).digest("hex");
      assert.equal((await sql(suite.url, "SELECT id FROM cachet_blobs WHERE digest = $1", [digest])).length, 1);
      // Streams of the same content at once (digest unknown until the end): both entries, one blob.
      const same = () => Readable.from([Buffer.alloc(1 << 20, 8), Buffer.alloc(300_000, 9)]);
      const [a, b] = await Promise.all([store.putStream("shared", "same-a", same()), store.putStream("shared", "same-b", same())]);
      assert.equal(a.digest, b.digest);
      assert.equal((await sql(suite.url, "SELECT id FROM cachet_blobs WHERE digest = $1", [a.digest])).length, 1);
      assert.equal((await store.getValue("shared", "same-b"))!.data.byteLength, (1 << 20) + 300_000);
      const again = await store.putStream("shared", "same-c", same());
      assert.equal(again.digest, a.digest);
      const pieces = Array.from({ length: 50 }, (_, i) => Buffer.alloc(50_000, i));
      const info = await store.putStream("shared", "streamed", Readable.from(pieces));
      const whole = Buffer.concat(pieces);
      assert.equal(info.size, whole.byteLength);
      const stream = await store.getStream("shared", "streamed");
      const back: Buffer[] = [];
      for await (const part of stream!) back.push(part as Buffer);
      assert.ok(Buffer.concat(back).equals(whole));
    } finally {
      await store.close();
    }
  });

  test("a blob of one chunk goes up with its entry atomically: stored content is kept, a refused entry leaves no blob", async () => {
    const store = await open();
    try {
      const counts = async (digest: string) => {
        const [row] = await sql<{ blobs: string; chunks: string }>(
          suite.url,
          "SELECT (SELECT count(*) FROM cachet_blobs WHERE digest = $1) AS blobs, (SELECT count(*) FROM cachet_blob_chunks c JOIN cachet_blobs b ON b.id = c.blob_id WHERE b.digest = $1) AS chunks",
          [digest],
        );
        return [Number(row!.blobs), Number(row!.chunks)];
      };
      const whole = Buffer.alloc(1 << 20, 4);
      const first = await store.putStream("one", "a", [whole], { format: "bin/1" });
      const second = await store.putStream("one", "b", Readable.from([whole.subarray(0, 1000), whole.subarray(1000)]));
      assert.equal(first.digest, createHash("sha256").update(whole).digest("hex"));
      assert.equal(second.digest, first.digest);
      assert.deepEqual(await counts(first.digest), [1, 1]);
      for (const key of ["a", "b"]) assert.ok(Buffer.from((await store.getValue("one", key))!.data).equals(whole));
      // The same new content from two writers at once: both entries, one blob of one chunk.
      const twice = Buffer.alloc(500_000, 5);
      const [c, d] = await Promise.all([store.putStream("one", "c", [twice]), store.putStream("one", "d", [twice])]);
      assert.equal(c.digest, d.digest);
      assert.deepEqual(await counts(c.digest), [1, 1]);
      assert.ok(Buffer.from((await store.getValue("one", "d"))!.data).equals(twice));
      assert.equal((await store.getValue("one", "a"))!.format, "bin/1");
      const empty = await store.putStream("one", "empty", Readable.from([]));
      assert.equal(empty.size, 0);
      assert.equal((await store.getValue("one", "empty"))!.data.byteLength, 0);
      // PostgreSQL refuses a NUL in jsonb: the entry fails, and the blob that went up in the same statement with it is not kept.
      const refused = Buffer.alloc(200_000, 6);
      await assert.rejects(store.put("one", "refused", refused, { components: { text: "\u0000" } }), { code: "CACHET_REMOTE_REFUSED" });
      assert.deepEqual(await counts(createHash("sha256").update(refused).digest("hex")), [0, 0]);
      assert.equal(await store.getValue("one", "refused"), undefined);
    } finally {
      await store.close();
    }
  });

  test("changed content in the database is never returned: a miss with one warning; a read-only client removes nothing", async () => {
    const { warnings, onWarning } = collect();
    const writer = await open();
    const store = await open({ write: false, onWarning });
    try {
      const big = Buffer.alloc(2 << 20, 1);
      const info = await writer.put("damage", "blob", big);
      await writer.put("damage", "inline", "the right bytes");
      await sql(suite.url, "UPDATE cachet_blob_chunks SET data = $1 WHERE seq = 1 AND blob_id = (SELECT id FROM cachet_blobs WHERE digest = $2)", [Buffer.alloc(1 << 20, 2), info.digest]);
      await sql(suite.url, "UPDATE cachet_entries SET inline = $1 WHERE name = 'damage' AND key = 'inline'", [Buffer.from("the wrong bytes")]);
      assert.equal(await store.getValue("damage", "blob"), undefined);
      assert.equal(await store.getValue("damage", "inline"), undefined);
      const stream = await store.getStream("damage", "blob");
      await assert.rejects(async () => {
        for await (const _ of stream!) void _;
      }, /corrupt/);
      assert.deepEqual(warnings.map((warning) => warning.code), ["CACHET_INTEGRITY"]);
      assert.doesNotMatch(warnings[0]!.message, /removed/);
      assert.deepEqual(await sql(suite.url, "SELECT count(*)::int AS n FROM cachet_blobs WHERE digest = $1", [info.digest]), [{ n: 1 }]);
      assert.deepEqual(await sql(suite.url, "SELECT count(*)::int AS n FROM cachet_entries WHERE name = 'damage'"), [{ n: 2 }]);
    } finally {
      await Promise.all([writer.close(), store.close()]);
    }
  });

  test("a stream's entry, blob and first chunks come in one query, checked as any read: pages in order, damage, signature, a missing blob", async () => {
    const { warnings, onWarning } = collect();
    const signer = await open({ signingKey: "stream key" });
    const reader = await open({ signingKey: "stream key", onWarning });
    const readAll = async (stream: Readable | undefined) => {
      const parts: Buffer[] = [];
      for await (const part of stream!) parts.push(part as Buffer);
      return Buffer.concat(parts);
    };
    try {
      // Nine chunks and a bit: the first page comes with the entry, the rest four chunks per query.
      const paged = Buffer.concat([...Array.from({ length: 9 }, (_, i) => Buffer.alloc(1 << 20, i + 1)), Buffer.alloc(1000, 42)]);
      await signer.put("streams", "paged", paged);
      assert.ok((await readAll(await reader.getStream("streams", "paged"))).equals(paged));
      await signer.put("streams", "small", "inline bytes");
      assert.equal((await readAll(await reader.getStream("streams", "small"))).toString(), "inline bytes");
      assert.equal(await reader.getStream("streams", "absent"), undefined);

      // A blob of one chunk, one byte changed in the database: the stream errors before it ends.
      const one = Buffer.alloc(1 << 20, 7);
      const info = await signer.put("streams", "one", one);
      assert.ok((await readAll(await reader.getStream("streams", "one"))).equals(one));
      await sql(suite.url, "UPDATE cachet_blob_chunks SET data = overlay(data placing '\\x08'::bytea from 500000) WHERE blob_id = (SELECT id FROM cachet_blobs WHERE digest = $1)", [info.digest]);
      await assert.rejects(readAll(await reader.getStream("streams", "one")), { code: "CACHET_INTEGRITY" });

      // Changed metadata of a signed entry: a miss, none of its content used.
      await sql(suite.url, "UPDATE cachet_entries SET format = 'v/2' WHERE name = 'streams' AND key = 'paged'");
      assert.equal(await reader.getStream("streams", "paged"), undefined);

      // An entry whose blob is gone: a miss.
      const gone = await signer.put("streams", "gone", Buffer.alloc(100_000, 5));
      await sql(suite.url, "DELETE FROM cachet_blobs WHERE digest = $1", [gone.digest]);
      assert.equal(await reader.getStream("streams", "gone"), undefined);
      assert.deepEqual(warnings.map((warning) => warning.code).sort(), ["CACHET_BAD_SIGNATURE", "CACHET_INTEGRITY", "CACHET_MISSING_CONTENT"]);
    } finally {
      await Promise.all([signer.close(), reader.close()]);
    }
  });

  test("trees go in as one archive and come out whole, with modes and symlinks; a target in the way needs replace", async () => {
    const store = await open();
    try {
      const source = join(dirs.path, "tree-src");
      mkdirSync(join(source, "sub", "deeper"), { recursive: true });
      writeFileSync(join(source, "a.txt"), "alpha");
      writeFileSync(join(source, "sub", "run.sh"), "#!/bin/sh\necho hi\n", { mode: 0o755 });
      writeFileSync(join(source, "sub", "deeper", "big.bin"), Buffer.alloc(3 << 20, 9));
      writeFileSync(join(source, "empty"), "");
      symlinkSync("a.txt", join(source, "link"));
      const info = await store.putTree("trees", "t1", source);
      assert.equal(info.storage, "tree");
      const target = join(dirs.path, "tree-out");
      const tally = await store.linkTree("trees", "t1", target);
      assert.equal(tally!.files, 4);
      assert.equal(readFileSync(join(target, "a.txt"), "utf8"), "alpha");
      assert.equal(readFileSync(join(target, "empty"), "utf8"), "");
      assert.equal(readlinkSync(join(target, "link")), "a.txt");
      assert.ok(readFileSync(join(target, "sub", "deeper", "big.bin")).equals(Buffer.alloc(3 << 20, 9)));
      await assert.rejects(store.linkTree("trees", "t1", target), { code: "CACHET_LINK_TARGET" });
      writeFileSync(join(target, "a.txt"), "edited");
      await store.linkTree("trees", "t1", target, { replace: true });
      assert.equal(readFileSync(join(target, "a.txt"), "utf8"), "alpha");
      const inPlace = await store.treePath("trees", "t1");
      assert.equal(readFileSync(join(inPlace!, "sub", "run.sh"), "utf8"), "#!/bin/sh\necho hi\n");
      await assert.rejects(store.getValue("trees", "t1"), { code: "CACHET_ENTRY_KIND" });
      assert.equal(await store.linkTree("trees", "absent", join(dirs.path, "nothing")), undefined);
      assert.equal(existsSync(join(dirs.path, "nothing")), false);
    } finally {
      await store.close();
    }
  });

  test("leases are fenced: a holder whose lease was taken over cannot commit, and the newer result stands", async () => {
    const first = await open({ leaseExpirySeconds: 30 });
    const second = await open({ leaseExpirySeconds: 30 });
    try {
      const held = await first.lockKey("fenced", "k");
      assert.ok(held.lease);
      await assert.rejects(second.lockKey("fenced", "k", { timeoutSeconds: 0.3 }), LockTimeoutError);
      // The first holder is paused past its expiry (as if stopped), and the second takes over.
      await sql(suite.url, "UPDATE cachet_leases SET expires_at = now() - interval '1 second' WHERE name = 'fenced'");
      const taken = await second.lockKey("fenced", "k");
      assert.ok(BigInt(taken.lease!.token) > BigInt(held.lease!.token));
      await second.put("fenced", "k", "newer");
      await second.put("fenced", "k.0", "newer content entry");
      await assert.rejects(first.put("fenced", "k", "stale"), { code: "CACHET_LEASE_LOST" });
      await assert.rejects(first.put("fenced", "k.0", "stale content entry"), { code: "CACHET_LEASE_LOST" });
      // Blobs too, of one chunk and of several: refused, and nothing of them is kept.
      for (const size of [100_000, 3 * (1 << 20)]) {
        const stale = Buffer.alloc(size, 11);
        await assert.rejects(first.putStream("fenced", "k.1", [stale]), { code: "CACHET_LEASE_LOST" });
        assert.deepEqual(await sql(suite.url, "SELECT id FROM cachet_blobs WHERE digest = $1", [createHash("sha256").update(stale).digest("hex")]), []);
        assert.equal((await second.putStream("fenced", "k.1", [Buffer.alloc(size, 12)])).size, size);
      }
      assert.equal(Buffer.from((await first.getValue("fenced", "k"))!.data).toString(), "newer");
      taken.release();
      held.release();
      const again = await first.lockKey("fenced", "k", { timeoutSeconds: 5 });
      assert.ok(again.lease);
      again.release();
    } finally {
      await first.close();
      await second.close();
    }
  });

  test("a held lease is kept alive by its heartbeat past its expiry, and a taken-over one is marked lost", async () => {
    const holder = await open({ leaseExpirySeconds: 1 });
    const other = await open({ leaseExpirySeconds: 1 });
    try {
      const held = await holder.lockKey("heartbeat", "k");
      await new Promise((resolve) => setTimeout(resolve, 2500));
      await assert.rejects(other.lockKey("heartbeat", "k", { timeoutSeconds: 0.2 }), LockTimeoutError);
      assert.equal(held.lost, false);
      const [row] = await sql<{ left: number }>(suite.url, "SELECT extract(epoch FROM expires_at - now()) AS left FROM cachet_leases WHERE name = 'heartbeat'");
      assert.ok(Number(row!.left) > 0, "the lease was extended");
      // Expired by hand; the holder's heartbeat may extend it again before the other asks (a holder that is still
      // alive keeps a lease nobody took), so this is tried until the other gets in first.
      let taken: Awaited<ReturnType<typeof other.lockKey>> | undefined;
      for (let attempt = 0; taken === undefined; attempt++) {
        await sql(suite.url, "UPDATE cachet_leases SET expires_at = now() - interval '1 second' WHERE name = 'heartbeat'");
        try {
          taken = await other.lockKey("heartbeat", "k", { timeoutSeconds: 0.3 });
        } catch (error) {
          if (!(error instanceof LockTimeoutError) || attempt === 30) throw error;
        }
      }
      for (let i = 0; i < 40 && !held.lost; i++) await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(held.lost, true);
      taken.release();
      held.release();
    } finally {
      await holder.close();
      await other.close();
    }
  });

  test("a waiter is let go without the lease when the key's entry is written while it waits", async () => {
    const first = await open();
    const second = await open();
    try {
      const held = await first.lockKey("waiting", "k");
      let waited = false;
      const waiting = second.lockKey("waiting", "k", { onWait: () => (waited = true), timeoutSeconds: 20 });
      await new Promise((resolve) => setTimeout(resolve, 200));
      await first.put("waiting", "k", "done");
      const lock = await waiting;
      assert.equal(waited, true);
      assert.equal(lock.lease, undefined);
      held.release();
    } finally {
      await first.close();
      await second.close();
    }
  });

  test("signing: tampered content, tampered metadata, an unsigned entry and a wrong key are never returned", async () => {
    const { warnings, onWarning } = collect();
    const signer = await open({ signingKey: "right key" });
    const unsigned = await open();
    const reader = await open({ signingKey: "right key", onWarning });
    const wrongKey = await open({ signingKey: "wrong key", onWarning: () => {} });
    try {
      await signer.put("signed", "good", "trusted", { format: "v/1" });
      await signer.put("signed", "content", "original", { format: "v/1" });
      await signer.put("signed", "meta", "original", { format: "v/1" });
      await unsigned.put("signed", "unsigned", "anyone wrote this", { format: "v/1" });
      assert.equal(Buffer.from((await reader.getValue("signed", "good"))!.data).toString(), "trusted");
      const evil = Buffer.from("poisoned");
      await sql(suite.url, "UPDATE cachet_entries SET inline = $1, digest = $2, size = $3 WHERE name = 'signed' AND key = 'content'", [
        evil,
        createHash("sha256").update(evil).digest("hex"),
        evil.byteLength,
      ]);
      await sql(suite.url, "UPDATE cachet_entries SET format = 'v/2' WHERE name = 'signed' AND key = 'meta'");
      assert.equal(await reader.getValue("signed", "content"), undefined);
      assert.equal(await reader.getValue("signed", "meta"), undefined);
      assert.equal(await reader.getValue("signed", "unsigned"), undefined);
      assert.equal(await wrongKey.getValue("signed", "good"), undefined);
      assert.deepEqual(warnings.map((warning) => warning.code), ["CACHET_BAD_SIGNATURE"]);
    } finally {
      await Promise.all([signer.close(), unsigned.close(), reader.close(), wrongKey.close()]);
    }
  });

  test("a read-only client reads but every write is refused, and creates no schema", async () => {
    const writer = await open();
    const reader = await open({ write: false });
    try {
      await writer.put("ro", "k", "shared");
      assert.equal(Buffer.from((await reader.getValue("ro", "k"))!.data).toString(), "shared");
      await assert.rejects(reader.put("ro", "k", "mine"), { code: "CACHET_REMOTE_READ_ONLY" });
      await assert.rejects(reader.delete("ro", "k"), { code: "CACHET_REMOTE_READ_ONLY" });
    } finally {
      await writer.close();
      await reader.close();
    }
    // A read-only client creates no schema: on a database without one it cannot open.
    const empty = await createTestDatabase();
    try {
      await assert.rejects(openRemoteStore({ url: empty.url, write: false }), /schema version 0/);
      assert.deepEqual(await sql(empty.url, "SELECT relname FROM pg_class WHERE relname LIKE 'cachet_%'"), []);
    } finally {
      await empty.drop();
    }
  });

  test("the tiered store: a value written on one machine is a remote hit on another and fills its local cache", async () => {
    const makeTiered = async (label: string, write = true) =>
      new TieredStore({
        local: await openStore({ cacheDir: join(dirs.path, label) }),
        openRemote: () => open({ write }),
        remoteName: "test",
        onWarning: (warning) => assert.fail(`unexpected warning ${warning.code}: ${warning.message}`),
      });
    const one = await makeTiered("machine-one");
    const two = await makeTiered("machine-two");
    try {
      await one.put("tiered", "k", "from machine one", { format: "x/1", components: { input: 1 } });
      const tree = join(dirs.path, "tiered-tree");
      mkdirSync(tree, { recursive: true });
      writeFileSync(join(tree, "f"), "file in a tree");
      await one.putTree("tiered", "tree", tree, { origin: "downloaded", components: { commit: "c1" } });
      await one.putStream("tiered", "stream", Readable.from([Buffer.alloc(64 * 1024, 7)]), { format: "s/1", origin: "downloaded", components: { url: "u" } });
      await one.close(); // flushes the upload queue
      assert.equal(two.info("tiered", "k"), undefined);
      const got = await two.getValue("tiered", "k");
      assert.equal(Buffer.from(got!.data).toString(), "from machine one");
      assert.equal(two.local.info("tiered", "k")?.format, "x/1");
      assert.deepEqual(two.local.components("tiered", "k"), { input: 1 });
      const path = await two.treePath("tiered", "tree");
      assert.ok(path!.startsWith(two.root));
      assert.equal(readFileSync(join(path!, "f"), "utf8"), "file in a tree");
      // Each local copy carries the metadata of the very row it was read from.
      assert.equal(two.local.info("tiered", "tree")?.origin, "downloaded");
      assert.deepEqual(two.local.components("tiered", "tree"), { commit: "c1" });
      const stream = await two.getStream("tiered", "stream");
      let bytes = 0;
      for await (const chunk of stream!) bytes += (chunk as Buffer).length;
      assert.equal(bytes, 64 * 1024);
      assert.deepEqual([two.local.info("tiered", "stream")?.format, two.local.info("tiered", "stream")?.origin], ["s/1", "downloaded"]);
      assert.deepEqual(two.local.components("tiered", "stream"), { url: "u" });
    } finally {
      await two.close();
    }
  });
});
