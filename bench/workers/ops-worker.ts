// Child process of the parallel-ops suite: one of N processes doing 1 KiB puts, gets or misses on one shared
// cache, cachet's store or cacache.
//
//   node --import tsx bench/workers/ops-worker.ts <cachet|cacache> <dir> <workerId>
//
// Prints "ready" once set up; then for each stdin line `<put|get|miss> <durationMs> <prefilledKeys>` runs that
// operation in a loop for durationMs and prints `result <ops> <elapsedMs>`; exits on `quit` or end of input.
import { randomBytes } from "node:crypto";
import { createInterface } from "node:readline";
import cacache from "cacache";
import { openStore } from "../../src/store/index.js";

const [system, dir, idArg] = process.argv.slice(2) as [string, string, string];
const NAME = "bench";
const pool = Array.from({ length: 64 }, () => randomBytes(1024));

interface Ops {
  put(key: string, value: Buffer): Promise<unknown>;
  get(key: string): Promise<unknown>;
  miss(key: string): Promise<unknown>;
  close(): Promise<void>;
}

async function setUp(): Promise<Ops> {
  if (system === "cachet") {
    const store = await openStore({ cacheDir: dir });
    return {
      put: (key, value) => store.put(NAME, key, value),
      get: async (key) => {
        if ((await store.get(NAME, key)) === undefined) throw new Error(`cachet lost ${key}`);
      },
      miss: async (key) => {
        if ((await store.get(NAME, key)) !== undefined) throw new Error(`unexpected hit ${key}`);
      },
      close: () => store.close(),
    };
  }
  return {
    put: (key, value) => cacache.put(dir, key, value),
    get: (key) => cacache.get(dir, key),
    miss: async (key) => {
      if ((await cacache.get.info(dir, key)) !== null) throw new Error(`unexpected hit ${key}`);
    },
    close: async () => {},
  };
}

const ops = await setUp();
let seq = 0;
process.stdout.write("ready\n");

async function runPhase(op: string, durationMs: number, prefilled: number): Promise<[number, number]> {
  const start = performance.now();
  let count = 0;
  for (;;) {
    for (let i = 0; i < 16; i++, count++) {
      if (op === "put") {
        const value = Buffer.from(pool[seq % pool.length]!);
        value.writeUInt32LE(seq, 0);
        value.writeUInt32LE(Number(idArg), 4);
        await ops.put(`w${idArg}-${seq++}`, value);
      } else if (op === "get") {
        await ops.get(`pre-${Math.floor(Math.random() * prefilled)}`);
      } else {
        await ops.miss(`miss-${idArg}-${seq++}`);
      }
    }
    const elapsed = performance.now() - start;
    if (elapsed >= durationMs) return [count, elapsed];
  }
}

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const [op, duration, prefilled] = line.split(" ");
  if (op === "quit") break;
  const [count, elapsed] = await runPhase(op!, Number(duration), Number(prefilled));
  process.stdout.write(`result ${count} ${elapsed}\n`);
}
await ops.close();
process.exit(0);
