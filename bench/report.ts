// Figures a benchmark suite reports, and the table `bench/run.ts` prints. Every judged figure is a ratio
// against a baseline measured in the same run, because the machines are noisy.

/** One line of the results table. */
export interface Figure {
  suite: string;
  /** What was measured, e.g. "put 1 KiB, sequential". */
  label: string;
  /** The measurements behind the ratio, e.g. "cachet 35 100 op/s · cacache 980 op/s". */
  detail: string;
  /** The judged number (usually a ratio), formatted, e.g. "35.8×". */
  value: string;
  /** The target in words, e.g. "≥ 30×"; empty for context-only figures. */
  target: string;
  /** true/false when judged against a target; undefined for context-only figures. */
  pass: boolean | undefined;
}

/** A judged figure: `value` against `atLeast` (or `atMost`). */
export function judged(
  suite: string,
  label: string,
  detail: string,
  value: number,
  unit: string,
  goal: { atLeast?: number; atMost?: number },
  digits = 1,
): Figure {
  const pass = goal.atLeast !== undefined ? value >= goal.atLeast : value <= goal.atMost!;
  const target = goal.atLeast !== undefined ? `≥ ${goal.atLeast}${unit}` : `≤ ${goal.atMost}${unit}`;
  return { suite, label, detail, value: `${value.toFixed(digits)}${unit}`, target, pass };
}

/** A figure reported for context, without a target. */
export function info(suite: string, label: string, detail: string, value = ""): Figure {
  return { suite, label, detail, value, target: "", pass: undefined };
}

/** Prints figures as an aligned text table. */
export function formatTable(figures: readonly Figure[]): string {
  const header = ["suite", "figure", "value", "target", "result", "measured"];
  const rows = figures.map((f) => [f.suite, f.label, f.value, f.target, f.pass === undefined ? "" : f.pass ? "PASS" : "MISS", f.detail]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ").trimEnd();
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

// Number formatting shared by the suites.
export const fmt = {
  rate: (opsPerSecond: number) => `${Math.round(opsPerSecond).toLocaleString("en-US")} op/s`,
  us: (ms: number) => `${(ms * 1000).toFixed(1)} µs`,
  ms: (ms: number) => `${ms.toFixed(ms < 10 ? 1 : 0)} ms`,
  mbps: (bytes: number, ms: number) => `${Math.round(bytes / 1048576 / (ms / 1000))} MB/s`,
};
