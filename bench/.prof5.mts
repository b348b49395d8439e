import { openStore } from "../src/store/index.js";
import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
const dir = mkdtempSync("/tmp/profput-");
const store = await openStore({ cacheDir: dir });
const index = (store as any).index;
const N = 20000;
const vals = Array.from({ length: N }, () => randomBytes(1024));
for (let r = 0; r < 3; r++) {
  let t = performance.now();
  for (let i = 0; i < N; i++) await store.put("bench", `p${r}-${i}`, vals[i]!);
  const a = (performance.now() - t) * 1000 / N;
  t = performance.now();
  for (let i = 0; i < N; i++) index.upsert({ name: "bench", key: `u${r}-${i}`, storage: "inline", digest: "x".repeat(64), inline: vals[i], size: 1024, origin: "computed", costMs: 0, format: null, components: null }, Date.now());
  const b = (performance.now() - t) * 1000 / N;
  t = performance.now();
  for (let i = 0; i < N; i++) await store.get("bench", `p${r}-${i}`);
  const c = (performance.now() - t) * 1000 / N;
  t = performance.now();
  for (let i = 0; i < N; i++) index.lookup("bench", `p${r}-${i}`);
  const d = (performance.now() - t) * 1000 / N;
  console.log(`store.put ${a.toFixed(1)} µs  index.upsert ${b.toFixed(1)} µs  store.get ${c.toFixed(2)} µs  index.lookup ${d.toFixed(2)} µs`);
}
await store.close();
