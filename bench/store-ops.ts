// Suite "store-ops": 1 KiB values, one process, sequential put, get and miss — cachet's store against cacache
// (the npm cache library) in the same run, trials interleaved so both see the same machine.
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import cacache from "cacache";
import { openStore } from "../src/store/index.js";
import { rowCheck } from "../src/store/row-check.js";
import { median, now, scratchDir, type BenchContext } from "./measure.js";
import { fmt, info, judged, type Figure } from "./report.js";

const SUITE = "store-ops";
const NAME = "bench";
const VALUE_SIZE = 1024;

export async function run(context: BenchContext): Promise<Figure[]> {
  const scratch = scratchDir(SUITE);
  const trials = context.quick ? 2 : 3;
  const n = context.quick
    ? { cachet: { put: 2000, get: 5000, miss: 5000 }, cacache: { put: 150, get: 300, miss: 1000 } }
    : { cachet: { put: 20000, get: 50000, miss: 50000 }, cacache: { put: 1000, get: 2000, miss: 8000 } };
  const store = await openStore({ cacheDir: join(scratch.path, "cachet") });
  const cacacheDir = join(scratch.path, "cacache");
  const rates = {
    cachet: { put: [] as number[], get: [] as number[], miss: [] as number[] },
    cacache: { put: [] as number[], get: [] as number[], miss: [] as number[] },
  };
  const cachetKeys: string[] = [];
  const cacacheKeys: string[] = [];
  try {
    // Warm both (module code, index creation) before timing.
    for (let i = 0; i < 200; i++) await store.put(NAME, `warm-${i}`, randomBytes(VALUE_SIZE));
    for (let i = 0; i < 20; i++) await cacache.put(cacacheDir, `warm-${i}`, randomBytes(VALUE_SIZE));

    for (let trial = 0; trial < trials; trial++) {
      context.log(`${SUITE}: trial ${trial + 1}/${trials}`);
      // put
      const cachetBatch = batch(`c${trial}`, n.cachet.put);
      let start = now();
      for (const [key, value] of cachetBatch) await store.put(NAME, key, value);
      rates.cachet.put.push(rate(n.cachet.put, start));
      cachetKeys.push(...cachetBatch.map(([key]) => key));

      const cacacheBatch = batch(`p${trial}`, n.cacache.put);
      start = now();
      for (const [key, value] of cacacheBatch) await cacache.put(cacacheDir, key, value);
      rates.cacache.put.push(rate(n.cacache.put, start));
      cacacheKeys.push(...cacacheBatch.map(([key]) => key));

      // get: random existing keys
      const cachetGets = sample(cachetKeys, n.cachet.get);
      start = now();
      for (const key of cachetGets) if ((await store.get(NAME, key)) === undefined) throw new Error(`cachet lost ${key}`);
      rates.cachet.get.push(rate(n.cachet.get, start));

      const cacacheGets = sample(cacacheKeys, n.cacache.get);
      start = now();
      for (const key of cacacheGets) await cacache.get(cacacheDir, key);
      rates.cacache.get.push(rate(n.cacache.get, start));

      // miss: keys never written
      start = now();
      for (let i = 0; i < n.cachet.miss; i++) if ((await store.get(NAME, `missing-${trial}-${i}`)) !== undefined) throw new Error("hit");
      rates.cachet.miss.push(rate(n.cachet.miss, start));

      start = now();
      for (let i = 0; i < n.cacache.miss; i++) if ((await cacache.get.info(cacacheDir, `missing-${trial}-${i}`)) !== null) throw new Error("hit");
      rates.cacache.miss.push(rate(n.cacache.miss, start));
    }
  } finally {
    await store.close();
    scratch.cleanup();
  }
  const targets = { put: 30, get: 100, miss: 30 };
  const checkShare = await rowCheckShare(context);
  return [...(["put", "get", "miss"] as const).map((op) => {
    const ours = median(rates.cachet[op]);
    const theirs = median(rates.cacache[op]);
    return judged(
      SUITE,
      `${op} 1 KiB, sequential, vs cacache`,
      `cachet ${fmt.rate(ours)} (${fmt.us(1000 / ours)}/op) · cacache ${fmt.rate(theirs)} (${fmt.us(1000 / theirs)}/op)`,
      ours / theirs,
      "×",
      { atLeast: targets[op] },
    );
  }), checkShare];
}

/**
 * What the row checksum costs a read that reaches the index (the memo skips it): the time of `rowCheck` over a
 * 1 KiB row against a get of keys each read once (so none is memoized), measured in this run.
 */
async function rowCheckShare(context: BenchContext): Promise<Figure> {
  const scratch = scratchDir(`${SUITE}-check`);
  const count = context.quick ? 5000 : 30_000;
  const store = await openStore({ cacheDir: join(scratch.path, "cachet") });
  const values = batch("once", count);
  try {
    for (const [key, value] of values) await store.put(NAME, key, value);
    const getTimes: number[] = [];
    const checkTimes: number[] = [];
    for (let trial = 0; trial < 3; trial++) {
      const slice = values.slice((trial * count) / 3, ((trial + 1) * count) / 3);
      let start = now();
      for (const [key] of slice) if ((await store.get(NAME, key)) === undefined) throw new Error(`cachet lost ${key}`);
      getTimes.push((now() - start) / slice.length);
      start = now();
      for (const [key, value] of slice) {
        rowCheck({ name: NAME, key, bucket: "inline", digest: "0".repeat(64), format: null, createdAt: 1, inline: value });
      }
      checkTimes.push((now() - start) / slice.length);
    }
    const get = median(getTimes);
    const check = median(checkTimes);
    return info(
      SUITE,
      "row checksum, share of a get that reaches the index",
      `check ${fmt.us(check)} · get (each key read once, not memoized) ${fmt.us(get)}`,
      `${((check / get) * 100).toFixed(0)} %`,
    );
  } finally {
    await store.close();
    scratch.cleanup();
  }
}

function batch(prefix: string, count: number): Array<[string, Buffer]> {
  return Array.from({ length: count }, (_, i) => [`${prefix}-${i}`, randomBytes(VALUE_SIZE)]);
}

function sample(keys: readonly string[], count: number): string[] {
  return Array.from({ length: count }, () => keys[Math.floor(Math.random() * keys.length)]!);
}

function rate(ops: number, start: number): number {
  return ops / ((now() - start) / 1000);
}
