// One fresh process: import cachet, open the cache, make one cached call. Prints JSON timings (ms).
// argv: cacheDir, mode ("cachet" | "cacache")
const t0 = performance.now();
const [cacheDir, mode] = process.argv.slice(2);
if (mode === "cachet") {
  const { openStore, task, Cache } = await import("../../dist/index.js");
  const imported = performance.now();
  const store = await openStore({ cacheDir });
  const embed = task({ name: "embed", cache: new Cache({ version: "1" }), store }, async (text, verbose) => ({ text, verbose, n: text.length }));
  const hit = await embed("hello", false);
  const done = performance.now();
  if (hit.n !== 5) throw new Error("wrong result");
  console.log(JSON.stringify({ importMs: imported - t0, firstHitMs: done - imported, totalMs: done - t0 }));
  await store.close();
} else {
  const cacache = (await import("cacache")).default;
  const { memoKey, decode } = await import("./memo-over-cacache.mjs");
  const imported = performance.now();
  const key = memoKey("embed", "1", { text: "hello", verbose: false });
  const value = decode((await cacache.get(cacheDir, key)).data);
  const done = performance.now();
  if (value.n !== 5) throw new Error("wrong result");
  console.log(JSON.stringify({ importMs: imported - t0, firstHitMs: done - imported, totalMs: done - t0 }));
}
