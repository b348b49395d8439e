// The benchmarks: `npm run bench` (after a build) or `node --import tsx bench/run.ts [--quick] [suite…]`.
// Suites: store-ops, parallel-ops, blob-stream, link-out, index-scale, task-calls, http-cache, git-source,
// archive-unpack, cache-keys, run-restore, remote-tier (skipped without PostgreSQL). `--quick` or BENCH_QUICK=1 runs a
// small smoke version of each. Every judged figure is a ratio against a baseline measured in the same run.
// Scratch data goes under BENCH_DIR (default: the OS temp directory); keep it on a local disk.
import { formatTable, type Figure } from "./report.js";
import type { BenchContext } from "./measure.js";

const SUITES: Record<string, () => Promise<{ run: (context: BenchContext) => Promise<Figure[]> }>> = {
  "store-ops": () => import("./store-ops.js"),
  "parallel-ops": () => import("./parallel-ops.js"),
  "blob-stream": () => import("./blob-stream.js"),
  "link-out": () => import("./link-out.js"),
  "index-scale": () => import("./index-scale.js"),
  "task-calls": () => import("./task-calls.js"),
  "http-cache": () => import("./http-cache.js"),
  "git-source": () => import("./git-source.js"),
  "archive-unpack": () => import("./archive-unpack.js"),
  "cache-keys": () => import("./cache-keys.js"),
  "run-restore": () => import("./run-restore.js"),
  "remote-tier": () => import("./remote-tier.js"),
};

const args = process.argv.slice(2);
const quick = args.includes("--quick") || ["1", "true", "yes"].includes((process.env.BENCH_QUICK ?? "").toLowerCase());
const unknown = args.filter((arg) => arg.startsWith("-") && arg !== "--quick");
const wanted = args.filter((arg) => !arg.startsWith("-"));
const bad = wanted.filter((name) => !(name in SUITES));
if (unknown.length > 0 || bad.length > 0) {
  process.stderr.write(
    `bench: unknown ${unknown.length ? `flag ${unknown.join(" ")}` : `suite ${bad.join(" ")}`}; ` +
      `usage: bench/run.ts [--quick] [${Object.keys(SUITES).join("|")}]…\n`,
  );
  process.exit(2);
}

const context: BenchContext = { quick, log: (line) => process.stderr.write(`  … ${line}\n`) };
const figures: Figure[] = [];
const started = Date.now();
for (const name of wanted.length ? wanted : Object.keys(SUITES)) {
  process.stderr.write(`${name}${quick ? " (quick)" : ""}\n`);
  const suite = await SUITES[name]!();
  const results = await suite.run(context);
  figures.push(...results);
  process.stdout.write(`${formatTable(results)}\n\n`);
}
const judgedFigures = figures.filter((figure) => figure.pass !== undefined);
const missed = judgedFigures.filter((figure) => figure.pass === false);
process.stdout.write(
  `${quick ? "QUICK RUN (small sizes, figures indicative only) — " : ""}all suites, ${((Date.now() - started) / 1000).toFixed(0)} s:\n` +
    `${formatTable(figures)}\n\n${judgedFigures.length - missed.length}/${judgedFigures.length} targets met` +
    `${missed.length ? `; missed: ${missed.map((figure) => `${figure.suite} ${figure.label}`).join("; ")}` : ""}\n`,
);
