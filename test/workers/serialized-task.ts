// A process that calls one serialized task. argv: cacheDir, logFile, sleepMs, [hang]
// Appends "run <pid>" to logFile when the function body runs, prints the event kind and result.
import { appendFileSync } from "node:fs";
import { Cache, openStore, task } from "../../src/index.js";

const [cacheDir, logFile, sleepMs, mode] = process.argv.slice(2) as [string, string, string, string | undefined];
const store = await openStore({ cacheDir });
let kind = "";
const slow = task(
  { name: "slow-square", cache: new Cache({ version: "1", serialize: true }), store, onEvent: (event) => (kind = event.kind) },
  async (n: number) => {
    appendFileSync(logFile, `run ${process.pid}\n`);
    if (mode === "hang") await new Promise(() => setInterval(() => {}, 1000)); // killed by the test while "running"
    await new Promise((resolve) => setTimeout(resolve, Number(sleepMs)));
    return n * n;
  },
);
process.stdout.write(`ready\n`);
const result = await slow(12);
process.stdout.write(`${kind} ${result}\n`);
await store.close();
