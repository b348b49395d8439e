// fetchArtifact: one download per canonical URL (across processes too), sha256 checks that keep nothing on a
// mismatch, read-only paths in the cache, linkTo, names, offline and refresh — against a local origin.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import {
  ArchiveTooLargeError,
  DownloadNetworkError,
  fetchArtifact,
  openStore,
  OfflineMissError,
  Sha256MismatchError,
  SourceOptionError,
  UnsafeArchiveEntryError,
  UnsupportedArchiveFormatError,
  type CacheStore,
} from "../src/index.js";
import { rawTar, writeZip } from "./archive-builders.js";
import { tempDir } from "./helpers.js";
import { startOrigin, type Origin } from "./http-origin.js";
import { startNode, workerPath, type Child } from "./workers/child.js";

const REPO = new URL("..", import.meta.url).pathname;
const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

describe("fetchArtifact", () => {
  let dir: ReturnType<typeof tempDir>;
  let store: CacheStore;
  let origin: Origin;
  const content = randomBytes(200_000);

  before(async () => {
    dir = tempDir("cachet-artifact-");
    store = await openStore({ cacheDir: dir.path });
    origin = await startOrigin();
  });
  after(async () => {
    await store.close();
    await origin.close();
    dir.cleanup();
  });

  function serve(path: string, data: Uint8Array, headers: Record<string, string> = { "cache-control": "max-age=3600", etag: '"a1"' }, delayMs = 0): void {
    origin.route(path, (request, response) => {
      if (headers.etag !== undefined && request.headers["if-none-match"] === headers.etag) return void response.writeHead(304, { etag: headers.etag! }).end();
      setTimeout(() => response.writeHead(200, { "content-length": String(data.length), ...headers }).end(data), delayMs);
    });
  }

  async function namesInStore(): Promise<Set<string>> {
    const names = new Set<string>();
    for await (const entry of store.list()) names.add(entry.name);
    return names;
  }

  test("downloads once, checks sha256, and returns a read-only file in the cache", async () => {
    serve("/dist/tool-1.0.tgz", content);
    const progress: number[] = [];
    const first = await fetchArtifact(origin.url("/dist/tool-1.0.tgz"), { store, sha256: sha256(content).toUpperCase(), onProgress: (p) => progress.push(p.bytes) });
    assert.deepEqual({ ...first, path: undefined }, { path: undefined, sha256: sha256(content), size: content.length, fromCache: false });
    assert.ok(first.path.startsWith(dir.path), first.path);
    assert.ok(readFileSync(first.path).equals(content));
    assert.equal(statSync(first.path).mode & 0o222, 0, "read-only");
    assert.equal(progress.at(-1), content.length);

    const again = await fetchArtifact(origin.url("/dist/tool-1.0.tgz#frag").replace("http://", "http://bob:pw@") + "/", { store });
    assert.deepEqual(again, { ...first, fromCache: true }, "credentials, fragment and trailing slash do not make another download");
    assert.equal(origin.count("/dist/tool-1.0.tgz"), 1);
    assert.ok((await namesInStore()).has("tool-1.0.tgz"), "named by the URL's last path segment");
  });

  test("a sha256 mismatch names both digests and keeps nothing", async () => {
    const other = randomBytes(5000);
    serve("/bad.bin", other);
    const wrong = "0".repeat(64);
    await assert.rejects(fetchArtifact(origin.url("/bad.bin"), { store, sha256: wrong, name: "bad-2" }), (error: unknown) => {
      assert.ok(error instanceof Sha256MismatchError);
      assert.ok(error.message.includes(wrong) && error.message.includes(sha256(other)), error.message);
      return true;
    });
    assert.ok(!(await namesInStore()).has("bad-2"), "nothing kept under the name");
    await assert.rejects(fetchArtifact(origin.url("/bad.bin"), { store, sha256: "abc" }), SourceOptionError);
  });

  test("four processes fetching one URL at once make one request; the others reuse the download", async () => {
    const big = randomBytes(1_000_000);
    serve("/shared.tar", big, { "cache-control": "max-age=3600" }, 300);
    const children: Child[] = [];
    try {
      for (let i = 0; i < 4; i++) {
        children.push(startNode(["--import", "tsx", workerPath("http-fetcher.ts"), dir.path, origin.url("/shared.tar"), "artifact", sha256(big)], {}, { cwd: REPO }));
      }
      const results = [];
      for (const child of children) {
        await child.waitFor(/\}\n/, { timeoutMs: 60_000 });
        results.push(JSON.parse(child.stdout().trim()) as { path: string; sha256: string; fromCache: boolean });
      }
      assert.equal(origin.count("/shared.tar"), 1);
      assert.equal(results.filter((result) => !result.fromCache).length, 1);
      assert.equal(new Set(results.map((result) => result.path)).size, 1);
      assert.ok(readFileSync(results[0]!.path).equals(big));
    } finally {
      await Promise.all(children.map((child) => child.kill9()));
    }
  });

  test("linkTo materializes the download in a directory, replacing what was there", async () => {
    serve("/linked.txt", Buffer.from("linked content"));
    const target = join(dir.path, "..", `${dir.path.split("/").at(-1)}-target`);
    try {
      await fetchArtifact(origin.url("/linked.txt"), { store, linkTo: target });
      assert.equal(readFileSync(join(target, "linked.txt"), "utf8"), "linked content");
      await fetchArtifact(origin.url("/linked.txt"), { store, linkTo: target });
      assert.equal(readFileSync(join(target, "linked.txt"), "utf8"), "linked content");
    } finally {
      (await import("node:fs")).rmSync(target, { recursive: true, force: true });
    }
  });

  test("linkTo that is the current directory or holds it is refused before downloading", async () => {
    serve("/here.txt", Buffer.from("here"));
    const here = join(dir.path, "here");
    (await import("node:fs")).mkdirSync(here, { recursive: true });
    const previous = process.cwd();
    const before = origin.seen.length;
    process.chdir(here);
    try {
      for (const target of [".", "..", here]) {
        await assert.rejects(fetchArtifact(origin.url("/here.txt"), { store, linkTo: target }), (error: Error) => {
          assert.ok(error instanceof SourceOptionError, String(error));
          assert.match(error.message, /is the current directory or holds it/);
          return true;
        });
      }
    } finally {
      process.chdir(previous);
    }
    assert.equal(origin.seen.length, before, "nothing was requested");
  });

  test("offline: a stored download is used even when stale; a missing one names the URL", async () => {
    serve("/stale.bin", Buffer.from("stale but stored"), { "cache-control": "max-age=0", etag: '"s"' });
    const stored = await fetchArtifact(origin.url("/stale.bin"), { store });
    const before = origin.seen.length;
    const offline = await fetchArtifact(origin.url("/stale.bin"), { store, env: { CACHET_OFFLINE: "1" } });
    assert.deepEqual(offline, { ...stored, fromCache: true });
    await assert.rejects(fetchArtifact(origin.url("/missing.bin"), { store, env: { CACHET_OFFLINE: "1" } }), (error: unknown) => {
      assert.ok(error instanceof OfflineMissError);
      assert.ok(error.message.includes(origin.url("/missing.bin")));
      return true;
    });
    assert.equal(origin.seen.length, before);

    const revalidated = await fetchArtifact(origin.url("/stale.bin"), { store });
    assert.equal(revalidated.fromCache, true, "a stale download is revalidated (304), not downloaded again");
    assert.equal(origin.seen.at(-1)!.headers["if-none-match"], '"s"');

    serve("/fresh-refresh.bin", Buffer.from("fresh"), { "cache-control": "max-age=3600", etag: '"f"' });
    await fetchArtifact(origin.url("/fresh-refresh.bin"), { store });
    await fetchArtifact(origin.url("/fresh-refresh.bin"), { store, env: { CACHET_REFRESH: "fresh-refresh.bin" } });
    assert.equal(origin.count("/fresh-refresh.bin"), 1, "downloaded by this process: fresh under CACHET_REFRESH too");
    const child = startNode(["--import", "tsx", workerPath("http-fetcher.ts"), dir.path, origin.url("/fresh-refresh.bin"), "artifact"], { CACHET_REFRESH: "1" }, { cwd: REPO });
    try {
      await child.waitFor(/\}\n/);
      assert.equal((JSON.parse(child.stdout().trim()) as { fromCache: boolean }).fromCache, true);
    } finally {
      await child.kill9();
    }
    assert.equal(origin.count("/fresh-refresh.bin"), 2, "another process under CACHET_REFRESH revalidates");
    assert.equal(origin.seen.at(-1)!.headers["if-none-match"], '"f"');
  });

  test("a download pinned by sha256 is used without a request even when stale; an unpinned one follows the HTTP rules", async () => {
    const data = Buffer.from("no freshness, no validators");
    origin.route("/pinned.bin", (_request, response) => void response.writeHead(200, { "content-length": String(data.length) }).end(data));
    const url = origin.url("/pinned.bin");
    const first = await fetchArtifact(url, { store, sha256: sha256(data) });
    assert.equal(first.fromCache, false);
    assert.deepEqual(await fetchArtifact(url, { store, sha256: sha256(data) }), { ...first, fromCache: true });
    assert.equal(origin.count("/pinned.bin"), 1, "the stored bytes are the only ones the digest allows");
    const unpinned = await fetchArtifact(url, { store });
    assert.deepEqual(unpinned, { ...first, fromCache: false }, "without a digest, a response with no freshness is downloaded again");
    assert.equal(origin.count("/pinned.bin"), 2);
    await assert.rejects(fetchArtifact(url, { store, sha256: "1".repeat(64) }), Sha256MismatchError, "another digest is downloaded again and checked");
    assert.equal(origin.count("/pinned.bin"), 3);
  });

  test("a server that cannot be reached is a DownloadNetworkError naming the URL and the reason", async () => {
    const gone = await startOrigin();
    const url = gone.url("/dist/gone.tgz");
    await gone.close();
    await assert.rejects(fetchArtifact(url, { store }), (error: unknown) => {
      assert.ok(error instanceof DownloadNetworkError);
      assert.equal(error.code, "CACHET_DOWNLOAD_NETWORK");
      assert.match(error.message, new RegExp(`^download of ${url} failed: connect ECONNREFUSED`));
      assert.ok(error.cause instanceof TypeError, "the network's own error is the cause");
      return true;
    });
  });

  test("a 304 without validators keeps a stale download; a cut download is an error and keeps nothing", async () => {
    origin.route("/plain-304.bin", (request, response) => {
      if (request.headers["if-modified-since"]) return void response.writeHead(304).end();
      response.writeHead(200, { "cache-control": "no-cache", "last-modified": new Date(Date.now() - 60_000).toUTCString() }).end("v1");
    });
    const first = await fetchArtifact(origin.url("/plain-304.bin"), { store });
    const second = await fetchArtifact(origin.url("/plain-304.bin"), { store });
    assert.deepEqual(second, { ...first, fromCache: true });
    assert.equal(origin.count("/plain-304.bin"), 2);

    origin.route("/cut.bin", (_request, response) => {
      response.writeHead(200, { "content-length": "100000" });
      response.write(Buffer.alloc(1000));
      setTimeout(() => response.destroy(), 20);
    });
    await assert.rejects(fetchArtifact(origin.url("/cut.bin"), { store }));
    assert.ok(!(await namesInStore()).has("cut.bin"));
  });

  test("a cache that cannot be used: the download lands in a temporary directory, with one warning", async () => {
    const broken = new Proxy(store, {
      get(target, property) {
        if (property === "root") return target.root;
        if (property === "then") return undefined;
        return () => {
          throw Object.assign(new Error("index unreadable"), { code: "SQLITE_IOERR" });
        };
      },
    });
    serve("/uncached.bin", Buffer.from("still delivered"));
    const warnings: string[] = [];
    const result = await fetchArtifact(origin.url("/uncached.bin"), { store: broken, onWarning: (warning) => warnings.push(warning.code) });
    assert.equal(readFileSync(result.path, "utf8"), "still delivered");
    assert.equal(result.fromCache, false);
    assert.ok(!result.path.startsWith(dir.path));
    assert.equal(warnings.length, 1);
  });

  test("unpack: a .tar.gz and a .zip are unpacked once into a read-only tree, kept whole with their top directory", async () => {
    const tarGz = gzipSync(rawTar([
      { name: "tool-2.0/", type: "5", mode: 0o755 },
      { name: "tool-2.0/bin/run", data: "#!/bin/sh\necho run\n", mode: 0o4755 },
      { name: "tool-2.0/README", data: "read me" },
    ]));
    serve("/dist/tool-2.0.tar.gz", tarGz);
    const first = await fetchArtifact(origin.url("/dist/tool-2.0.tar.gz"), { store, unpack: true, sha256: sha256(tarGz) });
    assert.equal(first.fromCache, false);
    assert.equal(first.sha256, sha256(tarGz));
    assert.deepEqual(readdirSync(first.path), ["tool-2.0"], "a single top-level directory is kept as it is");
    assert.equal(readFileSync(join(first.path, "tool-2.0", "README"), "utf8"), "read me");
    const runMode = statSync(join(first.path, "tool-2.0", "bin", "run")).mode;
    assert.ok(runMode & 0o100, "exec bit kept");
    assert.equal(runMode & 0o4000, 0, "setuid dropped");
    assert.equal(statSync(join(first.path, "tool-2.0", "README")).mode & 0o222, 0, "read-only in the cache");

    const again = await fetchArtifact(origin.url("/dist/tool-2.0.tar.gz"), { store, unpack: true });
    assert.deepEqual(again, { ...first, fromCache: true });
    assert.equal(origin.count("/dist/tool-2.0.tar.gz"), 1);

    const elsewhere = tempDir("cachet-artifact-link-");
    try {
      const target = join(elsewhere.path, "linked-tool");
      await fetchArtifact(origin.url("/dist/tool-2.0.tar.gz"), { store, unpack: true, linkTo: target });
      assert.equal(readFileSync(join(target, "tool-2.0", "README"), "utf8"), "read me");
    } finally {
      elsewhere.cleanup();
    }

    const zipPath = join(dir.path, "pkg.zip");
    await writeZip(zipPath, [{ name: "a/b.txt", data: "bee" }, { name: "c.txt", data: "sea" }]);
    serve("/pkg.zip", readFileSync(zipPath));
    const zipped = await fetchArtifact(origin.url("/pkg.zip"), { store, unpack: true });
    assert.deepEqual(readdirSync(zipped.path).sort(), ["a", "c.txt"]);
    assert.equal(readFileSync(join(zipped.path, "a", "b.txt"), "utf8"), "bee");
  });

  test("unpack: a hostile archive is refused naming the entry, and no tree is kept; an unknown format lists the supported ones", async () => {
    serve("/evil.tar", rawTar([{ name: "../escape.txt", data: "out" }]));
    await assert.rejects(fetchArtifact(origin.url("/evil.tar"), { store, unpack: true }), (error: unknown) => {
      assert.ok(error instanceof UnsafeArchiveEntryError);
      assert.match(error.message, /\.\.\/escape\.txt/);
      return true;
    });
    assert.equal(existsSync(join(dir.path, "..", "escape.txt")), false);
    const unpackedKeys: string[] = [];
    for await (const entry of store.list("evil.tar")) if (entry.key.startsWith("unpacked ")) unpackedKeys.push(entry.key);
    assert.deepEqual(unpackedKeys, [], "no unpacked tree is stored");

    serve("/bomb.tar.gz", gzipSync(rawTar([{ name: "zeros", data: Buffer.alloc(2 * 1024 * 1024) }])));
    await assert.rejects(fetchArtifact(origin.url("/bomb.tar.gz"), { store, unpack: true, maxUnpackedBytes: 1024 * 1024 }), ArchiveTooLargeError);

    serve("/tool.rar", Buffer.from("Rar!"));
    await assert.rejects(fetchArtifact(origin.url("/tool.rar"), { store, unpack: true }), (error: unknown) => {
      assert.ok(error instanceof UnsupportedArchiveFormatError);
      assert.match(error.message, /\.tar\.gz/);
      assert.match(error.message, /\.zip/);
      return true;
    });
  });
});
