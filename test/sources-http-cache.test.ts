// cachedFetch's HTTP rules against a local origin that controls headers and counts requests: freshness across
// processes, ETag and Last-Modified revalidation, 304 header updates, no-store, Vary, immutable, invalidation by
// unsafe methods, stale-if-error, stale-while-revalidate, fetch's cache modes and Cache-Status.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { CacheStore, FetchFunction } from "../src/index.js";
import { answer, closeFetchSetup, openFetchSetup, startOrigin, type FetchSetup, type Origin } from "./http-origin.js";
import { startNode, workerPath } from "./workers/child.js";

const REPO = new URL("..", import.meta.url).pathname;

describe("cachedFetch: HTTP caching rules", () => {
  let dir: FetchSetup["dir"];
  let store: CacheStore;
  let origin: Origin;
  let cachedFetch: FetchFunction;

  before(async () => {
    ({ dir, store, origin, cachedFetch } = await openFetchSetup("cachet-http-"));
  });
  after(() => closeFetchSetup({ dir, store, origin }));

  async function get(path: string, init?: Parameters<FetchFunction>[1]) {
    const response = await cachedFetch(origin.url(path), init);
    return { response, status: response.status, cacheStatus: response.headers.get("cache-status"), body: await response.text() };
  }

  test("max-age: a fresh response is served from the store, in this process and in another one", async () => {
    origin.route("/fresh", answer((n) => `body ${n}`, { "cache-control": "max-age=3600" }));
    const first = await get("/fresh");
    assert.equal(first.body, "body 1");
    assert.equal(first.cacheStatus, "cachet; fwd=uri-miss; fwd-status=200; stored");
    const second = await get("/fresh");
    assert.equal(second.body, "body 1");
    assert.equal(second.cacheStatus, "cachet; hit");
    assert.equal(second.response.headers.get("x-n"), "1", "every end-to-end header is stored");
    assert.ok(Number(second.response.headers.get("age")) >= 0);

    const child = startNode(["--import", "tsx", workerPath("http-fetcher.ts"), dir.path, origin.url("/fresh"), "fetch"], {}, { cwd: REPO });
    try {
      await child.waitFor(/\}\n/);
      const line = JSON.parse(child.stdout().trim()) as { status: number; cacheStatus: string; body: string };
      assert.deepEqual(line, { status: 200, cacheStatus: "cachet; hit", body: "body 1" });
    } finally {
      await child.kill9();
    }
    assert.equal(origin.count("/fresh"), 1);
  });

  test("a hit after another process replaced the response serves the new one (nothing kept in memory outlives it)", async () => {
    origin.route("/replaced", answer((n) => `version ${n}`, { "cache-control": "max-age=3600" }));
    assert.equal((await get("/replaced")).body, "version 1");
    for (let i = 0; i < 3; i++) assert.deepEqual([(await get("/replaced")).body, (await get("/replaced")).cacheStatus], ["version 1", "cachet; hit"]);
    const child = startNode(["--import", "tsx", workerPath("http-fetcher.ts"), dir.path, origin.url("/replaced"), "reload"], {}, { cwd: REPO });
    try {
      await child.waitFor(/\}\n/);
      assert.equal((JSON.parse(child.stdout().trim()) as { body: string }).body, "version 2");
    } finally {
      await child.kill9();
    }
    const after = await get("/replaced");
    assert.deepEqual([after.body, after.cacheStatus], ["version 2", "cachet; hit"]);
    assert.equal(after.response.headers.get("x-n"), "2", "the headers are the new response's too");
    assert.equal(origin.count("/replaced"), 2);
  });

  test("a 304 that changes nothing but Date answers with its Date, each time", async () => {
    const dates = ["Mon, 02 Nov 2026 10:00:00 GMT", "Mon, 02 Nov 2026 10:00:05 GMT", "Mon, 02 Nov 2026 10:00:09 GMT"];
    origin.route("/dated", (request, response, n) => {
      if (request.headers["if-none-match"] === '"d"') return void response.writeHead(304, { etag: '"d"', "cache-control": "max-age=0", date: dates[n - 1]! }).end();
      response.writeHead(200, { etag: '"d"', "cache-control": "max-age=0", date: dates[0]! }).end("dated body");
    });
    assert.equal((await get("/dated")).response.headers.get("date"), dates[0]);
    for (const date of dates.slice(1)) {
      const revalidated = await get("/dated");
      assert.deepEqual([revalidated.body, revalidated.cacheStatus], ["dated body", "cachet; fwd=stale; fwd-status=304; stored"]);
      assert.equal(revalidated.response.headers.get("date"), date);
      assert.equal(revalidated.response.headers.get("etag"), '"d"');
    }
  });

  test("ETag: a stale response is revalidated with If-None-Match; the 304 updates headers and keeps the body", async () => {
    origin.route("/etag", (request, response, n) => {
      if (request.headers["if-none-match"] === '"v1"') {
        response.writeHead(304, { etag: '"v1"', "cache-control": "max-age=0", "x-updated": `yes ${n}` }).end();
        return;
      }
      response.writeHead(200, { etag: '"v1"', "cache-control": "max-age=0", "x-updated": "no" }).end("etag body");
    });
    assert.equal((await get("/etag")).body, "etag body");
    const second = await get("/etag");
    assert.equal(second.body, "etag body");
    assert.equal(second.cacheStatus, "cachet; fwd=stale; fwd-status=304; stored");
    assert.equal(second.response.headers.get("x-updated"), "yes 2");
    assert.equal(origin.seen.at(-1)!.headers["if-none-match"], '"v1"');
    const third = await get("/etag");
    assert.equal(third.response.headers.get("x-updated"), "yes 3", "the stored headers were rewritten by the first 304");
  });

  test("Last-Modified: revalidation sends If-Modified-Since; heuristic freshness makes an old one fresh", async () => {
    const modified = new Date(Date.now() - 1000).toUTCString();
    origin.route("/lm", (request, response) => {
      if (request.headers["if-modified-since"] === modified) {
        response.writeHead(304).end();
        return;
      }
      response.writeHead(200, { "last-modified": modified, "cache-control": "no-cache" }).end("lm body");
    });
    assert.equal((await get("/lm")).body, "lm body");
    const second = await get("/lm");
    assert.equal(second.body, "lm body");
    assert.equal(second.cacheStatus, "cachet; fwd=stale; fwd-status=304; stored", "no-cache: stored, but stale at once");
    assert.equal(origin.seen.at(-1)!.headers["if-modified-since"], modified);

    const old = new Date(Date.now() - 100 * 24 * 3600 * 1000).toUTCString();
    origin.route("/heuristic", answer("old", { "last-modified": old }));
    await get("/heuristic");
    assert.equal((await get("/heuristic")).cacheStatus, "cachet; hit");
    assert.equal(origin.count("/heuristic"), 1);
  });

  test("no-store: nothing is kept, every request goes to the origin", async () => {
    origin.route("/nostore", answer((n) => `n${n}`, { "cache-control": "no-store, max-age=3600" }));
    assert.equal((await get("/nostore")).cacheStatus, "cachet; fwd=uri-miss; fwd-status=200");
    assert.equal((await get("/nostore")).body, "n2");
    assert.equal(origin.count("/nostore"), 2);
  });

  test("Vary: each variant is stored apart and served to matching requests only", async () => {
    origin.route("/vary", (request, response) => {
      response.writeHead(200, { vary: "Accept-Language", "cache-control": "max-age=3600" }).end(`lang ${request.headers["accept-language"]}`);
    });
    assert.equal((await get("/vary", { headers: { "accept-language": "en" } })).body, "lang en");
    const fr = await get("/vary", { headers: [["Accept-Language", "fr"]] });
    assert.equal(fr.body, "lang fr");
    assert.equal(fr.cacheStatus, "cachet; fwd=vary-miss; fwd-status=200; stored");
    const en = await get("/vary", { headers: new Headers({ "Accept-Language": "en" }) });
    assert.deepEqual([en.body, en.cacheStatus], ["lang en", "cachet; hit"]);
    assert.deepEqual([(await get("/vary", { headers: { "accept-language": "fr" } })).body], ["lang fr"]);
    assert.equal(origin.count("/vary"), 2);
  });

  test("a URL that starts to vary: the response stored before it varied is not served to other variants", async () => {
    origin.route("/starts-to-vary", (request, response, n) => {
      const headers: Record<string, string> = { "cache-control": n === 1 ? "max-age=0" : "max-age=3600" };
      if (n > 1) headers.vary = "Accept";
      response.writeHead(200, headers).end(`${n} ${request.headers.accept}`);
    });
    assert.equal((await get("/starts-to-vary", { headers: { accept: "text/a" } })).body, "1 text/a");
    assert.equal((await get("/starts-to-vary", { headers: { accept: "text/a" } })).body, "2 text/a");
    const other = await get("/starts-to-vary", { headers: { accept: "text/b" } });
    assert.deepEqual([other.body, other.cacheStatus], ["3 text/b", "cachet; fwd=vary-miss; fwd-status=200; stored"]);
    assert.equal((await get("/starts-to-vary", { headers: { accept: "text/a" } })).cacheStatus, "cachet; hit");
  });

  test("immutable: a fresh immutable response is used even when the request asks to revalidate", async () => {
    origin.route("/immutable", answer("forever", { "cache-control": "max-age=3600, immutable" }));
    await get("/immutable");
    const reload = await get("/immutable", { headers: { "cache-control": "max-age=0" } });
    assert.equal(reload.cacheStatus, "cachet; hit");
    origin.route("/mutable", answer("changes", { "cache-control": "max-age=3600" }));
    await get("/mutable");
    // (no-cache rather than max-age=0: a response stored in the same millisecond has age 0, which max-age=0 allows)
    assert.notEqual((await get("/mutable", { headers: { "cache-control": "no-cache" } })).cacheStatus, "cachet; hit");
    assert.equal((await get("/immutable", { headers: { "cache-control": "no-cache" } })).cacheStatus, "cachet; hit");
    assert.equal(origin.count("/immutable"), 1);
  });

  test("a successful POST invalidates the stored responses of its URL and of its Location", async () => {
    origin.route("/item", (request, response, n) => {
      if (request.method === "POST") {
        response.writeHead(201, { location: "/other" }).end("created");
        return;
      }
      response.writeHead(200, { "cache-control": "max-age=3600" }).end(`item ${n}`);
    });
    origin.route("/other", answer((n) => `other ${n}`, { "cache-control": "max-age=3600" }));
    await get("/item");
    await get("/other");
    assert.equal((await get("/item")).cacheStatus, "cachet; hit");
    const post = await cachedFetch(origin.url("/item"), { method: "POST", body: "x" });
    assert.equal(post.headers.get("cache-status"), "cachet; fwd=method; fwd-status=201");
    const item = await get("/item");
    assert.equal(item.cacheStatus, "cachet; fwd=uri-miss; fwd-status=200; stored");
    assert.equal((await get("/other")).body, "other 2");
  });

  test("stale-if-error: a stale response is served when the origin fails or is down", async () => {
    const failing = await startOrigin({ "/sie": answer("kept", { "cache-control": "max-age=0, stale-if-error=3600" }) });
    const url = failing.url("/sie");
    await (await cachedFetch(url)).text();
    failing.route("/sie", (_request, response) => void response.writeHead(503).end("down"));
    const on503 = await cachedFetch(url);
    assert.deepEqual([on503.status, await on503.text(), on503.headers.get("cache-status")], [200, "kept", "cachet; fwd=stale; fwd-status=503; detail=stale-if-error"]);
    await failing.close();
    const down = await cachedFetch(url);
    assert.deepEqual([down.status, await down.text(), down.headers.get("cache-status")], [200, "kept", "cachet; fwd=stale; detail=stale-if-error"]);

    const strict = await startOrigin({ "/strict": answer("strict", { "cache-control": "max-age=0" }) });
    const strictUrl = strict.url("/strict");
    await (await cachedFetch(strictUrl)).text();
    await strict.close();
    await assert.rejects(cachedFetch(strictUrl), TypeError, "without stale-if-error the network error reaches the caller");
  });

  test("stale-while-revalidate: the stale response is served at once and refreshed in the background", async () => {
    origin.route("/swr", answer((n) => `swr ${n}`, { "cache-control": "max-age=0, stale-while-revalidate=3600" }));
    await get("/swr");
    const stale = await get("/swr");
    assert.deepEqual([stale.body, stale.cacheStatus], ["swr 1", "cachet; hit; detail=stale-while-revalidate"]);
    const deadline = Date.now() + 10_000;
    let body = "";
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      body = (await get("/swr")).body;
      if (body !== "swr 1") break;
    }
    assert.match(body, /^swr [2-9]/, "the background revalidation stored the new response");
  });

  test("cache modes: no-store, reload, no-cache, force-cache, only-if-cached", async () => {
    origin.route("/modes", (request, response, n) => {
      if (request.headers["if-none-match"] === '"m"') {
        response.writeHead(304, { etag: '"m"' }).end();
        return;
      }
      response.writeHead(200, { etag: '"m"', "cache-control": "max-age=0" }).end(`modes ${n}`);
    });
    const miss = await get("/modes", { cache: "only-if-cached" });
    assert.deepEqual([miss.status, miss.cacheStatus], [504, "cachet; fwd=miss; detail=only-if-cached"]);
    assert.equal(origin.count("/modes"), 0);

    const noStore = await get("/modes", { cache: "no-store" });
    assert.deepEqual([noStore.body, noStore.cacheStatus], ["modes 1", "cachet; fwd=bypass; fwd-status=200"]);
    assert.equal((await get("/modes", { cache: "only-if-cached" })).status, 504, "no-store stored nothing");

    const reload = await get("/modes", { cache: "reload" });
    assert.deepEqual([reload.body, reload.cacheStatus], ["modes 2", "cachet; fwd=request; fwd-status=200; stored"]);
    assert.equal(origin.seen.at(-1)!.headers["if-none-match"], undefined, "reload is not conditional");

    const stale = await get("/modes", { cache: "force-cache" });
    assert.deepEqual([stale.body, stale.cacheStatus], ["modes 2", "cachet; hit"], "force-cache uses a stale response");
    const only = await get("/modes", { cache: "only-if-cached" });
    assert.deepEqual([only.status, only.body], [200, "modes 2"]);
    assert.equal(origin.count("/modes"), 2);

    const noCache = await get("/modes", { cache: "no-cache" });
    assert.deepEqual([noCache.body, noCache.cacheStatus], ["modes 2", "cachet; fwd=request; fwd-status=304; stored"]);
    assert.equal(origin.seen.at(-1)!.headers["if-none-match"], '"m"');
    const byDefault = await get("/modes");
    assert.equal(byDefault.cacheStatus, "cachet; fwd=stale; fwd-status=304; stored");
    assert.equal(origin.count("/modes"), 4);
  });

  test("a Request object is accepted like fetch accepts it (GET from the store, POST with its body)", async () => {
    origin.route("/request-object", (request, response, n) => {
      let body = "";
      request.on("data", (chunk: Buffer) => (body += chunk.toString()));
      request.on("end", () => response.writeHead(200, { "cache-control": "max-age=3600" }).end(`${request.method} ${n} ${body}`));
    });
    const first = await cachedFetch(new Request(origin.url("/request-object"), { headers: { accept: "text/plain" } }));
    assert.equal(await first.text(), "GET 1 ");
    const second = await cachedFetch(new Request(origin.url("/request-object")));
    assert.deepEqual([await second.text(), second.headers.get("cache-status")], ["GET 1 ", "cachet; hit"]);
    const post = await cachedFetch(new Request(origin.url("/request-object"), { method: "POST", body: "payload" }));
    assert.equal(await post.text(), "POST 2 payload");
    const after = await cachedFetch(new Request(origin.url("/request-object")));
    assert.deepEqual([after.headers.get("cache-status"), await after.text()], ["cachet; fwd=uri-miss; fwd-status=200; stored", "GET 3 "]);
  });

  test("redirects are followed hop by hop, each hop cached by its own headers", async () => {
    origin.route("/moved", (_request, response) => void response.writeHead(301, { location: "/target", "cache-control": "max-age=3600" }).end());
    origin.route("/target", answer("arrived", { "cache-control": "max-age=3600" }));
    const first = await cachedFetch(origin.url("/moved"));
    assert.deepEqual([first.status, await first.text(), first.url, first.redirected], [200, "arrived", origin.url("/target"), true]);
    const second = await cachedFetch(origin.url("/moved"));
    assert.deepEqual([await second.text(), second.headers.get("cache-status")], ["arrived", "cachet; hit"]);
    assert.deepEqual([origin.count("/moved"), origin.count("/target")], [1, 1]);
    const manual = await cachedFetch(origin.url("/moved"), { redirect: "manual" });
    assert.deepEqual([manual.status, manual.headers.get("location"), manual.headers.get("cache-status")], [301, "/target", "cachet; hit"]);
  });
});
