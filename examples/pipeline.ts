/**
 * An example pipeline of five cached tasks: make a corpus, tokenize it, embed the documents, cluster them and
 * write a report. Every step does real work (a few hundred milliseconds to a few seconds of CPU on a small
 * machine), keyed on its inputs and its own source code, so a second run answers from the cache.
 *
 * Run it alone: `node --import tsx examples/pipeline.ts [outDir]`. It prints one JSON line per step.
 */
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { Cache, dir, file, task, type DirRef, type TaskEvent } from "../src/index.js";

const outDir = resolve(process.argv[2] ?? "demo-output");
const steps: TaskEvent[] = [];
const onEvent = (event: TaskEvent) => steps.push(event);

/** Writes `count` synthetic documents drawn from a seeded generator (deterministic for a given seed). */
export const generateCorpus = task({ name: "demo.generate-corpus", onEvent }, async (seed: number, count: number, target: string) => {
  const words = ["cache", "key", "hash", "store", "task", "blob", "tree", "lock", "index", "entry", "prune", "clean", "version", "policy", "image", "pod"];
  let state = seed >>> 0;
  const next = () => ((state = (Math.imul(state ^ (state >>> 15), 2246822507) + 0x9e3779b9) >>> 0) / 2 ** 32);
  mkdirSync(target, { recursive: true });
  for (let doc = 0; doc < count; doc++) {
    const length = 200 + Math.floor(next() * 400);
    const text = Array.from({ length }, () => words[Math.floor(next() * words.length)]).join(" ");
    // Slow "download": derive each document through a key-stretching loop, like a rate-limited fetch.
    let digest = Buffer.from(text);
    for (let round = 0; round < 2000; round++) digest = createHash("sha256").update(digest).digest();
    writeFileSync(join(target, `doc-${String(doc).padStart(4, "0")}.txt`), `${digest.toString("hex").slice(0, 8)} ${text}\n`);
  }
  return dir(target);
});

/** Counts words per document. */
export const tokenize = task({ name: "demo.tokenize", onEvent }, async (corpus: DirRef) => {
  const counts: Record<string, Map<string, number>> = {};
  for (const name of readdirSync(corpus.path).sort()) {
    const bag = new Map<string, number>();
    for (const word of readFileSync(join(corpus.path, name), "utf8").split(/\s+/).slice(1)) {
      if (word) bag.set(word, (bag.get(word) ?? 0) + 1);
    }
    counts[name] = bag;
  }
  return counts;
});

/** A 64-dimensional embedding per document by random projection of its word counts. */
export const embed = task(
  { name: "demo.embed", cache: new Cache({ ignoredInputs: ["progress"] }), onEvent },
  async (counts: Record<string, Map<string, number>>, dimensions: number, progress?: (done: number) => void) => {
    const vectors: Record<string, Float64Array> = {};
    let done = 0;
    for (const [name, bag] of Object.entries(counts)) {
      const vector = new Float64Array(dimensions);
      for (const [word, count] of bag) {
        for (let d = 0; d < dimensions; d++) {
          let h = 2166136261;
          const key = `${word}/${d}`;
          for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 16777619);
          // Many rounds of mixing stand in for a model's forward pass.
          for (let round = 0; round < 800; round++) h = Math.imul(h ^ (h >>> 13), 0x5bd1e995);
          vector[d] += ((h >>> 0) / 2 ** 32 - 0.5) * count;
        }
      }
      vectors[name] = vector;
      progress?.(++done);
    }
    return vectors;
  },
);

/** k-means over the embeddings. */
export const cluster = task({ name: "demo.cluster", onEvent }, async (vectors: Record<string, Float64Array>, k: number, iterations: number) => {
  const names = Object.keys(vectors).sort();
  const points = names.map((name) => vectors[name]!);
  const dimensions = points[0]!.length;
  let centers = points.slice(0, k).map((p) => Float64Array.from(p));
  const assignment = new Array<number>(points.length).fill(0);
  for (let iteration = 0; iteration < iterations; iteration++) {
    points.forEach((point, index) => {
      let best = 0;
      let bestDistance = Infinity;
      centers.forEach((center, c) => {
        let distance = 0;
        for (let d = 0; d < dimensions; d++) distance += (point[d]! - center[d]!) ** 2;
        if (distance < bestDistance) [best, bestDistance] = [c, distance];
      });
      assignment[index] = best;
    });
    centers = centers.map((_, c) => {
      const members = points.filter((_, index) => assignment[index] === c);
      const mean = new Float64Array(dimensions);
      for (const member of members) for (let d = 0; d < dimensions; d++) mean[d]! += member[d]! / Math.max(1, members.length);
      return mean;
    });
  }
  const clusters = new Map<number, string[]>();
  names.forEach((name, index) => clusters.set(assignment[index]!, [...(clusters.get(assignment[index]!) ?? []), name]));
  return clusters;
});

/** Writes the report as a file result: restored from the cache on a hit. */
export const report = task({ name: "demo.report", onEvent }, async (clusters: Map<number, string[]>, target: string) => {
  const lines = ["# Clusters", ""];
  for (const [id, members] of [...clusters].sort((a, b) => a[0] - b[0])) {
    lines.push(`- cluster ${id}: ${members.length} documents (${members.slice(0, 3).join(", ")}, …)`);
  }
  writeFileSync(target, `${lines.join("\n")}\n`);
  return file(target);
});

const corpus = await generateCorpus(42, 400, join(outDir, "corpus"));
const wordCounts = await tokenize(corpus);
const vectors = await embed(wordCounts, 64);
const clusters = await cluster(vectors, 6, 60);
const written = await report(clusters, join(outDir, "report.md"));
for (const step of steps) process.stdout.write(`${JSON.stringify({ task: step.task, kind: step.kind, ms: step.durationMs })}\n`);
process.stdout.write(`${JSON.stringify({ report: written.path, clusters: clusters.size })}\n`);
