// One fresh process: open a seeded cache, make the first call of a task, then time each of the next `count`
// hits. Prints JSON: p50 and p99 of those hits (µs). argv: cacheDir, count, [mode: "cachet" | "cacache"]
const [cacheDir, countText, mode = "cachet"] = process.argv.slice(2);
const count = Number(countText);
const body = async (text, verbose) => ({ text, verbose, n: text.length });
let call;
let close = async () => {};
if (mode === "cachet") {
  const { openStore, task, Cache } = await import("../../dist/index.js");
  const store = await openStore({ cacheDir });
  call = task({ name: "embed", cache: new Cache({ version: "1" }), store }, body);
  close = () => store.close();
} else {
  const { memoize } = await import("./memo-over-cacache.mjs");
  call = memoize(cacheDir, "embed", "1", body);
}
const first = await call("hello", false);
if (first.n !== 5) throw new Error("wrong result");
const samples = new Float64Array(count);
for (let i = 0; i < count; i++) {
  const t = process.hrtime.bigint();
  await call("hello", false);
  samples[i] = Number(process.hrtime.bigint() - t) / 1000;
}
const sorted = Float64Array.from(samples).sort();
const at = (p) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
// Where the slow hits are: mean of each fifth of the run.
const fifths = Array.from({ length: 5 }, (_, k) => {
  const part = samples.subarray((k * count) / 5, ((k + 1) * count) / 5);
  return part.reduce((a, b) => a + b, 0) / part.length;
});
console.log(JSON.stringify({ p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1], fifths }));
await close();
