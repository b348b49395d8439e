// `cachet cache ls | size | clean | prune | verify --remote`, run as the real CLI against a throwaway database on
// the machine's PostgreSQL; and connection strings with passwords, which are never printed.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openRemoteStore, openStore, FILE_DIGEST_MEMO_NAME, sha256Hex } from "../src/index.js";
import { createTestDatabase, postgresSkipReason, sql } from "./remote-servers.js";
import { runCli, tempDir } from "./helpers.js";
import { freePort } from "./registry-servers.js";

describe("cachet cache … --remote", { skip: postgresSkipReason }, () => {
  let db: { url: string; drop: () => Promise<void> };
  let withPassword: string;
  before(async () => {
    db = await createTestDatabase();
    // Trust authentication ignores the password, so this URL works and shows whether it is ever printed.
    withPassword = db.url.replace("postgres://postgres@", "postgres://postgres:pa55w0rd-secret@");
  });
  after(async () => {
    await db?.drop();
  });

  function assertNoPassword(run: { stdout: string; stderr: string }): void {
    assert.doesNotMatch(run.stdout + run.stderr, /pa55w0rd/);
  }

  test("ls, size, clean by name, prune and verify act on the shared tier", async () => {
    const store = await openRemoteStore({ url: db.url });
    try {
      await store.put("alpha", "k1", "one", { format: "f/1" });
      await store.put("alpha", "k2", Buffer.alloc(100_000, 1));
      await store.put("beta", "k1", Buffer.alloc(200_000, 2));
      await store.put("gamma", "old", Buffer.alloc(50_000, 3));
      await store.put("gamma", "bad", Buffer.alloc(30_000, 4));
      const lease = await store.lockKey("gamma", "leased");
      lease.release();
    } finally {
      await store.close();
    }
    const ls = await runCli(["cache", "ls", "--remote", withPassword]);
    assert.equal(ls.code, 0, ls.stderr);
    assertNoPassword(ls);
    const rows = ls.stdout.trim().split("\n").slice(1).map((line) => line.split("\t").slice(0, 2).join("/"));
    assert.deepEqual(rows.sort(), ["alpha/k1", "alpha/k2", "beta/k1", "gamma/bad", "gamma/old"]);

    const lsJson = await runCli(["cache", "ls", "alpha", "--json", "--remote"], { CACHET_REMOTE: withPassword });
    assert.equal(lsJson.code, 0, lsJson.stderr);
    assert.deepEqual(JSON.parse(lsJson.stdout).map((entry: { key: string }) => entry.key).sort(), ["k1", "k2"]);

    const size = await runCli(["cache", "size", "--json", "--remote", db.url]);
    assert.equal(size.code, 0, size.stderr);
    const measured = JSON.parse(size.stdout);
    assert.equal(measured.entries, 5);
    assert.equal(measured.bytes, 3 + 100_000 + 200_000 + 50_000 + 30_000);

    const clean = await runCli(["cache", "clean", "beta", "--remote", db.url]);
    assert.equal(clean.code, 0, clean.stderr);
    assert.match(clean.stderr, /Removed 1 entry, 1 blob/);
    assert.deepEqual(await sql(db.url, "SELECT name FROM cachet_entries WHERE name = 'beta'"), []);

    await sql(db.url, "UPDATE cachet_entries SET last_used_at = now() - interval '3 days', created_at = now() - interval '3 days' WHERE key = 'old'");
    await sql(db.url, "UPDATE cachet_leases SET expires_at = now() - interval '1 minute'");
    await sql(db.url, "INSERT INTO cachet_leases (name, key, owner, token, expires_at) VALUES ('gamma', 'expired', 'gone', 1, now() - interval '1 hour')");
    const ci = await runCli(["cache", "prune", "--ci", "--remote", db.url]);
    assert.equal(ci.code, 2, ci.stderr);
    assert.match(ci.stderr, /--ci prunes the local cache only/);
    const rehearsal = await runCli(["cache", "prune", "--max-age", "2d", "--dry-run", "--json", "--remote", db.url]);
    assert.equal(rehearsal.code, 0, rehearsal.stderr);
    assert.match(rehearsal.stderr, /Would remove 1 entry, 1 blob .* and 1 expired lease/);
    assert.deepEqual(JSON.parse(rehearsal.stdout), { dryRun: true, removed: { entries: 1, blobs: 1, bytes: 50_000, leases: 1 } });
    assert.deepEqual((await sql<{ key: string }>(db.url, "SELECT key FROM cachet_entries WHERE name = 'gamma' ORDER BY key")).map((row) => row.key), ["bad", "old"]);
    assert.equal((await sql<{ n: number }>(db.url, "SELECT count(*)::int AS n FROM cachet_blobs"))[0]!.n, 3);
    assert.equal((await sql<{ n: number }>(db.url, "SELECT count(*)::int AS n FROM cachet_leases"))[0]!.n, 1);

    const prune = await runCli(["cache", "prune", "--max-age", "2d", "--remote", db.url]);
    assert.equal(prune.code, 0, prune.stderr);
    assert.match(prune.stderr, /Removed 1 entry, 1 blob .* and 1 expired lease/);
    assert.deepEqual(await sql(db.url, "SELECT key FROM cachet_leases"), []);

    await sql(db.url, "UPDATE cachet_blob_chunks SET data = 'changed' WHERE blob_id = (SELECT b.id FROM cachet_blobs b JOIN cachet_entries e ON e.digest = b.digest WHERE e.key = 'bad')");
    const verify = await runCli(["cache", "verify", "--remote", db.url]);
    assert.equal(verify.code, 1, verify.stderr);
    assert.match(verify.stderr, /removed gamma\/bad/);
    const again = await runCli(["cache", "verify", "--remote", db.url]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /all good/);

    const sizeAfter = await runCli(["cache", "size", "--remote", db.url]);
    assert.equal(sizeAfter.stdout.trim(), String(3 + 100_000));
  });

  test("ls --remote shows a value's size as the local listing does, and a tree's as what it is: its archive's size", async () => {
    const dirs = tempDir("cachet-remote-ls-");
    try {
      const tree = join(dirs.path, "out");
      mkdirSync(join(tree, "sub"), { recursive: true });
      writeFileSync(join(tree, "sub", "a.bin"), Buffer.alloc(70_000, 1));
      writeFileSync(join(tree, "b.txt"), "tree file\n");
      const cacheDir = join(dirs.path, "cache");
      const local = await openStore({ cacheDir });
      const remote = await openRemoteStore({ url: db.url });
      try {
        for (const store of [local, remote]) {
          await store.putTree("ls-sizes", "tree", tree);
          await store.put("ls-sizes", "value", Buffer.alloc(40_000, 2));
        }
      } finally {
        await Promise.all([local.close(), remote.close()]);
      }
      const [archive] = await sql<{ size: string }>(db.url, "SELECT b.size FROM cachet_blobs b JOIN cachet_entries e ON e.digest = b.digest WHERE e.name = 'ls-sizes' AND e.key = 'tree'");
      const bySize = (stdout: string) => Object.fromEntries(JSON.parse(stdout).map((entry: { key: string }) => [entry.key, entry]));
      const localJson = bySize((await runCli(["cache", "ls", "ls-sizes", "--json", "--cache-dir", cacheDir])).stdout);
      const remoteRun = await runCli(["cache", "ls", "ls-sizes", "--json", "--remote", db.url]);
      assert.equal(remoteRun.code, 0, remoteRun.stderr);
      const remoteJson = bySize(remoteRun.stdout);
      assert.equal(localJson.tree.size, 70_000 + 10);
      assert.equal(remoteJson.value.size, localJson.value.size);
      assert.equal(remoteJson.tree.size, null);
      assert.equal(remoteJson.tree.archiveSize, Number(archive!.size));
      const text = await runCli(["cache", "ls", "ls-sizes", "--remote", db.url]);
      const rows = Object.fromEntries(text.stdout.trim().split("\n").slice(1).map((line) => line.split("\t")).map((cells) => [cells[1], cells[2]]));
      assert.match(rows.tree!, / archive$/);
      assert.doesNotMatch(rows.value!, /archive/);
    } finally {
      dirs.cleanup();
    }
  });

  test("push sends the local entries the shared tier lacks, once, whole, and never the machine's memo or a damaged entry", async () => {
    const dirs = tempDir("cachet-remote-push-");
    try {
      const cacheDir = join(dirs.path, "cache");
      const tree = join(dirs.path, "out");
      mkdirSync(join(tree, "sub"), { recursive: true });
      writeFileSync(join(tree, "sub", "a.txt"), "tree file\n");
      const big = Buffer.alloc(300_000, 7);
      const damaged = Buffer.alloc(200_000, 9);
      const local = await openStore({ cacheDir });
      try {
        await local.put("push-value", "v1", "small value", { format: "f/1", origin: "downloaded", costMs: 42 });
        await local.putStream("push-blob", "b1", [big]);
        await local.putTree("push-tree", "t1", tree);
        await local.put("push-damaged", "d1", damaged);
        await local.put(FILE_DIGEST_MEMO_NAME, "m1", "machine-local stats");
      } finally {
        await local.close();
      }
      // One local blob's bytes change on disk: it must be skipped, not sent.
      const blob = findFile(cacheDir, sha256Hex(damaged));
      chmodSync(blob, 0o644);
      writeFileSync(blob, Buffer.alloc(200_000, 8));

      const dry = await runCli(["--cache-dir", cacheDir, "cache", "push", "--dry-run", "--remote", db.url]);
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stderr, /Would push 4 entries/);
      assert.deepEqual(await sql(db.url, "SELECT name FROM cachet_entries WHERE name LIKE 'push-%'"), []);

      const push = await runCli(["--cache-dir", cacheDir, "cache", "push", "--json"], { CACHET_REMOTE: db.url });
      assert.equal(push.code, 0, push.stderr);
      const { remote: _where, ...counts } = JSON.parse(push.stdout);
      assert.deepEqual(counts, { dryRun: false, pushed: 3, bytes: 11 + big.length + "tree file\n".length, present: 0, skipped: 1 });
      assert.match(push.stderr, /skipped push-damaged d1/);
      const remote = await openRemoteStore({ url: db.url });
      try {
        const value = await remote.readValue("push-value", "v1");
        assert.deepEqual([Buffer.from(value!.value.data).toString(), value!.value.format, value!.meta.origin, value!.meta.costMs], ["small value", "f/1", "downloaded", 42]);
        const chunks: Buffer[] = [];
        for await (const chunk of (await remote.getStream("push-blob", "b1"))!) chunks.push(chunk as Buffer);
        assert.ok(Buffer.concat(chunks).equals(big));
        const restored = join(dirs.path, "restored");
        assert.ok(await remote.linkTree("push-tree", "t1", restored));
        assert.equal(readFileSync(join(restored, "sub", "a.txt"), "utf8"), "tree file\n");
        assert.equal(await remote.lookup("push-damaged", "d1"), undefined, "the damaged entry was not sent");
        assert.equal(await remote.lookup(FILE_DIGEST_MEMO_NAME, "m1"), undefined, "the memo stays on the machine");
      } finally {
        await remote.close();
      }

      const again = await runCli(["--cache-dir", cacheDir, "cache", "push", "--json", "--remote", db.url]);
      assert.equal(again.code, 0, again.stderr);
      assert.deepEqual([JSON.parse(again.stdout).pushed, JSON.parse(again.stdout).present], [0, 3]);

      const readOnly = await runCli(["--cache-dir", cacheDir, "cache", "push", "--remote-read-only", "--remote", db.url]);
      assert.equal(readOnly.code, 2);
      assert.match(readOnly.stderr, /is read-only here/);
    } finally {
      dirs.cleanup();
    }
  });

  test("passwords in connection strings are never printed: a server that does not answer, a bad setting", async () => {
    const port = await freePort();
    const down = await runCli(["cache", "ls", "--remote", `postgres://postgres:pa55w0rd-secret@127.0.0.1:${port}/x`]);
    assert.notEqual(down.code, 0);
    assertNoPassword(down);
    assert.match(down.stderr, /postgres:\/\/postgres:\*\*\*@127\.0\.0\.1/);
    const bad = await runCli(["cache", "ls"], { CACHET_REMOTE: "mysql://root:pa55w0rd-secret@db/x" });
    assert.equal(bad.code, 2);
    assertNoPassword(bad);
    assert.match(bad.stderr, /CACHET_REMOTE=.*is not valid: expected a postgres:\/\/ or postgresql:\/\/ URL/);
    const none = await runCli(["cache", "ls", "--remote"]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /--remote needs a URL/);
  });

  test("push re-hashes a tree before sending it: a file edited in place with its size and mtime put back is not sent", async () => {
    const dirs = tempDir("cachet-remote-push-tree-");
    try {
      const cacheDir = join(dirs.path, "cache");
      const tree = join(dirs.path, "out");
      mkdirSync(tree, { recursive: true });
      writeFileSync(join(tree, "a.txt"), "the real output\n");
      const local = await openStore({ cacheDir });
      let digest: string;
      try {
        digest = (await local.putTree("push-edited-tree", "t1", tree)).digest;
      } finally {
        await local.close();
      }
      const file = join(cacheDir, "trees-v1", digest, "a.txt");
      const before = statSync(file);
      // touch -r copies the mtime to the nanosecond (utimes from JavaScript rounds it), as `rsync -t` or `cp -p` would.
      const reference = join(dirs.path, "mtime");
      execFileSync("touch", ["-r", file, reference]);
      chmodSync(file, 0o644);
      writeFileSync(file, "THE REAL OUTPUT\n");
      chmodSync(file, before.mode & 0o777);
      execFileSync("touch", ["-r", reference, file]);
      assert.deepEqual([statSync(file).size, statSync(file).mtimeMs], [before.size, before.mtimeMs]);

      const push = await runCli(["--cache-dir", cacheDir, "cache", "push", "--json", "--remote", db.url]);
      assert.equal(push.code, 0, push.stderr);
      assert.deepEqual([JSON.parse(push.stdout).pushed, JSON.parse(push.stdout).skipped], [0, 1]);
      assert.match(push.stderr, /skipped push-edited-tree t1: the local tree no longer matches its digest/);
      const remote = await openRemoteStore({ url: db.url });
      try {
        assert.equal(await remote.lookup("push-edited-tree", "t1"), undefined, "the edited tree was not sent");
      } finally {
        await remote.close();
      }
      const reopened = await openStore({ cacheDir });
      try {
        assert.equal(reopened.info("push-edited-tree", "t1"), undefined, "and it is dropped locally");
      } finally {
        await reopened.close();
      }
    } finally {
      dirs.cleanup();
    }
  });
});

/** The file under `dir` whose name contains `digest` (a blob in the cache's content store). */
function findFile(dir: string, digest: string): string {
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const path = join(entry.parentPath ?? entry.path, entry.name);
    if (entry.name.includes(digest) && statSync(path).isFile()) return path;
  }
  throw new Error(`no file named after ${digest} under ${dir}`);
}
