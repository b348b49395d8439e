// Suite "parallel-ops": 1 KiB puts, gets and misses from 8 processes on one cache at once. Aggregate ops/s of
// cachet with 8 processes against 1 process (no collapse under contention), and against 8 processes on cacache.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { createInterface } from "node:readline";
import cacache from "cacache";
import { openStore } from "../src/store/index.js";
import { median, scratchDir, type BenchContext } from "./measure.js";
import { fmt, info, judged, type Figure } from "./report.js";

const SUITE = "parallel-ops";
const WORKER = new URL("./workers/ops-worker.ts", import.meta.url).pathname;
const OPS = ["put", "get", "miss"] as const;
type Op = (typeof OPS)[number];
const PROCESSES = 8;

export async function run(context: BenchContext): Promise<Figure[]> {
  const scratch = scratchDir(SUITE);
  const durationMs = context.quick ? 400 : 2000;
  const prefilled = context.quick ? 200 : 2000;
  try {
    const cachetDir = join(scratch.path, "cachet");
    const cacacheDir = join(scratch.path, "cacache");
    context.log(`${SUITE}: prefilling ${prefilled} keys in each cache`);
    const store = await openStore({ cacheDir: cachetDir });
    for (let i = 0; i < prefilled; i++) await store.put("bench", `pre-${i}`, randomBytes(1024));
    await store.close();
    for (let i = 0; i < prefilled; i++) await cacache.put(cacacheDir, `pre-${i}`, randomBytes(1024));

    const measure = async (system: string, dir: string, processes: number): Promise<Record<Op, number>> => {
      context.log(`${SUITE}: ${system} × ${processes} process${processes > 1 ? "es" : ""}`);
      const workers = await Promise.all(Array.from({ length: processes }, (_, id) => startWorker(system, dir, id)));
      try {
        const rates = {} as Record<Op, number>;
        for (const op of OPS) {
          const results = await Promise.all(workers.map((worker) => worker.ask(`${op} ${durationMs} ${prefilled}`)));
          rates[op] = results.reduce((sum, [count, elapsed]) => sum + count / (elapsed / 1000), 0);
        }
        return rates;
      } finally {
        await Promise.all(workers.map((worker) => worker.quit()));
      }
    };
    // 1 and 8 processes alternate, several times, and the medians are compared: load from elsewhere on the
    // machine comes and goes, and should hit both sides alike.
    const rounds = context.quick ? 1 : 3;
    const ones: Array<Record<Op, number>> = [];
    const eights: Array<Record<Op, number>> = [];
    for (let round = 0; round < rounds; round++) {
      ones.push(await measure("cachet", cachetDir, 1));
      eights.push(await measure("cachet", cachetDir, PROCESSES));
    }
    const medianOf = (runs: Array<Record<Op, number>>) =>
      Object.fromEntries(OPS.map((op) => [op, median(runs.map((r) => r[op]))])) as Record<Op, number>;
    const cachet1 = medianOf(ones);
    const cachet8 = medianOf(eights);
    const cacache8 = await measure("cacache", cacacheDir, PROCESSES);
    const figures: Figure[] = [];
    for (const op of OPS) {
      figures.push(
        judged(
          SUITE,
          `${op} 1 KiB, ${PROCESSES} processes vs 1 (aggregate)`,
          `cachet ×${PROCESSES} ${fmt.rate(cachet8[op])} · ×1 ${fmt.rate(cachet1[op])} (medians of ${rounds})`,
          cachet8[op] / cachet1[op],
          "×",
          { atLeast: 1 },
          2,
        ),
      );
    }
    for (const op of OPS) {
      figures.push(
        info(
          SUITE,
          `${op} 1 KiB, ${PROCESSES} processes, vs cacache ×${PROCESSES}`,
          `cachet ${fmt.rate(cachet8[op])} · cacache ${fmt.rate(cacache8[op])}`,
          `${(cachet8[op] / cacache8[op]).toFixed(1)}×`,
        ),
      );
    }
    return figures;
  } finally {
    scratch.cleanup();
  }
}

interface Worker {
  ask(command: string): Promise<[number, number]>;
  quit(): Promise<void>;
}

async function startWorker(system: string, dir: string, id: number): Promise<Worker> {
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, ["--import", "tsx", WORKER, system, dir, String(id)], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  const lines = createInterface({ input: child.stdout });
  const waiting: Array<(line: string) => void> = [];
  lines.on("line", (line) => waiting.shift()?.(line));
  const nextLine = () =>
    new Promise<string>((resolve, reject) => {
      waiting.push(resolve);
      void exited.then((code) => reject(new Error(`ops worker ${system} #${id} exited (${code}):\n${stderr}`)));
    });
  const ready = await nextLine();
  if (ready !== "ready") throw new Error(`ops worker said ${ready}`);
  return {
    async ask(command) {
      child.stdin.write(`${command}\n`);
      const [word, count, elapsed] = (await nextLine()).split(" ");
      if (word !== "result") throw new Error(`ops worker said ${word}`);
      return [Number(count), Number(elapsed)];
    },
    async quit() {
      child.stdin.end("quit\n");
      await exited;
    },
  };
}
