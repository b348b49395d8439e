// Suite "index-scale": get latency (p50, p99) as the cache grows from 10³ to 10⁵ to 10⁶ entries, and the wall
// time of `cachet cache size`, `cachet cache ls NAME` and `cachet cache prune --max-size <half>` at 10⁶ entries.
//
// The cache is kept realistic: 1 % of entries hold blobs (17–24 KiB files, written with Store.put), the rest
// small inline values (64–512 B, bulk-loaded with the bench-only helper in index-fill.ts); 1000 names with one
// entry each per 1000 entries; last use spread over 90 days; key components recorded. Latency is sampled on
// inline entries picked uniformly at random, so it measures the index, not blob reads.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { openStore, type Store } from "../src/store/index.js";
import { benchEntry, fillIndex, spreadLastUse } from "./index-fill.js";
import { median, now, percentile, scratchDir, type BenchContext } from "./measure.js";
import { fmt, info, judged, type Figure } from "./report.js";

const SUITE = "index-scale";
const CLI = new URL("../dist/cli/main.js", import.meta.url).pathname;
const BLOB_SHARE = 100; // one entry in 100 holds a blob

export async function run(context: BenchContext): Promise<Figure[]> {
  const levels = context.quick ? [1_000, 10_000, 100_000] : [1_000, 100_000, 1_000_000];
  const samples = context.quick ? 5_000 : 20_000;
  const scratch = scratchDir(SUITE);
  const root = join(scratch.path, "cache");
  const figures: Figure[] = [];
  const p50s: number[] = [];
  let store: Store | undefined = await openStore({ cacheDir: root });
  const indexFile = store.indexFile;
  try {
    let inline = 0;
    let blobs = 0;
    for (const level of levels) {
      const wantBlobs = level / BLOB_SHARE;
      context.log(`${SUITE}: filling to ${level.toLocaleString("en-US")} entries`);
      const fillStart = now();
      for (; blobs < wantBlobs; blobs++) {
        const value = randomBytes(17 * 1024 + Math.floor(Math.random() * 7 * 1024));
        await store.put(`task-${String(blobs % 1000).padStart(4, "0")}`, `blob-${blobs}`, value);
      }
      spreadLastUse(indexFile, "blobs-v1");
      fillIndex(indexFile, inline, level - wantBlobs);
      inline = level - wantBlobs;
      context.log(`${SUITE}: filled in ${((now() - fillStart) / 1000).toFixed(1)} s; measuring get latency`);

      const latencies = await getLatencies(store, inline, samples);
      const p50 = percentile(latencies, 50);
      p50s.push(p50);
      figures.push(
        info(SUITE, `get latency at ${level.toLocaleString("en-US")} entries`, `p50 ${fmt.us(p50)} · p99 ${fmt.us(percentile(latencies, 99))} (${samples} gets)`),
      );
    }
    const first = p50s[0]!;
    const last = p50s[p50s.length - 1]!;
    const top = levels[levels.length - 1]!.toLocaleString("en-US");
    figures.push(
      judged(SUITE, `get p50 at ${top} vs at ${levels[0]!.toLocaleString("en-US")} entries`, `${fmt.us(last)} vs ${fmt.us(first)}`, last / first, "×", { atMost: 1.5 }, 2),
    );
    await store.close();
    store = undefined;

    const db = new Database(indexFile, { readonly: true });
    const { total, count } = db.prepare("SELECT sum(size) AS total, count(*) AS count FROM entries").get() as { total: number; count: number };
    db.close();
    figures.push(info(SUITE, `cache at ${top} entries`, `${count.toLocaleString("en-US")} entries, content ${(total / 1048576).toFixed(0)} MiB, index file ${(statSync(indexFile).size / 1048576).toFixed(0)} MiB`));

    if (!existsSync(CLI)) {
      figures.push(info(SUITE, "CLI timings", "skipped: dist/cli/main.js missing (run npm run build, or npm run bench)"));
      return figures;
    }
    context.log(`${SUITE}: timing the CLI`);
    const env = { ...process.env, CACHET_CACHE_DIR: root, CACHET_NO_PROGRESS: "1" };
    const nodeStart = median(await repeat(3, () => runTimed(process.execPath, ["-e", "0"], env)));
    const cli = (args: string[]) => runTimed(process.execPath, [CLI, ...args], env);
    const name = benchEntry(42).name;
    const timings: Array<[string, number]> = [
      ["cachet cache size", median(await repeat(3, () => cli(["cache", "size"])))],
      [`cachet cache ls ${name} (${count / 1000} entries)`, median(await repeat(3, () => cli(["cache", "ls", name])))],
      [`cachet cache prune --max-size ${Math.floor(total / 2)} (half)`, await cli(["cache", "prune", "--max-size", String(Math.floor(total / 2))])],
    ];
    for (const [label, ms] of timings) {
      figures.push(judged(SUITE, `${label} at ${top}`, `${(ms / nodeStart).toFixed(1)}× a bare node start (${fmt.ms(nodeStart)})`, ms, " ms", { atMost: 1000 }, 0));
    }
    return figures;
  } finally {
    await store?.close();
    scratch.cleanup();
  }
}

/**
 * Latency of `samples` gets of random inline entries, in ms, after a warm-up. Each store instance reads each key
 * at most once, in rounds on freshly opened stores: a key read twice would be served by the store's in-process
 * memo, and this figure is about how the index scales, not the memo.
 */
async function getLatencies(store: Store, inline: number, samples: number): Promise<number[]> {
  const pick = () => benchEntry(Math.floor(Math.random() * inline));
  for (let i = 0; i < 2000; i++) {
    const { name, key } = pick();
    await store.get(name, key);
  }
  const perRound = Math.min(inline, 5_000);
  const latencies: number[] = [];
  while (latencies.length < samples) {
    const reader = await openStore({ cacheDir: store.root });
    const seen = new Set<number>();
    while (seen.size < Math.min(perRound, samples - latencies.length)) seen.add(Math.floor(Math.random() * inline));
    for (const index of seen) {
      const { name, key } = benchEntry(index);
      const start = process.hrtime.bigint();
      const value = await reader.get(name, key);
      latencies.push(Number(process.hrtime.bigint() - start) / 1e6);
      if (value === undefined) throw new Error(`lost ${name}/${key}`);
    }
    await reader.close();
  }
  return latencies;
}

async function repeat(times: number, fn: () => Promise<number>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < times; i++) out.push(await fn());
  return out;
}

/** Wall time of a command until it exits (output read and discarded), in ms; throws if it fails. */
function runTimed(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = now();
    const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stdout.resume();
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      const elapsed = now() - start;
      if (code === 0) resolve(elapsed);
      else reject(new Error(`${args.join(" ")} exited ${code}: ${stderr}`));
    });
  });
}
