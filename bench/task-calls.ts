/**
 * Task benchmarks: the overhead of a cached call (hash + lookup + decode) against the same memoization logic over
 * cacache and against calling the function uncached; the first hit in a fresh process; and 8 processes sharing one
 * cache. Figures are ratios against baselines measured in the same run.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cache, openStore, task } from "../dist/index.js";
// @ts-expect-error plain JS helper shared with the worker processes
import { memoize } from "./workers/memo-over-cacache.mjs";

export interface TaskBenchRow {
  figure: string;
  value: string;
  baseline: string;
  ratio: number;
  target?: { ratio?: number; atMost?: number; measured?: number };
  pass?: boolean;
}

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

const us = (value: number) => `${value.toFixed(2)} µs`;
const ms = (value: number) => `${value.toFixed(1)} ms`;

/** Warm hits in one process: cachet vs memoization over cacache vs the uncached function. */
async function steadyState(quick: boolean): Promise<TaskBenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), "cachet-bench-task-"));
  try {
    const store = await openStore({ cacheDir: join(dir, "cachet") });
    const body = async (text: string, verbose: boolean) => ({ text, verbose, n: text.length });
    const embed = task({ name: "embed", cache: new Cache({ version: "1" }), store }, body);
    const memo = memoize(join(dir, "cacache"), "embed", "1", body) as typeof embed;
    await embed("hello", false);
    await memo("hello", false);
    const count = quick ? 20_000 : 200_000;
    const cachet = await latencies(() => embed("hello", false), count);
    const cacache = await latencies(() => memo("hello", false), quick ? 2_000 : 20_000);
    const raw = await latencies(() => body("hello", false), count);
    await store.close();
    return [
      { figure: "warm hit p50 (steady state)", value: us(cachet.p50), baseline: `cacache memo ${us(cacache.p50)}`, ratio: cacache.p50 / cachet.p50, target: { ratio: 100, atMost: 5, measured: cachet.p50 } },
      { figure: "warm hit p99 (steady state)", value: us(cachet.p99), baseline: `cacache memo ${us(cacache.p99)}`, ratio: cacache.p99 / cachet.p99, target: { atMost: 15, measured: cachet.p99 } },
      { figure: "hit vs calling the function uncached", value: us(cachet.p50), baseline: `uncached no-op async fn ${us(raw.p50)}`, ratio: raw.p50 / cachet.p50 },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The first cached call in a process that just started, including import and opening the cache. */
function firstHit(quick: boolean): TaskBenchRow[] {
  const dir = mkdtempSync(join(tmpdir(), "cachet-bench-first-"));
  try {
    const run = (mode: string) => {
      const result = spawnSync(process.execPath, [join(WORKERS, "task-first-hit.mjs"), join(dir, mode), mode], { encoding: "utf8" });
      if (result.status !== 0) throw new Error(`first-hit worker (${mode}) failed: ${result.stderr}`);
      return JSON.parse(result.stdout) as { importMs: number; firstHitMs: number; totalMs: number };
    };
    // Seed both caches (the first run of each is a miss for cachet; cacache needs an explicit put).
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
      { figure: "first hit in a fresh process (open cache + call)", value: ms(hit), baseline: `cacache memo ${ms(baseHit)}`, ratio: baseHit / hit, target: { atMost: 50, measured: hit } },
      { figure: "… including importing cachet", value: ms(total), baseline: `cacache memo ${ms(baseTotal)}`, ratio: baseTotal / total },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
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

async function multiProcess(quick: boolean): Promise<TaskBenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), "cachet-bench-fleet-"));
  try {
    const calls = quick ? 2_000 : 10_000;
    const keys = 1_000;
    const single = fleet("cachet", join(dir, "one"), 1, calls, keys);
    const oneMs = await single;
    const eightMs = await fleet("cachet", join(dir, "eight"), 8, calls, keys);
    const cacacheMs = await fleet("cacache", join(dir, "cacache"), 8, calls, keys);
    const rate = (processes: number, wall: number) => (processes * calls) / (wall / 1000);
    const one = rate(1, oneMs);
    const eight = rate(8, eightMs);
    const base = rate(8, cacacheMs);
    const fmt = (r: number) => `${Math.round(r).toLocaleString("en")} calls/s`;
    return [
      { figure: `8 processes × ${calls} calls over ${keys} keys`, value: fmt(eight), baseline: `1 process ${fmt(one)}`, ratio: eight / one, target: { ratio: 1 } },
      { figure: `8 processes × ${calls} calls, vs cacache memo`, value: fmt(eight), baseline: `8 × cacache ${fmt(base)}`, ratio: eight / base },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs every task benchmark and returns its rows (with pass/miss against the issue's targets). */
export async function runTaskBench(options: { quick?: boolean } = {}): Promise<TaskBenchRow[]> {
  const quick = options.quick ?? false;
  const rows = [...(await steadyState(quick)), ...firstHit(quick), ...(await multiProcess(quick))];
  for (const row of rows) {
    if (!row.target) continue;
    const okRatio = row.target.ratio === undefined || row.ratio >= row.target.ratio;
    const okAbs = row.target.atMost === undefined || (row.target.measured ?? Infinity) <= row.target.atMost;
    row.pass = okRatio && okAbs;
  }
  return rows;
}

/** Prints rows as an aligned table. */
export function printTaskRows(rows: TaskBenchRow[]): void {
  for (const row of rows) {
    const target = row.target
      ? ` target ${[row.target.ratio !== undefined ? `≥ ${row.target.ratio}×` : "", row.target.atMost !== undefined ? `≤ ${row.target.atMost}` : ""].filter(Boolean).join(", ")}: ${row.pass ? "PASS" : "MISS"}`
      : "";
    console.log(`${row.figure.padEnd(52)} ${row.value.padStart(20)}  vs ${row.baseline.padEnd(34)} ${row.ratio.toFixed(2).padStart(8)}×${target}`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  printTaskRows(await runTaskBench({ quick: process.argv.includes("--quick") || process.env.BENCH_QUICK === "1" }));
}
