/**
 * Task benchmarks: the overhead of a cached call (hash + lookup + decode) against the same memoization logic over
 * cacache and against calling the function uncached; the first 5,000 hits after a task's first call; the first hit
 * in a fresh process; and 8 processes sharing one cache. Figures are ratios against baselines measured in the same run.
 */
import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { scratchDir } from "./measure.js";
import { Cache, openStore, task } from "../dist/index.js";
import { info, judged, type Figure } from "./report.js";
import type { BenchContext } from "./measure.js";
// @ts-expect-error plain JS helper shared with the worker processes
import { memoize } from "./workers/memo-over-cacache.mjs";

const WORKERS = new URL("./workers/", import.meta.url).pathname;

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

async function latencies(call: () => Promise<unknown>, count: number): Promise<{ p50: number; p99: number }> {
  for (let i = 0; i < Math.min(count, 20_000); i++) await call();
  const samples = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const t = process.hrtime.bigint();
    await call();
    samples[i] = Number(process.hrtime.bigint() - t) / 1000;
  }
  samples.sort();
  return { p50: percentile(samples, 0.5), p99: percentile(samples, 0.99) };
}

const SUITE = "task-calls";
const us = (value: number) => `${value.toFixed(2)} µs`;
const ms = (value: number) => `${value.toFixed(1)} ms`;

/** Warm hits in one process: cachet vs memoization over cacache vs the uncached function. */
async function steadyState(quick: boolean): Promise<{ figures: Figure[]; p99: number }> {
  const scratch = scratchDir("task");
  try {
    const store = await openStore({ cacheDir: join(scratch.path, "cachet") });
    const body = async (text: string, verbose: boolean) => ({ text, verbose, n: text.length });
    const embed = task({ name: "embed", cache: new Cache({ version: "1" }), store }, body);
    const memo = memoize(join(scratch.path, "cacache"), "embed", "1", body) as typeof embed;
    await embed("hello", false);
    await memo("hello", false);
    const count = quick ? 20_000 : 200_000;
    const cachet = await latencies(() => embed("hello", false), count);
    const cacache = await latencies(() => memo("hello", false), quick ? 2_000 : 20_000);
    const raw = await latencies(() => body("hello", false), count);
    await store.close();
    const detail = (a: number, b: number) => `cachet ${us(a)} · cacache memo ${us(b)}`;
    const figures = [
      judged(SUITE, "warm hit p50, steady state, vs same memo over cacache", detail(cachet.p50, cacache.p50), cacache.p50 / cachet.p50, "×", { atLeast: 100 }),
      judged(SUITE, "warm hit p50, steady state (µs)", detail(cachet.p50, cacache.p50), cachet.p50, " µs", { atMost: 5 }, 2),
      judged(SUITE, "warm hit p99, steady state (µs)", detail(cachet.p99, cacache.p99), cachet.p99, " µs", { atMost: 15 }, 2),
      info(SUITE, "warm hit vs calling the uncached function", `hit ${us(cachet.p50)} · uncached no-op async call ${us(raw.p50)}: caching pays for functions slower than the hit`, `${(cachet.p50 / raw.p50).toFixed(0)}× a no-op`),
    ];
    return { figures, p99: cachet.p99 };
  } finally {
    scratch.cleanup();
  }
}

/** The first cached call in a process that just started, including import and opening the cache. */
function firstHit(quick: boolean): Figure[] {
  const scratch = scratchDir("task-first");
  const dir = scratch.path;
  try {
    const run = (mode: string) => {
      const result = spawnSync(process.execPath, [join(WORKERS, "task-first-hit.mjs"), join(dir, mode), mode], { encoding: "utf8" });
      if (result.status !== 0) throw new Error(`first-hit worker (${mode}) failed: ${result.stderr}`);
      return JSON.parse(result.stdout) as { importMs: number; firstHitMs: number; totalMs: number };
    };
    // Seed both caches (the first cachet run is a miss that stores; cacache gets an explicit put).
    run("cachet");
    seedCacache(join(dir, "cacache"));
    const reps = quick ? 3 : 9;
    const cachet = Array.from({ length: reps }, () => run("cachet"));
    const cacache = Array.from({ length: reps }, () => run("cacache"));
    const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    const hit = median(cachet.map((r) => r.firstHitMs));
    const total = median(cachet.map((r) => r.totalMs));
    const baseHit = median(cacache.map((r) => r.firstHitMs));
    const baseTotal = median(cacache.map((r) => r.totalMs));
    return [
      judged(SUITE, "first hit in a fresh process, opening the cache (ms)", `cachet ${ms(hit)} · cacache memo ${ms(baseHit)} (medians of ${reps})`, hit, " ms", { atMost: 50 }),
      info(SUITE, "first hit including importing the library", `cachet ${ms(total)} · cacache memo ${ms(baseTotal)}`, `${(baseTotal / total).toFixed(2)}× cacache`),
    ];
  } finally {
    scratch.cleanup();
  }
}

