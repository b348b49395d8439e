// A process that makes cached task calls on the process-wide store (the root comes from CACHET_CACHE_DIR) and
// prints one JSON line: what each call returned, how often the function ran, the warnings and events tasks
// reported, process warnings, and anything that escaped (an uncaught exception or unhandled rejection).
// argv[2]: JSON { calls?: number, size?: number, serialize?: boolean, input?: number, fill?: string, hold?: boolean }
//   size: the result is a string of that many bytes (over 16 KiB goes through a blob staged in tmp/).
//   fill: after a first call with input 0 (which opens the cache), fill the file system holding this file path.
//   hold: the function prints "running" and never returns (the process holds the key's lock until killed).
import { writeFileSync } from "node:fs";
import { Cache, configureTasks, task, type StoreWarning } from "../../src/index.js";

interface WorkerConfig {
  calls?: number;
  size?: number;
  serialize?: boolean;
  input?: number;
  fill?: string;
  hold?: boolean;
}

const config = JSON.parse(process.argv[2] ?? "{}") as WorkerConfig;
const escaped: string[] = [];
const processWarnings: string[] = [];
process.on("uncaughtException", (error) => escaped.push(`uncaught: ${(error as Error)?.stack ?? String(error)}`));
process.on("unhandledRejection", (error) => escaped.push(`unhandled rejection: ${(error as Error)?.stack ?? String(error)}`));
process.on("warning", (warning) => processWarnings.push(`${(warning as { code?: string }).code ?? warning.name}: ${warning.message}`));

const warnings: StoreWarning[] = [];
const events: string[] = [];
configureTasks({ onWarning: (warning) => warnings.push(warning), onEvent: (event) => events.push(event.kind) });

let runs = 0;
const produce = task(
  { name: "produce", cache: new Cache({ version: "1", serialize: config.serialize === true }) },
  async (n: number) => {
    runs++;
    if (config.hold) {
      process.stdout.write("running\n");
      await new Promise(() => setInterval(() => {}, 1000));
    }
    return config.size ? `${n}:${"x".repeat(config.size)}` : n * 2;
  },
);

if (config.fill) {
  await produce(0);
  fillFileSystem(config.fill);
}

/** Writes `path` until the file system is full. */
function fillFileSystem(path: string): void {
  const chunk = Buffer.alloc(64 * 1024);
  let written = 0;
  try {
    for (;;) {
      writeFileSync(path, chunk, { flag: written === 0 ? "w" : "a" });
      written++;
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOSPC") throw error;
  }
}

const results: unknown[] = [];
for (let i = 0; i < (config.calls ?? 3); i++) {
  try {
    const value = await produce(config.input ?? 21);
    results.push(typeof value === "string" ? { length: value.length, head: value.slice(0, 8) } : value);
  } catch (error) {
    results.push({ threw: String((error as Error)?.message ?? error) });
  }
}
await new Promise((resolve) => setTimeout(resolve, 50)); // let anything scheduled by the store run (and fail) first
process.stdout.write(`${JSON.stringify({ results, runs, warnings, events, processWarnings, escaped })}\n`);
