// cachedFetch's guarantees beyond the HTTP rules: identical concurrent requests share one network request, a body
// that is cut or cancelled stores nothing, large bodies stream through, credentials never reach the disk,
// CACHET_OFFLINE and CACHET_REFRESH, entries named by host, and a cache that cannot be used (one warning).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { createCachedFetch, openStore, OfflineMissError, type CacheStore, type FetchFunction, type StoreWarning } from "../src/index.js";
import { runCli } from "./helpers.js";
import { answer, closeFetchSetup, openFetchSetup, startOrigin, type FetchSetup, type Origin } from "./http-origin.js";
import { runToEnd } from "./workers/child.js";

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? filesUnder(path) : entry.isFile() ? [path] : [];
  });
}

describe("cachedFetch: safety", () => {
  let dir: FetchSetup["dir"];
  let store: CacheStore;
  let origin: Origin;
  let cachedFetch: FetchFunction;

  before(async () => {
    ({ dir, store, origin, cachedFetch } = await openFetchSetup("cachet-http-safety-"));
  });
  after(() => closeFetchSetup({ dir, store, origin }));

  async function keysOf(name: string): Promise<string[]> {
    const keys: string[] = [];
    for await (const entry of store.list(name)) keys.push(entry.key);
    return keys.sort();
  }

  test("identical concurrent requests share one network request", async () => {
    origin.route("/slow", (_request, response) => {
      setTimeout(() => response.writeHead(200, { "cache-control": "max-age=3600" }).end("slow body"), 150);
    });
    const bodies = await Promise.all(Array.from({ length: 6 }, async () => (await cachedFetch(origin.url("/slow"))).text()));
    assert.deepEqual(bodies, Array(6).fill("slow body"));
    assert.equal(origin.count("/slow"), 1);
  });

  test("a body cut mid-stream, or cancelled by the caller, stores nothing", async () => {
    origin.route("/cut", (_request, response) => {
      response.writeHead(200, { "cache-control": "max-age=3600", "content-length": "100000" });
      response.write(Buffer.alloc(40_000, 1));
      setTimeout(() => response.destroy(), 20);
    });
    const name = new URL(origin.url("/")).host;
    const cut = await cachedFetch(origin.url("/cut"));
    await assert.rejects(cut.arrayBuffer());
    assert.equal((await cachedFetch(origin.url("/cut"), { cache: "only-if-cached" })).status, 504);
    assert.deepEqual((await keysOf(name)).filter((key) => key.includes("/cut")), []);

    origin.route("/cancel", (_request, response) => {
      response.writeHead(200, { "cache-control": "max-age=3600" });
      response.write(Buffer.alloc(64 * 1024, 2));
      const timer = setInterval(() => response.write(Buffer.alloc(64 * 1024, 2)), 5);
      response.on("close", () => clearInterval(timer));
    });
    const cancelled = await cachedFetch(origin.url("/cancel"));
    const reader = cancelled.body!.getReader();
    await reader.read();
    await reader.cancel();
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal((await cachedFetch(origin.url("/cancel"), { cache: "only-if-cached" })).status, 504);
    assert.deepEqual((await keysOf(name)).filter((key) => key.includes("/cancel")), []);
  });

  test("a large body streams into its own entry and comes back byte for byte; a damaged one is never served", async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    origin.route("/large", (_request, response) => void response.writeHead(200, { "cache-control": "max-age=3600", "content-length": String(data.length) }).end(data));
    const first = Buffer.from(await (await cachedFetch(origin.url("/large"))).arrayBuffer());
    assert.ok(first.equals(data));
    const hit = await cachedFetch(origin.url("/large"));
    assert.equal(hit.headers.get("cache-status"), "cachet; hit");
    assert.ok(Buffer.from(await hit.arrayBuffer()).equals(data));
    const name = new URL(origin.url("/")).host;
    const keys = (await keysOf(name)).filter((key) => key.includes("/large"));
    assert.equal(keys.filter((key) => key.startsWith("body ")).length, 1);

    // Another body under the head's body key (a replaced or damaged entry): the head's digest no longer matches.
    const bodyKey = keys.find((key) => key.startsWith("body "))!;
    await store.put(name, bodyKey, "something else entirely, as large as it likes");
    const after = await cachedFetch(origin.url("/large"));
    assert.notEqual(after.headers.get("cache-status"), "cachet; hit");
    assert.ok(Buffer.from(await after.arrayBuffer()).equals(data));
    assert.equal(origin.count("/large"), 2);
  });

  test("credentials in the URL are sent as Authorization but never reach a key, a name or a file", async () => {
    const password = "pa55-w0rd-" + randomBytes(6).toString("hex");
    const cookie = "session=" + randomBytes(8).toString("hex");
    origin.route("/private", (request, response) => {
      const expected = `Basic ${Buffer.from(`alice:${password}`).toString("base64")}`;
      response.writeHead(request.headers.authorization === expected ? 200 : 401, { "cache-control": "max-age=3600", vary: "Authorization, Cookie" });
      response.end("secret body");
    });
    const url = origin.url("/private").replace("http://", `http://alice:${password}@`);
    const first = await cachedFetch(url, { headers: { cookie } });
    assert.deepEqual([first.status, await first.text()], [200, "secret body"]);
    const second = await cachedFetch(url, { headers: { cookie } });
    assert.deepEqual([second.headers.get("cache-status"), await second.text()], ["cachet; hit", "secret body"]);
    const other = await cachedFetch(url.replace(password, "wrong"), { headers: { cookie } });
    assert.equal(other.status, 401, "another password is another variant");
    await other.text();
    assert.equal(origin.count("/private"), 2);

    await store.close();
    store = await openStore({ cacheDir: dir.path });
    cachedFetch = createCachedFetch({ store });
    const secrets = [password, Buffer.from(`alice:${password}`).toString("base64"), cookie.split("=")[1]!];
    for (const file of filesUnder(dir.path)) {
      if (statSync(file).size > 64 * 1024 * 1024) continue;
      const text = readFileSync(file).toString("latin1");
      for (const secret of secrets) assert.ok(!text.includes(secret), `${file} holds a secret`);
    }
    for await (const entry of store.list()) for (const secret of secrets) assert.ok(!entry.key.includes(secret) && !entry.name.includes(secret));
  });

  test("entries are named by host, with origin downloaded", async () => {
    origin.route("/named", answer("named", { "cache-control": "max-age=3600" }));
    await (await cachedFetch(origin.url("/named"))).text();
    const host = new URL(origin.url("/")).host;
    const rows = [];
    for await (const entry of store.list(host)) if (entry.key.includes("/named")) rows.push(entry);
    assert.ok(rows.length >= 2);
    assert.ok(rows.every((row) => row.origin === "downloaded"));
  });

  test("the CLI lists them by host (`cachet cache ls HOST`)", async () => {
    origin.route("/cli", answer("for the cli", { "cache-control": "max-age=3600" }));
    await (await cachedFetch(origin.url("/cli"))).text();
    const host = new URL(origin.url("/")).host;
    const listed = await runCli(["cache", "ls", host, "--json", "--cache-dir", dir.path]);
    assert.equal(listed.code, 0, listed.stderr);
    const rows = JSON.parse(listed.stdout) as { name: string; key: string; origin: string }[];
    assert.ok(rows.some((row) => row.name === host && row.key.includes("/cli") && row.origin === "downloaded"), listed.stdout);
  });

  test("stale-while-revalidate: a background revalidation that fails never reaches the caller", async () => {
    const flaky = await startOrigin({ "/swr-down": answer("kept", { "cache-control": "max-age=0, stale-while-revalidate=3600" }) });
    const url = flaky.url("/swr-down");
    await (await cachedFetch(url)).text();
    await flaky.close();
    const served = await cachedFetch(url);
    assert.deepEqual([await served.text(), served.headers.get("cache-status")], ["kept", "cachet; hit; detail=stale-while-revalidate"]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const again = await cachedFetch(url);
    assert.equal(await again.text(), "kept");
  });

  test("CACHET_OFFLINE: stored responses are served stale or not, a miss names the URL (only-if-cached: a 504), nothing connects", async () => {
    origin.route("/offline", answer("stored", { "cache-control": "max-age=0" }));
    await (await cachedFetch(origin.url("/offline"))).text();
    const before = origin.seen.length;
    const offline = createCachedFetch({ store, env: { CACHET_OFFLINE: "1" } });
    const served = await offline(origin.url("/offline"));
    assert.deepEqual([await served.text(), served.headers.get("cache-status")], ["stored", "cachet; hit; detail=offline"]);
    await assert.rejects(offline(origin.url("/never-stored")), (error: unknown) => {
      assert.ok(error instanceof OfflineMissError);
      assert.match(error.message, /network is disabled/);
      assert.ok(error.message.includes(origin.url("/never-stored")));
      return true;
    });
    await assert.rejects(offline(origin.url("/offline"), { method: "POST" }), OfflineMissError);
    const onlyIfCached = await offline(origin.url("/never-stored"), { cache: "only-if-cached" });
    assert.deepEqual([onlyIfCached.status, onlyIfCached.headers.get("cache-status")], [504, "cachet; fwd=miss; detail=only-if-cached"], "only-if-cached answers a miss as it does online");
    assert.equal(origin.seen.length, before);
  });

  test("CACHET_REFRESH: a stored response is revalidated once per process, not thrown away", async () => {
    origin.route("/refresh", (request, response) => {
      if (request.headers["if-none-match"] === '"r1"') return void response.writeHead(304, { etag: '"r1"' }).end();
      response.writeHead(200, { etag: '"r1"', "cache-control": "max-age=3600" }).end("refreshable");
    });
    await (await cachedFetch(origin.url("/refresh"))).text();
    const host = new URL(origin.url("/")).host;
    for (const setting of ["1", `other,${host}`]) {
      const refreshing = createCachedFetch({ store, env: { CACHET_REFRESH: setting } }); // a new process's view
      const before = origin.count("/refresh");
      const first = await refreshing(origin.url("/refresh"));
      assert.deepEqual([await first.text(), first.headers.get("cache-status")], ["refreshable", "cachet; fwd=request; fwd-status=304; stored"]);
      assert.equal(origin.seen.at(-1)!.headers["if-none-match"], '"r1"');
      const second = await refreshing(origin.url("/refresh"));
      assert.equal(second.headers.get("cache-status"), "cachet; hit", "revalidated in this process counts as fresh");
      assert.equal(origin.count("/refresh"), before + 1);
    }
    const notNamed = createCachedFetch({ store, env: { CACHET_REFRESH: "someone-else" } });
    assert.equal((await notNamed(origin.url("/refresh"))).headers.get("cache-status"), "cachet; hit");
  });

  test("a cache that cannot be used: every request goes to the network, with one warning", async () => {
    const broken = new Proxy(store, {
      get(target, property) {
        if (property === "root") return target.root;
        if (property === "then") return undefined;
        return () => {
          throw Object.assign(new Error("disk on fire"), { code: "EIO" });
        };
      },
    });
    const warnings: StoreWarning[] = [];
    const fetchBroken = createCachedFetch({ store: broken, onWarning: (warning) => warnings.push(warning) });
    origin.route("/broken", answer((n) => `b${n}`, { "cache-control": "max-age=3600" }));
    const bodies = [];
    for (let i = 0; i < 3; i++) bodies.push(await (await fetchBroken(origin.url("/broken"))).text());
    assert.deepEqual(bodies, ["b1", "b2", "b3"]);
    assert.equal(warnings.length, 1, `warnings: ${JSON.stringify(warnings)}`);
    assert.equal(warnings[0]!.code, "CACHET_CACHE_READ_FAILED");
    assert.match(warnings[0]!.message, /disk on fire/);
  });

  test("an unusable cache directory: downloads still work, with one warning", async () => {
    const file = join(dir.path, "not-a-directory");
    await (await import("node:fs/promises")).writeFile(file, "x");
    const script = `
      const { cachedFetch } = await import(${JSON.stringify(new URL("../src/index.js", import.meta.url).href)});
      let warnings = 0;
      process.on("warning", () => warnings++);
      for (let i = 0; i < 3; i++) await (await cachedFetch(${JSON.stringify(origin.url("/broken"))})).text();
      await new Promise((resolve) => setTimeout(resolve, 50));
      console.log("warnings " + warnings);
    `;
    const result = await runToEnd(["--import", "tsx", "--input-type=module", "-e", script], { CACHET_CACHE_DIR: join(file, "cache") }, { cwd: new URL("..", import.meta.url).pathname });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /warnings 1\b/);
    assert.match(result.stderr, /CACHET_CACHE_UNAVAILABLE|cannot use the cache/);
  });
});
