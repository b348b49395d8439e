// Hostile cases for cachedFetch and fetchArtifact: each test is a defect found by attacking the invariants (a hit
// is exactly what was stored for that request, credentials never on disk, a cache problem never breaks the caller).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createCachedFetch, fetchArtifact, openStore, type CacheStore, type FetchFunction, type StoreWarning } from "../src/index.js";
import { rawTar } from "./archive-builders.js";
import { tempDir } from "./helpers.js";
import { runToEnd, workerPath } from "./workers/child.js";
import { answer, startOrigin, type Origin } from "./http-origin.js";

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? filesUnder(path) : entry.isFile() ? [path] : [];
  });
}

const REPO = new URL("..", import.meta.url).pathname;
const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

describe("sources: hostile HTTP cases", () => {
  let dir: ReturnType<typeof tempDir>;
  let store: CacheStore;
  let origin: Origin;
  let other: Origin;
  const warnings: StoreWarning[] = [];
  let cachedFetch: FetchFunction;

  before(async () => {
    dir = tempDir("cachet-http-hostile-");
    store = await openStore({ cacheDir: dir.path });
    origin = await startOrigin();
    other = await startOrigin();
    cachedFetch = createCachedFetch({ store, onWarning: (warning) => warnings.push(warning) });
  });
  after(async () => {
    await store.close();
    await origin.close();
    await other.close();
    dir.cleanup();
  });

  test("a stored Set-Cookie is replayed only to requests with the same Cookie, never to another's", async () => {
    origin.route("/cookie", (request, response) => void response.writeHead(200, { "cache-control": "max-age=3600", "set-cookie": `session=for-${request.headers.cookie}` }).end("cookie body"));
    const first = await cachedFetch(origin.url("/cookie"), { headers: { cookie: "user=a" } });
    assert.equal(await first.text(), "cookie body");
    const hit = await cachedFetch(origin.url("/cookie"), { headers: { cookie: "user=a" } });
    assert.equal(hit.headers.get("cache-status"), "cachet; hit");
    assert.deepEqual(hit.headers.getSetCookie(), ["session=for-user=a"], "stored, as RFC 9111 §3.1 requires");
    await hit.text();
    const other = await cachedFetch(origin.url("/cookie"), { headers: { cookie: "user=b" } });
    assert.deepEqual(other.headers.getSetCookie(), ["session=for-user=b"]);
    assert.match(other.headers.get("cache-status")!, /fwd=/);
    await other.text();
  });

  test("a response fetched with one Authorization or Cookie is never a hit for another, nor for none", async () => {
    origin.route("/private", (request, response) => void response.writeHead(200, { "cache-control": "max-age=3600" }).end(`for ${request.headers.authorization ?? "nobody"}`));
    const text = async (headers: Record<string, string>) => (await cachedFetch(origin.url("/private"), { headers })).text();
    assert.equal(await text({ authorization: "Bearer A" }), "for Bearer A");
    assert.equal(await text({ authorization: "Bearer B" }), "for Bearer B");
    assert.equal(await text({}), "for nobody");
    assert.equal(await text({ authorization: "Bearer A" }), "for Bearer A");
    assert.equal(origin.count("/private"), 3, "each credential is stored apart and hits its own");
    const withUrlCredentials = origin.url("/private").replace("http://", "http://carol:pw@");
    assert.equal(await (await cachedFetch(withUrlCredentials)).text(), `for Basic ${Buffer.from("carol:pw").toString("base64")}`);
    assert.equal(await text({}), "for nobody");
    origin.route("/by-cookie", (request, response) => void response.writeHead(200, { "cache-control": "max-age=3600" }).end(`for ${request.headers.cookie ?? "nobody"}`));
    const byCookie = async (headers: Record<string, string>) => (await cachedFetch(origin.url("/by-cookie"), { headers })).text();
    assert.equal(await byCookie({ cookie: "user=a" }), "for user=a");
    assert.equal(await byCookie({ cookie: "user=b" }), "for user=b");
    assert.equal(await byCookie({}), "for nobody");
    assert.equal(await byCookie({ cookie: "user=a" }), "for user=a");
  });

  test("an aborted signal rejects at once, even when the response is stored", async () => {
    origin.route("/fresh", answer("fresh", { "cache-control": "max-age=3600" }));
    await (await cachedFetch(origin.url("/fresh"))).text();
    await assert.rejects(cachedFetch(origin.url("/fresh"), { signal: AbortSignal.abort() }), { name: "AbortError" });
    await assert.rejects(cachedFetch(new Request(origin.url("/fresh"), { signal: AbortSignal.abort() })), { name: "AbortError" });
  });

  test("a request waiting for an identical one in flight rejects when its signal aborts, and the first goes on", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let arrived!: () => void;
    const first = new Promise<void>((resolve) => (arrived = resolve));
    origin.route("/held", async (_request, response) => {
      arrived();
      await gate;
      response.writeHead(200, { "cache-control": "max-age=3600" }).end("held");
    });
    const leader = cachedFetch(origin.url("/held"));
    await first;
    const controller = new AbortController();
    const waiter = cachedFetch(origin.url("/held"), { signal: controller.signal });
    // Only a fallback: the waiter must reject on its abort, before the first request is answered.
    const fallback = setTimeout(release, 10_000);
    let releasedBeforeRejection = false;
    void gate.then(() => (releasedBeforeRejection = true));
    controller.abort();
    await assert.rejects(waiter, { name: "AbortError" });
    assert.equal(releasedBeforeRejection, false, "the waiter rejected while the first request was still waiting");
    release();
    clearTimeout(fallback);
    assert.equal(await (await leader).text(), "held");
    assert.equal(origin.count("/held"), 1);
  });

  test("a damaged body in the cache is never served as good: its read fails with CACHET_INTEGRITY, then it is a miss", async () => {
    const big = randomBytes(200_000);
    origin.route("/big", (_request, response) => void response.writeHead(200, { "cache-control": "max-age=3600" }).end(big));
    assert.ok(Buffer.from(await (await cachedFetch(origin.url("/big"))).arrayBuffer()).equals(big));
    const blobs = filesUnder(dir.path).filter((file) => readFileSync(file).equals(big));
    assert.equal(blobs.length, 1);
    chmodSync(blobs[0]!, 0o644);
    const damaged = Buffer.from(big);
    damaged[100_000]! ^= 0xff;
    writeFileSync(blobs[0]!, damaged);
    await assert.rejects(async () => (await cachedFetch(origin.url("/big"))).arrayBuffer(), { code: "CACHET_INTEGRITY" });
    assert.ok(Buffer.from(await (await cachedFetch(origin.url("/big"))).arrayBuffer()).equals(big));
    assert.equal(origin.count("/big"), 2);
  });

  test("a stored download changed in the cache is never returned for its sha256", async () => {
    const content = randomBytes(3000);
    origin.route("/tamper.bin", (_request, response) => void response.writeHead(200, { "cache-control": "max-age=3600" }).end(content));
    const first = await fetchArtifact(origin.url("/tamper.bin"), { store, sha256: sha256(content) });
    chmodSync(first.path, 0o644);
    writeFileSync(first.path, Buffer.from("evil"));
    const again = await fetchArtifact(origin.url("/tamper.bin"), { store, sha256: sha256(content) }).catch((error: unknown) => error);
    if (again instanceof Error) assert.ok("code" in again, String(again));
    else assert.ok(readFileSync((again as { path: string }).path).equals(content));
  });

  test("a download redirected to another origin does not carry the URL's credentials there", async () => {
    other.route("/file.bin", answer("payload"));
    origin.route("/file.bin", (_request, response) => void response.writeHead(302, { location: other.url("/file.bin") }).end());
    await fetchArtifact(origin.url("/file.bin").replace("http://", "http://alice:hunter2@"), { store, name: "redirected" });
    assert.ok(origin.seen.at(-1)!.headers.authorization !== undefined);
    assert.equal(other.seen.at(-1)!.headers.authorization, undefined);
  });

  test("hosts that are IPv6 literals or IDNs name valid entries; an IDN and its punycode are one host", async () => {
    let calls = 0;
    const network: FetchFunction = async () => {
      calls++;
      return new Response(`answer ${calls}`, { headers: { "cache-control": "max-age=3600" } });
    };
    const stubbed = createCachedFetch({ store, fetch: network, onWarning: (warning) => warnings.push(warning) });
    assert.equal(await (await stubbed("http://[::1]:8080/x")).text(), "answer 1");
    assert.equal(await (await stubbed("http://[0:0::1]:8080/x")).text(), "answer 1");
    assert.equal(await (await stubbed("http://BÜCHER.example/x")).text(), "answer 2");
    assert.equal(await (await stubbed("http://xn--bcher-kva.example:80/x")).text(), "answer 2");
    assert.equal(await (await stubbed("http://bücher.example/%78")).text(), "answer 3", "a percent-encoded path is another URL to fetch too");
    assert.equal(calls, 3);
  });

  test("a POST with a streamed body reaches the origin whole and is not stored", async () => {
    let received = "";
    origin.route("/post", (request, response) => {
      const chunks: Buffer[] = [];
      request.removeAllListeners("data");
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        received = Buffer.concat(chunks).toString();
        response.writeHead(200, { "cache-control": "max-age=3600" }).end("posted");
      });
    });
    const encoder = new TextEncoder();
    const body = new ReadableStream({
      start(controller) {
        controller.enqueue(encoder.encode("streamed-"));
        controller.enqueue(encoder.encode("body"));
        controller.close();
      },
    });
    const response = await cachedFetch(origin.url("/post"), { method: "POST", body, duplex: "half" } as RequestInit);
    assert.equal(await response.text(), "posted");
    assert.equal(received, "streamed-body");
    assert.match(response.headers.get("cache-status")!, /fwd=method/);
  });

  test("linkTo the cache root, a directory inside it or above it is refused, and the cache keeps what it holds", async () => {
    const outer = tempDir("cachet-http-hostile-link-");
    const nested = await openStore({ cacheDir: join(outer.path, "cache") });
    try {
      origin.route("/victim.txt", answer("victim", { "cache-control": "max-age=3600" }));
      const kept = await fetchArtifact(origin.url("/victim.txt"), { store: nested });
      symlinkSync(join(outer.path, "cache"), join(outer.path, "alias"));
      for (const target of [outer.path, join(outer.path, "cache"), join(outer.path, "cache", "blobs-v1"), join(outer.path, "alias", "new-dir"), join(outer.path, "alias")]) {
        await assert.rejects(fetchArtifact(origin.url("/victim.txt"), { store: nested, linkTo: target }), { code: "CACHET_BAD_SOURCE_OPTION" }, target);
      }
      assert.equal(readFileSync(kept.path, "utf8"), "victim");
      const again = await fetchArtifact(origin.url("/victim.txt"), { store: nested, linkTo: join(outer.path, "out") });
      assert.equal(again.fromCache, true);
      assert.equal(readFileSync(join(outer.path, "out", "victim.txt"), "utf8"), "victim");
    } finally {
      await nested.close();
      outer.cleanup();
    }
  });

  test("a cache that cannot be used still unpacks and still fills linkTo, with one warning", async () => {
    const broken = new Proxy(store, {
      get(target, property) {
        if (property === "root") return `${target.root}-broken`;
        if (property === "then") return undefined;
        return () => {
          throw Object.assign(new Error("index unreadable"), { code: "SQLITE_IOERR" });
        };
      },
    });
    const tar = rawTar([{ name: "pkg/hello.txt", data: "hello" }]);
    origin.route("/pkg.tar", (_request, response) => void response.writeHead(200).end(tar));
    origin.route("/plain.txt", answer("plain"));
    const seen: string[] = [];
    const out = tempDir("cachet-http-hostile-out-");
    try {
      const unpacked = await fetchArtifact(origin.url("/pkg.tar"), { store: broken, unpack: true, onWarning: (warning) => seen.push(warning.code) });
      assert.equal(readFileSync(join(unpacked.path, "pkg", "hello.txt"), "utf8"), "hello");
      await fetchArtifact(origin.url("/plain.txt"), { store: broken, linkTo: join(out.path, "plain"), onWarning: (warning) => seen.push(warning.code) });
      assert.equal(readFileSync(join(out.path, "plain", "plain.txt"), "utf8"), "plain");
      await fetchArtifact(origin.url("/pkg.tar"), { store: broken, unpack: true, linkTo: join(out.path, "tree"), onWarning: (warning) => seen.push(warning.code) });
      assert.equal(readFileSync(join(out.path, "tree", "pkg", "hello.txt"), "utf8"), "hello");
      assert.equal(seen.length, 1, "one warning per process and cache");
    } finally {
      out.cleanup();
    }
  });

  test("a store that fails to keep the unpacked tree still hands out the tree, with one warning", async () => {
    const full = new Proxy(store, {
      get(target, property) {
        if (property === "root") return `${target.root}-full`;
        const value = Reflect.get(target, property) as unknown;
        if (property === "putTree") {
          return (name: string, key: string, ...rest: unknown[]) => {
            if (key.startsWith("unpacked ")) throw Object.assign(new Error("no space left on device"), { code: "ENOSPC" });
            return (target.putTree as (...args: unknown[]) => unknown).call(target, name, key, ...rest);
          };
        }
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    origin.route("/full.tar", (_request, response) => void response.writeHead(200).end(rawTar([{ name: "full/a.txt", data: "a" }])));
    const seen: string[] = [];
    const result = await fetchArtifact(origin.url("/full.tar"), { store: full, unpack: true, onWarning: (warning) => seen.push(warning.code) });
    assert.equal(readFileSync(join(result.path, "full", "a.txt"), "utf8"), "a");
    assert.deepEqual(seen, ["CACHET_CACHE_WRITE_FAILED"]);
  });

  test("a last path segment too long for a file name is shortened from the front, keeping its extension", async () => {
    const segment = `${"é".repeat(200)}.tar`;
    origin.route(`/${encodeURIComponent(segment)}`, (_request, response) => void response.writeHead(200).end(rawTar([{ name: "long/x.txt", data: "x" }])));
    const file = await fetchArtifact(origin.url(`/${encodeURIComponent(segment)}`), { store });
    const name = file.path.split("/").at(-1)!;
    assert.ok(Buffer.byteLength(name) <= 255 && name.endsWith("é.tar"), name);
    const tree = await fetchArtifact(origin.url(`/${encodeURIComponent(segment)}`), { store, unpack: true });
    assert.equal(readFileSync(join(tree.path, "long", "x.txt"), "utf8"), "x");
  });

  test("offline, a stored download with another sha256 is named as such, not as nothing stored", async () => {
    const content = Buffer.from("version one");
    origin.route("/pinned.bin", (_request, response) => void response.writeHead(200, { "cache-control": "max-age=0" }).end(content));
    await fetchArtifact(origin.url("/pinned.bin"), { store });
    const wanted = "a".repeat(64);
    await assert.rejects(fetchArtifact(origin.url("/pinned.bin"), { store, sha256: wanted, env: { CACHET_OFFLINE: "1" } }), (error: Error & { code?: string }) => {
      assert.equal(error.code, "CACHET_OFFLINE_MISS");
      assert.ok(error.message.includes(sha256(content)) && error.message.includes(wanted), error.message);
      assert.ok(!error.message.includes("nothing is stored"), error.message);
      assert.ok(!error.message.includes("\n"));
      return true;
    });
  });

  test("four processes with different sha256 expectations: the right ones get the file, the wrong ones an error, nothing mixed", async () => {
    const content = randomBytes(300_000);
    origin.route("/contested.bin", (_request, response) => void setTimeout(() => response.writeHead(200, { "cache-control": "max-age=3600" }).end(content), 100));
    const wrong = "b".repeat(64);
    const expectations = [sha256(content), wrong, sha256(content), wrong];
    const runs = await Promise.all(
      expectations.map((expected) => runToEnd(["--import", "tsx", workerPath("http-fetcher.ts"), dir.path, origin.url("/contested.bin"), "artifact", expected], {}, { cwd: REPO, timeoutMs: 60_000 })),
    );
    runs.forEach((run, i) => {
      if (expectations[i] === wrong) {
        assert.notEqual(run.code, 0);
        assert.match(run.stderr, /CACHET_SHA256_MISMATCH|sha256 mismatch/);
      } else {
        assert.equal(run.code, 0, run.stderr);
        const result = JSON.parse(run.stdout.trim()) as { path: string; sha256: string };
        assert.equal(result.sha256, sha256(content));
        assert.ok(readFileSync(result.path).equals(content));
      }
    });
  });

  test("processes storing different responses for one URL at once: every later hit is one whole response", async () => {
    const bodyOf = (n: number) => `${n}:`.padEnd(40_000, String.fromCharCode(97 + (n % 26)));
    origin.route("/raced", (_request, response, n) => void setTimeout(() => response.writeHead(200, { "cache-control": "max-age=3600", etag: `"${n}"` }).end(bodyOf(n)), 50));
    const runs = await Promise.all(
      [0, 1, 2, 3].map(() => runToEnd(["--import", "tsx", workerPath("http-fetcher.ts"), dir.path, origin.url("/raced"), "fetch"], {}, { cwd: REPO, timeoutMs: 60_000 })),
    );
    for (const run of runs) assert.equal(run.code, 0, run.stderr);
    const hit = await cachedFetch(origin.url("/raced"));
    assert.equal(hit.headers.get("cache-status"), "cachet; hit");
    const n = Number(hit.headers.get("etag")!.replaceAll('"', ""));
    assert.equal(await hit.text(), bodyOf(n), "the body is the one of the response whose headers are served");
  });

  test("a URL without an archive extension unpacks when the name given has one", async () => {
    origin.route("/releases/assets/7", (_request, response) => void response.writeHead(200).end(rawTar([{ name: "asset/readme", data: "asset" }])));
    const tree = await fetchArtifact(origin.url("/releases/assets/7?download=1"), { store, unpack: true, name: "asset-7.tar" });
    assert.equal(readFileSync(join(tree.path, "asset", "readme"), "utf8"), "asset");
    await assert.rejects(fetchArtifact(origin.url("/releases/assets/7"), { store, unpack: true, name: "asset-7" }), { code: "CACHET_ARCHIVE_FORMAT" });
  });

  test("a GET with a body is refused as fetch refuses it, before any request", async () => {
    origin.route("/get-body", answer("never"));
    await assert.rejects(cachedFetch(origin.url("/get-body"), { body: "payload" }), TypeError);
    await assert.rejects(cachedFetch(origin.url("/get-body"), { method: "GET", body: "payload" }), TypeError);
    assert.equal(origin.count("/get-body"), 0);
  });

  test("a download answered with partial content (206) is an error, never stored as the file", async () => {
    origin.route("/partial.bin", (_request, response) => void response.writeHead(206, { "content-range": "bytes 0-9/100", "cache-control": "max-age=3600" }).end("0123456789"));
    await assert.rejects(fetchArtifact(origin.url("/partial.bin"), { store }), { code: "CACHET_DOWNLOAD_STATUS" });
    const keys: string[] = [];
    for await (const entry of store.list("partial.bin")) keys.push(entry.key);
    assert.deepEqual(keys, []);
  });

  test("a caller that writes into the chunks of a hit's body does not change the next hit", async () => {
    origin.route("/mutable", answer("original bytes", { "cache-control": "max-age=3600" }));
    await (await cachedFetch(origin.url("/mutable"))).text();
    for (let i = 0; i < 2; i++) {
      const reader = (await cachedFetch(origin.url("/mutable"))).body!.getReader();
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) chunk.value.fill(0x58);
    }
    assert.equal(await (await cachedFetch(origin.url("/mutable"))).text(), "original bytes");
    assert.equal(origin.count("/mutable"), 1);
  });

  test("aborting the signal while a hit's body is read errors that body, as fetch does", async () => {
    origin.route("/abort-small", answer("small body", { "cache-control": "max-age=3600" }));
    origin.route("/abort-large", (_request, response) => void response.writeHead(200, { "cache-control": "max-age=3600" }).end(randomBytes(300_000)));
    for (const path of ["/abort-small", "/abort-large"]) {
      await (await cachedFetch(origin.url(path))).arrayBuffer();
      const controller = new AbortController();
      const hit = await cachedFetch(origin.url(path), { signal: controller.signal });
      assert.equal(hit.headers.get("cache-status"), "cachet; hit");
      controller.abort();
      await assert.rejects(hit.arrayBuffer(), { name: "AbortError" }, path);
      assert.equal((await (await cachedFetch(origin.url(path))).arrayBuffer()).byteLength > 0, true);
    }
  });

  test("none of the above gave a cache warning", () => assert.deepEqual(warnings, []));
});
