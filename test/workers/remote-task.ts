// A process that calls one serialized task through the default store, which CACHET_REMOTE makes the tiered one
// (its own local cache from CACHET_CACHE_DIR, the shared tier on PostgreSQL). argv: logFile, sleepMs, mode.
// mode "once": prints "ready", calls the task with N (env, default 12), prints "<event kind> <result>".
// mode "hang": the same, but the function never returns (the test kills the process while it holds the lease).
// mode "plain": like "once", with a task that is not serialized (its upload goes through the background queue,
// which must drain before the process exits).
// mode "rounds": reads "go <n>" lines from stdin and answers "done <n> <event kind> <result>" for each.
// Appends "run <n> <pid>" to logFile whenever the function body runs.
import { appendFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { Cache, task } from "../../src/index.js";

const [logFile, sleepMs, mode] = process.argv.slice(2) as [string, string, string];
let kind = "";
const square = task(
  { name: "remote-square", cache: new Cache({ version: "1", serialize: true }), onEvent: (event) => (kind = event.kind) },
  async (n: number) => {
    appendFileSync(logFile, `run ${n} ${process.pid}\n`);
    if (mode === "hang") await new Promise(() => setInterval(() => {}, 1000));
    await new Promise((resolve) => setTimeout(resolve, Number(sleepMs)));
    return `${n * n} by ${process.pid}`;
  },
);

const plain = task(
  { name: "remote-plain", cache: new Cache({ version: "1" }), onEvent: (event) => (kind = event.kind) },
  async (n: number) => {
    appendFileSync(logFile, `run ${n} ${process.pid}\n`);
    return `${n * n} by ${process.pid}`;
  },
);

if (mode === "rounds") {
  process.stdout.write("ready\n");
  for await (const line of createInterface({ input: process.stdin })) {
    const n = Number(/^go (\d+)$/.exec(line)?.[1]);
    if (!Number.isFinite(n)) continue;
    const result = await square(n);
    process.stdout.write(`done ${n} ${kind} ${result}\n`);
  }
} else {
  process.stdout.write("ready\n");
  const result = await (mode === "plain" ? plain : square)(Number(process.env.N ?? 12));
  process.stdout.write(`${kind} ${result}\n`);
}
