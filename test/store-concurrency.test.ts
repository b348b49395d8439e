// Concurrency with real processes: 8 processes put and get the same and different keys of one cache at once.
// No process may fail, every read must be one of the values written for that key, and reads of a key only one
// process writes must never go back in time.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { openStore } from "../src/store/index.js";
import { tempDir } from "./helpers.js";
import { startNode, workerPath } from "./workers/child.js";
import { decodeValue, encodeValue } from "./workers/self-describing.mjs";

const WORKERS = 8;
const OPS = 3000;
const NAME = "conc";

interface WorkerResult {
  id: number;
  writes: Array<[key: string, seq: number]>;
  reads: Array<[key: string, writer: number, seq: number]>;
  problems: string[];
}

const scratch = tempDir("cachet-concurrency-");
after(() => scratch.cleanup());

test(`${WORKERS} processes putting and getting shared and own keys (${OPS} ops each) only ever read written values`, async (t) => {
  const root = join(scratch.path, "cache");
  const keys = [
    ...Array.from({ length: 16 }, (_, i) => `s${i}`),
    ...Array.from({ length: WORKERS }, (_, w) => Array.from({ length: 8 }, (_, i) => `w${w}-${i}`)).flat(),
  ];
  // Seed every key first (writer -1), so a read may never miss.
  const seed = await openStore({ cacheDir: root });
  for (const key of keys) await seed.put(NAME, key, encodeValue({ name: NAME, key, writer: -1, seq: 0 }, Buffer.from("seed")));
  await seed.close();

  const workers = Array.from({ length: WORKERS }, (_, id) =>
    startNode([workerPath("concurrency-worker.mjs"), root, join(scratch.path, `result-${id}.json`), String(id), String(WORKERS), String(OPS)]),
  );
  try {
    await Promise.all(workers.map((worker) => worker.waitFor("ready")));
    for (const worker of workers) worker.send("go");
    // Each worker's 3000 operations take a few seconds; a minute is room for a loaded machine, not for a hang.
    const exits = await Promise.all(workers.map((worker) => worker.waitForExit({ timeoutMs: 60_000 })));
    exits.forEach((exit, id) => {
      assert.deepEqual(exit, { code: 0, signal: null }, `worker ${id} failed:\n${workers[id]!.stderr()}`);
      assert.equal(workers[id]!.stderr(), "", `worker ${id} wrote to stderr`);
    });
  } finally {
    await Promise.all(workers.map((worker) => worker.kill9()));
  }

  const results = Array.from({ length: WORKERS }, (_, id) =>
    JSON.parse(readFileSync(join(scratch.path, `result-${id}.json`), "utf8")) as WorkerResult,
  );
  assert.deepEqual(results.flatMap((result) => result.problems), []);

  // Every read is a value some process wrote to that key (or the seed).
  const written = new Map<string, Set<string>>(keys.map((key) => [key, new Set(["-1:0"])]));
  const lastWrite = new Map<string, number>(); // `${key} ${writer}` -> last seq
  for (const result of results) {
    for (const [key, seq] of result.writes) {
      written.get(key)!.add(`${result.id}:${seq}`);
      lastWrite.set(`${key} ${result.id}`, seq);
    }
  }
  let reads = 0;
  for (const result of results) {
    const seen = new Map<string, number>();
    for (const [key, writer, seq] of result.reads) {
      reads++;
      assert.ok(written.get(key)?.has(`${writer}:${seq}`), `worker ${result.id} read ${key} = writer ${writer} #${seq}, which nobody wrote`);
      // Keys w<n>-* have one writer whose sequence numbers grow: a later read never sees an older value.
      if (key.startsWith("w")) {
        assert.ok(seq >= (seen.get(key) ?? 0), `worker ${result.id} read ${key} #${seq} after #${seen.get(key)}`);
        seen.set(key, seq);
      }
    }
  }
  const writes = results.reduce((sum, result) => sum + result.writes.length, 0);
  t.diagnostic(`${writes} writes and ${reads} reads checked`);
  assert.equal(writes + reads, WORKERS * OPS, "some operations were not recorded");

  // The final value of every key is the last write of one of its writers.
  const store = await openStore({ cacheDir: root });
  try {
    for (const key of keys) {
      const data = await store.get(NAME, key);
      assert.ok(data, `${key} is gone`);
      const decoded = decodeValue(data);
      assert.ok(decoded.ok, `${key}: ${decoded.ok ? "" : decoded.reason}`);
      const { writer, seq } = decoded.meta;
      if (writer === -1) {
        assert.equal([...written.get(key)!].length, 1, `${key} still holds the seed though it was written`);
      } else {
        assert.equal(seq, lastWrite.get(`${key} ${writer}`), `${key} ends with writer ${writer} #${seq}, not that writer's last write`);
      }
    }
  } finally {
    await store.close();
  }
});
