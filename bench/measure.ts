// Timing helpers for the benchmark suites.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Milliseconds since an arbitrary origin, sub-microsecond resolution. */
export const now = (): number => performance.now();

/** Runs `fn` and returns how long it took in ms. */
export async function timeIt(fn: () => Promise<unknown> | unknown): Promise<number> {
  const start = now();
  await fn();
  return now() - start;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The `p`-th percentile (0–100) by nearest rank. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

/** A scratch directory for one suite (under BENCH_DIR, default the OS temp dir), removed by `cleanup`. */
export function scratchDir(label: string): { path: string; cleanup: () => void } {
  const base = process.env.BENCH_DIR || tmpdir();
  const path = mkdtempSync(join(base, `cachet-bench-${label}-`));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/** Settings every suite receives. */
export interface BenchContext {
  /** Smaller sizes and fewer repetitions, for a smoke run. */
  quick: boolean;
  /** Progress lines (to stderr). */
  log: (line: string) => void;
}
