// One of N processes making `calls` cached calls over `keys` keys. argv: mode, cacheDir, calls, keys, seed
import { openStore, task, Cache } from "../../dist/index.js";
import { memoize } from "./memo-over-cacache.mjs";
const [mode, cacheDir, callsText, keysText, seedText] = process.argv.slice(2);
const calls = Number(callsText), keys = Number(keysText);
let state = Number(seedText) >>> 0;
const next = () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) % keys;
const body = async (text, verbose) => ({ text, verbose, n: text.length });
let store;
let call;
if (mode === "cachet") {
  store = await openStore({ cacheDir });
  call = task({ name: "embed", cache: new Cache({ version: "1" }), store }, body);
} else call = memoize(cacheDir, "embed", "1", body);
process.stdout.write("ready\n");
await new Promise((resolve) => process.stdin.once("data", resolve));
const t0 = performance.now();
for (let i = 0; i < calls; i++) await call(`text-${next()}`, false);
const ms = performance.now() - t0;
process.stdout.write(`${JSON.stringify({ ms })}\n`);
await store?.close();
process.exit(0);
