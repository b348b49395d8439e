// Child process of the store fault tests: keeps using one cache while the test damages it or cleans it.
// Runs on the built store (dist/). Stops when its stdin closes, then prints a summary and exits 0 — or exits 2
// after printing "WRONG …" the moment it reads a value that is not what was written under that key.
//
//   node store-load-worker.mjs <cacheDir> <id> sessions [holdMs]
//                                                         open a store, put a fresh key, read it back, call a cached
//                                                         task twice (a recent input, then a new one) and check its
//                                                         results, keep the store open holdMs more, close; repeat.
//                                                         Prints "ok <key> <openedAtMs> <closedAtMs>" per session.
//   node store-load-worker.mjs <cacheDir> <id> steady     one store for the whole run: put and get own keys at random,
//                                                         every read checked against this worker's latest write;
//                                                         also reads the test's seeded entries `seed-<i>` (i < 2000),
//                                                         which must read back as seedValue(i) or be misses.
//
// Store errors (a store that cannot be opened, a write the damaged disk refused) are counted, not fatal: the
// tests decide which are acceptable. Warnings are counted by code.
import { randomBytes } from "node:crypto";
import { Cache, openStore, task } from "../../dist/index.js";
import { decodeValue, encodeValue } from "./self-describing.mjs";

const [cacheDir, id, mode, holdArg] = process.argv.slice(2);
const holdMs = Number(holdArg ?? 0);
const NAME = "load";
let stopping = false;
process.stdin.on("data", () => {});
process.stdin.on("end", () => (stopping = true));

const warnings = {};
const errors = {};
const onWarning = (warning) => (warnings[warning.code] = (warnings[warning.code] ?? 0) + 1);
const count = (error) => {
  const code = error?.code ?? error?.name ?? "unknown";
  errors[code] = (errors[code] ?? 0) + 1;
  if (!String(code).startsWith("CACHET_")) process.stderr.write(`unexpected ${code}: ${error?.stack ?? error}\n`);
};
let reads = 0;
let writes = 0;

function check(key, seq, data) {
  const decoded = decodeValue(data);
  if (!decoded.ok || decoded.meta.key !== key || decoded.meta.writer !== id || decoded.meta.seq !== seq) {
    process.stdout.write(`WRONG ${key}: expected seq ${seq}, got ${decoded.ok ? JSON.stringify(decoded.meta) : decoded.reason}\n`);
    process.exit(2);
  }
}

/** The value the tests seed under `seed-<i>` (kept in step with store-faults.test.ts). */
export const seedValue = (i) => `seeded value ${i} ${"s".repeat(i % 97)}`;

const value = (key, seq) => encodeValue({ name: NAME, key, writer: id, seq }, randomBytes(Math.random() < 0.1 ? 20_000 : 200));

if (mode === "sessions") {
  let seq = 0;
  while (!stopping) {
    seq++;
    const key = `w${id}-${seq}`;
    let store;
    try {
      store = await openStore({ cacheDir, onWarning, lockTimeout: 60 });
    } catch (error) {
      count(error);
      continue;
    }
    const openedAt = Date.now();
    try {
      await store.put(NAME, key, value(key, seq));
      writes++;
      const data = await store.get(NAME, key);
      reads++;
      if (data === undefined) throw Object.assign(new Error(`${key} missing right after its write`), { code: "MISSING" });
      check(key, seq, data);
      // A task on this store: its result must be what the function returns for that input, hit or miss.
      const square = task({ name: "square", cache: new Cache({ version: "1" }), store, onWarning }, async (n) => ({ n, square: n * n, by: "square" }));
      for (const n of [Math.max(1, seq - 3), seq]) {
        const result = await square(n);
        if (result?.n !== n || result.square !== n * n || result.by !== "square") {
          process.stdout.write(`WRONG square(${n}): ${JSON.stringify(result)}\n`);
          process.exit(2);
        }
      }
      if (holdMs > 0) await new Promise((resolve) => setTimeout(resolve, holdMs));
      await store.close();
      process.stdout.write(`ok ${key} ${openedAt} ${Date.now()}\n`);
    } catch (error) {
      count(error);
      await store.close();
    }
  }
} else {
  const store = await openStore({ cacheDir, onWarning, lockTimeout: 60 });
  const latest = new Map();
  let seq = 0;
  process.stdout.write("ready\n");
  while (!stopping) {
    seq++;
    const key = `w${id}-${seq % 50}`;
    try {
      if (seq % 3 === 0) {
        const i = Math.floor(Math.random() * 2000);
        const data = await store.get("seed", `seed-${i}`);
        reads++;
        if (data !== undefined && Buffer.from(data).toString() !== seedValue(i)) {
          process.stdout.write(`WRONG seed-${i}: ${JSON.stringify(Buffer.from(data).toString().slice(0, 80))}\n`);
          process.exit(2);
        }
      } else if (Math.random() < 0.4) {
        await store.put(NAME, key, value(key, seq));
        latest.set(key, seq);
        writes++;
      } else {
        const data = await store.get(NAME, key);
        reads++;
        // A miss is allowed (the index may have been replaced); a hit must be exactly the latest write.
        if (data !== undefined && latest.has(key)) check(key, latest.get(key), data);
      }
    } catch (error) {
      count(error);
      if (latest.has(key)) latest.delete(key); // a failed write leaves the key's latest value unknown
    }
    if (seq % 200 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  await store.close();
}
process.stdout.write(`summary ${JSON.stringify({ reads, writes, warnings, errors })}\n`);
process.exit(0);
