// A plain GET of a URL string (no init) revalidates a stale stored response on a path of its own: these tests
// check it answers exactly what a request through the general path answers (`{ headers: {} }` takes that path),
// whatever the origin says, with Vary, and after another process replaced the stored response.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createCachedFetch, openStore, type CacheStore, type FetchFunction } from "../src/index.js";
import { tempDir } from "./helpers.js";
import { startOrigin, type Origin } from "./http-origin.js";
import { startNode, workerPath } from "./workers/child.js";

const REPO = new URL("..", import.meta.url).pathname;
const DATES = ["Mon, 02 Nov 2026 10:00:00 GMT", "Mon, 02 Nov 2026 10:00:05 GMT", "Mon, 02 Nov 2026 10:00:09 GMT", "Mon, 02 Nov 2026 10:00:12 GMT"];

/** What a caller can see of a response, Age apart (it moves with the clock). */
async function seen(response: Response) {
  const headers = [...response.headers].filter(([name]) => name !== "age");
  return { status: response.status, statusText: response.statusText, url: response.url, redirected: response.redirected, headers, body: await response.text() };
}

describe("cachedFetch: a plain GET's revalidation", () => {
  let dir: ReturnType<typeof tempDir>;
  let fastStore: CacheStore;
  let generalStore: CacheStore;
  let origin: Origin;
  let fast: FetchFunction;
  let general: FetchFunction;

  before(async () => {
    dir = tempDir("cachet-reval-");
    fastStore = await openStore({ cacheDir: `${dir.path}/fast` });
    generalStore = await openStore({ cacheDir: `${dir.path}/general` });
    origin = await startOrigin();
    fast = createCachedFetch({ store: fastStore });
    general = createCachedFetch({ store: generalStore });
  });
  after(async () => {
    await fastStore.close();
    await generalStore.close();
    await origin.close();
    dir.cleanup();
  });

  /** The same origin behaviour on two paths: one asked by plain GETs, the other through the general path. */
  async function compare(name: string, route: (request: IncomingMessage, response: ServerResponse, n: number) => void, steps: number) {
    origin.route(`/${name}-fast`, route);
    origin.route(`/${name}-general`, route);
    const statuses: string[] = [];
    for (let step = 1; step <= steps; step++) {
      const a = await fast(origin.url(`/${name}-fast`));
      const b = await general(origin.url(`/${name}-general`), { headers: {} });
      const ageA = Number(a.headers.get("age") ?? Number.NaN);
      const ageB = Number(b.headers.get("age") ?? Number.NaN);
      const [seenA, seenB] = [await seen(a), await seen(b)];
      const unpathed = (value: { url: string }) => ({ ...value, url: value.url.replace(/-(fast|general)$/, "") });
      assert.deepEqual(unpathed(seenA), unpathed(seenB), `${name}, step ${step}`);
      assert.ok(Number.isNaN(ageA) ? Number.isNaN(ageB) : Math.abs(ageA - ageB) <= 1, `${name}, step ${step}: Age ${ageA} and ${ageB}`);
      const requestA = origin.seen.findLast((entry) => entry.path === `/${name}-fast`)!;
      const requestB = origin.seen.findLast((entry) => entry.path === `/${name}-general`)!;
      assert.deepEqual(requestA.headers, requestB.headers, `${name}, step ${step}: the request the origin saw`);
      statuses.push(seenA.headers.find(([field]) => field === "cache-status")![1]);
    }
    assert.equal(origin.count(`/${name}-fast`), origin.count(`/${name}-general`));
    return statuses;
  }

  test("every answer of the origin gives the same response: 304s that change Date or other headers, a new body, a redirect", async () => {
    // A Date of its own: the server's, taken per request, moved on by a second between the two paths once.
    origin.route("/reval-target", (_request, response) => void response.writeHead(200, { "cache-control": "max-age=0", date: DATES[0]! }).end("target body"));
    const statuses = await compare(
      "reval",
      (request, response, n) => {
        const etag = n < 5 ? '"e1"' : '"e2"';
        const date = DATES[n % DATES.length]!;
        if (n === 7) return void response.writeHead(301, { location: "/reval-target", date }).end();
        if (request.headers["if-none-match"] === etag) {
          // 2 and 4 change nothing but Date; 3 and 6 add a header (the stored head is rewritten).
          const extra = n === 3 || n === 6 ? { "x-updated": `at ${n}` } : {};
          return void response.writeHead(304, { etag, "cache-control": "max-age=0", date, ...extra }).end();
        }
        response.writeHead(200, { etag, "cache-control": "max-age=0", date, "x-version": String(n) }).end(`body ${n}`);
      },
      7,
    );
    assert.deepEqual(statuses, [
      "cachet; fwd=uri-miss; fwd-status=200; stored",
      "cachet; fwd=stale; fwd-status=304; stored",
      "cachet; fwd=stale; fwd-status=304; stored",
      "cachet; fwd=stale; fwd-status=304; stored",
      "cachet; fwd=stale; fwd-status=200; stored",
      "cachet; fwd=stale; fwd-status=304; stored",
      "cachet; fwd=uri-miss; fwd-status=200; stored",
    ]);
  });

  test("a response with Vary, and one with Last-Modified and no ETag, give the same responses too", async () => {
    await compare(
      "vary",
      (request, response, n) => {
        const headers = { etag: '"v"', "cache-control": "max-age=0", vary: "accept-language", date: DATES[n % DATES.length]! };
        if (request.headers["if-none-match"] === '"v"') return void response.writeHead(304, headers).end();
        response.writeHead(200, headers).end("vary body");
      },
      3,
    );
    const modified = "Sun, 01 Nov 2026 10:00:00 GMT";
    await compare(
      "modified",
      (request, response, n) => {
        const headers = { "last-modified": modified, "cache-control": "no-cache", date: DATES[n % DATES.length]! };
        if (request.headers["if-modified-since"] === modified) return void response.writeHead(304, headers).end();
        response.writeHead(200, headers).end("modified body");
      },
      3,
    );
  });

  test("after another process replaced the stored response, the revalidation asks for the new one and serves it", async () => {
    let etag = '"r1"';
    origin.route("/reval-replaced", (request, response, n) => {
      if (request.headers["if-none-match"] === etag) return void response.writeHead(304, { etag, "cache-control": "max-age=0" }).end();
      etag = `"r${n}"`;
      response.writeHead(200, { etag, "cache-control": "max-age=0" }).end(`version ${n}`);
    });
    const url = origin.url("/reval-replaced");
    assert.equal(await (await fast(url)).text(), "version 1");
    const revalidated = await fast(url);
    assert.deepEqual([await revalidated.text(), revalidated.headers.get("cache-status")], ["version 1", "cachet; fwd=stale; fwd-status=304; stored"]);
    const child = startNode(["--import", "tsx", workerPath("http-fetcher.ts"), `${dir.path}/fast`, url, "reload"], {}, { cwd: REPO });
    try {
      await child.waitFor(/\}\n/);
      assert.equal((JSON.parse(child.stdout().trim()) as { body: string }).body, "version 3");
    } finally {
      await child.kill9();
    }
    const after = await fast(url);
    assert.deepEqual([await after.text(), after.headers.get("etag"), after.headers.get("cache-status")], ["version 3", '"r3"', "cachet; fwd=stale; fwd-status=304; stored"]);
    assert.equal(origin.seen.at(-1)!.headers["if-none-match"], '"r3"');
  });
});