/**
 * The first 5,000 hits after a task's first call in a fresh process (JIT warm-up, first reads of the index, the
 * memo filling): their p99 against the steady-state p99 measured above in this run, and against the same
 * window of the memo over cacache. Medians over fresh processes.
 */
function earlyHits(quick: boolean, steadyP99: number): Figure[] {
  const scratch = scratchDir("task-early");
  const dir = scratch.path;
  const count = 5_000;
  try {
    const run = (mode: string) => {
      const result = spawnSync(process.execPath, [join(WORKERS, "task-early-hits.mjs"), join(dir, mode), String(count), mode], { encoding: "utf8" });
      if (result.status !== 0) throw new Error(`early-hits worker (${mode}) failed: ${result.stderr}`);
      return JSON.parse(result.stdout) as { p50: number; p99: number };
    };
    run("cachet"); // seeds the entry: every later process starts with a hit
    seedCacache(join(dir, "cacache"));
    const reps = quick ? 3 : 9;
    const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    const cachet = median(Array.from({ length: reps }, () => run("cachet").p99));
    const cacache = median(Array.from({ length: reps }, () => run("cacache").p99));
    return [
      info(
        SUITE,
        `warm hit p99 over the first ${count.toLocaleString("en-US")} hits after the first call`,
        `cachet ${us(cachet)} · steady state ${us(steadyP99)} · cacache memo, same window ${us(cacache)} (medians of ${reps} fresh processes)`,
        `${(cachet / steadyP99).toFixed(1)}× steady · ${(cacache / cachet).toFixed(1)}× cacache`,
      ),
    ];
  } finally {
    scratch.cleanup();
  }
}

function seedCacache(dir: string): void {
  const script = `import { memoize } from ${JSON.stringify(join(WORKERS, "memo-over-cacache.mjs"))};
    await memoize(${JSON.stringify(dir)}, "embed", "1", async (text, verbose) => ({ text, verbose, n: text.length }))("hello", false);`;
  const result = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
  if (result.status !== 0) throw new Error(result.stderr);
}

/** `processes` processes × `calls` calls over `keys` keys on one cache; wall time from a common start signal. */
async function fleet(mode: string, cacheDir: string, processes: number, calls: number, keys: number): Promise<number> {
  const children = Array.from({ length: processes }, (_, index) =>
    spawn(process.execPath, [join(WORKERS, "task-calls.mjs"), mode, cacheDir, String(calls), String(keys), String(index + 1)], {
      stdio: ["pipe", "pipe", "inherit"],
    }),
  );
  const outputs = children.map(
    (child) =>
      new Promise<string>((resolve, reject) => {
        let out = "";
        child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
        child.on("close", (code) => (code === 0 ? resolve(out) : reject(new Error(`${mode} worker exited ${code}`))));
      }),
  );
  await Promise.all(
    children.map((child) => new Promise<void>((resolve) => child.stdout.on("data", (chunk: Buffer) => chunk.toString().includes("ready") && resolve()))),
  );
  const started = performance.now();
  for (const child of children) child.stdin.end("go\n");
  await Promise.all(outputs);
  return performance.now() - started;
}

async function multiProcess(quick: boolean): Promise<Figure[]> {
  const scratch = scratchDir("task-fleet");
  const dir = scratch.path;
  try {
    const calls = quick ? 2_000 : 10_000;
    const keys = 1_000;
    const oneMs = await fleet("cachet", join(dir, "one"), 1, calls, keys);
    const eightMs = await fleet("cachet", join(dir, "eight"), 8, calls, keys);
    const cacacheMs = await fleet("cacache", join(dir, "cacache"), 8, calls, keys);
    const rate = (processes: number, wall: number) => (processes * calls) / (wall / 1000);
    const one = rate(1, oneMs);
    const eight = rate(8, eightMs);
    const base = rate(8, cacacheMs);
    const fmtRate = (r: number) => `${Math.round(r).toLocaleString("en-US")} calls/s`;
    return [
      judged(SUITE, `8 processes × ${calls} calls over ${keys} keys vs 1 process`, `×8 ${fmtRate(eight)} · ×1 ${fmtRate(one)} (cold keys: misses, then hits)`, eight / one, "×", { atLeast: 1 }, 2),
      info(SUITE, `8 processes × ${calls} calls, vs the same memo over cacache`, `cachet ${fmtRate(eight)} · cacache ${fmtRate(base)}`, `${(eight / base).toFixed(1)}×`),
    ];
  } finally {
    scratch.cleanup();
  }
}

/** The task suite for `bench/run.ts`. */
export async function run(context: BenchContext): Promise<Figure[]> {
  context.log("warm hits in one process");
  const steady = await steadyState(context.quick);
  const figures = steady.figures;
  context.log("the first hits after a task's first call, in fresh processes");
  figures.push(...earlyHits(context.quick, steady.p99));
  context.log("first hits in fresh processes");
  figures.push(...firstHit(context.quick));
  context.log("8 processes on one cache");
  figures.push(...(await multiProcess(context.quick)));
  return figures;
}
