// Suite "http-cache": cachedFetch against a loopback origin in this process.
// - Fresh hit latency (1 KiB body, p50/p99): cachet against an uncached fetch, undici 7's cache interceptor
//   (memory store, private) and make-fetch-happen 15 (its cacache cache), on the same URLs.
// - A 256 MiB download streamed into the cache (the caller reads it through) against a plain fetch piped to a
//   file: throughput ratio and the peak RSS growth during the download.
// - A revalidation round trip (the origin answers 304) against a plain conditional fetch.
import { createWriteStream } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { randomBytes } from "node:crypto";
import { openStore } from "../src/store/index.js";
import { createCachedFetch, type FetchFunction } from "../src/sources/index.js";
import { median, now, percentile, scratchDir, type BenchContext } from "./measure.js";
import { fmt, info, judged, type Figure } from "./report.js";

const SUITE = "http-cache";
const MiB = 1 << 20;

export async function run(context: BenchContext): Promise<Figure[]> {
  const figures: Figure[] = [];
  const scratch = scratchDir(SUITE);
  const small = randomBytes(1024);
  const chunk = randomBytes(MiB);
  const bigSize = (context.quick ? 32 : 256) * MiB;
  const server: Server = createServer((request, response) => {
    const path = request.url ?? "/";
    if (path.startsWith("/fresh/")) {
      response.writeHead(200, { "cache-control": "max-age=3600", "content-type": "application/octet-stream", "content-length": String(small.length) });
      response.end(small);
    } else if (path.startsWith("/validate/")) {
      if (request.headers["if-none-match"] === '"v"') return void response.writeHead(304, { etag: '"v"', "cache-control": "max-age=0" }).end();
      response.writeHead(200, { etag: '"v"', "cache-control": "max-age=0", "content-length": String(small.length) });
      response.end(small);
    } else if (path.startsWith("/big/")) {
      response.writeHead(200, { "cache-control": "max-age=3600", "content-length": String(bigSize) });
      let sent = 0;
      const more = () => {
        while (sent < bigSize) {
          sent += chunk.length;
          if (!response.write(chunk)) return void response.once("drain", more);
        }
        response.end();
      };
      more();
    } else response.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const store = await openStore({ cacheDir: join(scratch.path, "cache") });
  const cachet = createCachedFetch({ store });
  const undici = await import("undici");
  const dispatcher = new undici.Agent().compose(undici.interceptors.cache({ store: new undici.cacheStores.MemoryCacheStore(), type: "private" }));
  const undiciFetch: FetchFunction = (input, init) => undici.fetch(input as string, { ...(init as object), dispatcher }) as unknown as Promise<Response>;
  const mfhModule = "make-fetch-happen";
  const mfh = ((await import(mfhModule)) as { default: { defaults(options: object): FetchFunction } }).default.defaults({ cachePath: join(scratch.path, "mfh") });

  try {
    // Fresh hits: one URL per client (each client's first call fills its cache), then the same URL over and over.
    const reps = context.quick ? 300 : 3000;
    const clients: [string, FetchFunction, string][] = [
      ["uncached fetch", fetch, "/fresh/plain"],
      ["cachet", cachet, "/fresh/cachet"],
      ["undici 7 cache", undiciFetch, "/fresh/undici"],
      ["make-fetch-happen 15", mfh, "/fresh/mfh"],
    ];
    const latency = new Map<string, number[]>();
    for (const [name, client, path] of clients) {
      context.log(`${SUITE}: fresh hits, ${name}`);
      for (let i = 0; i < 50; i++) await (await client(base + path)).arrayBuffer();
      const times: number[] = [];
      for (let i = 0; i < reps; i++) {
        const start = now();
        const response = await client(base + path);
        await response.arrayBuffer();
        times.push(now() - start);
      }
      latency.set(name, times);
    }
    const p = (name: string, q: number) => percentile(latency.get(name)!, q);
    const detail = clients.map(([name]) => `${name} ${fmt.us(p(name, 50))}/${fmt.us(p(name, 99))}`).join(" · ");
    figures.push(judged(SUITE, "fresh hit p50 vs uncached loopback fetch", `p50/p99: ${detail}`, p("uncached fetch", 50) / p("cachet", 50), "×", { atLeast: 10 }));
    figures.push(judged(SUITE, "fresh hit p50 vs undici 7 cache interceptor", `undici ${fmt.us(p("undici 7 cache", 50))} · cachet ${fmt.us(p("cachet", 50))}`, p("undici 7 cache", 50) / p("cachet", 50), "×", { atLeast: 1 }));
    figures.push(judged(SUITE, "fresh hit p50 vs make-fetch-happen 15", `make-fetch-happen ${fmt.us(p("make-fetch-happen 15", 50))} · cachet ${fmt.us(p("cachet", 50))}`, p("make-fetch-happen 15", 50) / p("cachet", 50), "×", { atLeast: 1 }));
    figures.push(info(SUITE, "fresh hit p99 (cachet · undici · make-fetch-happen)", `${fmt.us(p("cachet", 99))} · ${fmt.us(p("undici 7 cache", 99))} · ${fmt.us(p("make-fetch-happen 15", 99))}`));

    // Revalidation round trips: the stored response is stale at once, the origin answers 304.
    context.log(`${SUITE}: 304 round trips`);
    await (await cachet(`${base}/validate/cachet`)).arrayBuffer();
    const plainConditional: number[] = [];
    const cachetConditional: number[] = [];
    const rounds = context.quick ? 200 : 2000;
    for (let i = 0; i < rounds; i++) {
      let start = now();
      const plain = await fetch(`${base}/validate/plain`, { headers: { "if-none-match": '"v"' } });
      await plain.arrayBuffer();
      plainConditional.push(now() - start);
      start = now();
      const ours = await cachet(`${base}/validate/cachet`);
      await ours.arrayBuffer();
      cachetConditional.push(now() - start);
    }
    figures.push(
      judged(SUITE, "304 round trip vs plain conditional fetch (p50)", `cachet ${fmt.us(median(cachetConditional))} · plain ${fmt.us(median(plainConditional))}`, median(cachetConditional) / median(plainConditional), "×", { atMost: 1.2 }, 2),
    );

    // A large download: the caller reads the body while it streams into the store, against fetch → file.
    const bigReps = context.quick ? 1 : 3;
    const plainTimes: number[] = [];
    const cachetTimes: number[] = [];
    let peakGrowth = 0;
    for (let rep = 0; rep < bigReps; rep++) {
      context.log(`${SUITE}: ${bigSize / MiB} MiB download, repetition ${rep + 1}/${bigReps}`);
      let start = now();
      const plain = await fetch(`${base}/big/plain-${rep}`);
      await pipeline(Readable.fromWeb(plain.body! as WebReadableStream<Uint8Array>), createWriteStream(join(scratch.path, `plain-${rep}.bin`)));
      plainTimes.push(now() - start);

      global.gc?.();
      const before = process.memoryUsage().rss;
      let peak = before;
      const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
      start = now();
      const ours = await cachet(`${base}/big/cachet-${rep}`);
      const reader = ours.body!.getReader();
      for (;;) if ((await reader.read()).done) break;
      // The store's write finishes as the last chunk is read; a hit proves the whole body was stored.
      const hit = await cachet(`${base}/big/cachet-${rep}`, { cache: "only-if-cached" });
      cachetTimes.push(now() - start);
      clearInterval(sampler);
      peak = Math.max(peak, process.memoryUsage().rss);
      await hit.body?.cancel();
      if (hit.status !== 200) throw new Error(`the ${bigSize / MiB} MiB body was not stored (${hit.headers.get("cache-status")})`);
      peakGrowth = Math.max(peakGrowth, peak - before);
    }
    const throughput = (ms: number) => fmt.mbps(bigSize, ms);
    figures.push(
      judged(SUITE, `${bigSize / MiB} MiB download into the cache vs fetch → file (throughput)`, `cachet ${throughput(median(cachetTimes))} · plain ${throughput(median(plainTimes))}`, (median(plainTimes) / median(cachetTimes)) * 100, " %", { atLeast: 90 }, 0),
    );
    figures.push(judged(SUITE, `${bigSize / MiB} MiB download: peak RSS growth`, `during cachet's download and store`, peakGrowth / MiB, " MiB", { atMost: 64 }, 0));
  } finally {
    await store.close();
    await dispatcher.close();
    server.closeAllConnections();
    server.close();
    scratch.cleanup();
  }
  return figures;
}
