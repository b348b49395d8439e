/**
 * `npm run demo`: runs the example pipeline twice, each time in a fresh process, on the embedded local cache
 * (no server, no network), and prints per step whether it hit or ran and how long it took, then the time saved.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore } from "../src/index.js";

const STEPS = ["demo.generate-corpus", "demo.tokenize", "demo.embed", "demo.cluster", "demo.report"];
const pipeline = new URL("./pipeline.ts", import.meta.url).pathname;
const outDir = mkdtempSync(join(tmpdir(), "cachet-demo-"));

// Start from a cold cache for the demo's own tasks only (other entries in the cache are left alone).
const store = await openStore();
console.log(`cachet demo: embedded local cache at ${store.root}`);
for (const name of STEPS) {
  const keys: string[] = [];
  for await (const entry of store.list(name)) keys.push(entry.key);
  for (const key of keys) await store.delete(name, key);
}
await store.close();

interface Step {
  task: string;
  kind: string;
  ms: number;
}

function runPipeline(label: string): Step[] {
  const started = Date.now();
  const result = spawnSync(process.execPath, ["--import", "tsx", pipeline, outDir], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  if (result.status !== 0) {
    console.error(`the pipeline failed (${label})`);
    process.exit(result.status ?? 1);
  }
  const lines = result.stdout.trim().split("\n").map((line) => JSON.parse(line) as Step & { report?: string });
  const steps = lines.filter((line) => line.task !== undefined);
  console.log(`\n${label} (new process, ${Date.now() - started} ms wall including startup)`);
  for (const step of steps) {
    const verdict = step.kind === "hit" ? "hit, from cache" : step.kind === "miss" ? "miss, ran" : step.kind;
    console.log(`  ${step.task.replace("demo.", "").padEnd(16)} ${verdict.padEnd(16)} ${step.ms.toFixed(1).padStart(9)} ms`);
  }
  return steps;
}

const first = runPipeline("Run 1: cold cache");
const second = runPipeline("Run 2: same inputs, same code");
const total = (steps: Step[]) => steps.reduce((sum, step) => sum + step.ms, 0);
const saved = total(first) - total(second);
console.log(
  `\nTime saved: ${(saved / 1000).toFixed(2)} s of ${(total(first) / 1000).toFixed(2)} s in the steps ` +
    `(${((saved / total(first)) * 100).toFixed(1)}%); ${second.filter((s) => s.kind === "hit").length}/${second.length} steps were hits.`,
);
console.log(
  "Try (in this repository): npm run cachet -- cache ls demo.embed   ·   npm run cachet -- cache explain demo.embed   ·   " +
    "npm run cachet -- cache size -H   (in a project that installed cachet: npx cachet …)",
);
rmSync(outDir, { recursive: true, force: true });
