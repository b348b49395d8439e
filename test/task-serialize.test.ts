import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "./helpers.js";
import { startNode, workerPath, type Child } from "./workers/child.js";

const WORKER = workerPath("serialized-task.ts");
const REPO = new URL("..", import.meta.url).pathname;

/** A process calling the serialized task (through tsx, resolved from the repository). */
function start(cacheDir: string, log: string, sleepMs: number, mode?: string): Child {
  return startNode(["--import", "tsx", WORKER, cacheDir, log, String(sleepMs), ...(mode ? [mode] : [])], {}, { cwd: REPO });
}

/** The worker's last line (its event kind and result) once it has exited 0. */
async function lastLine(worker: Child): Promise<string> {
  const exit = await worker.waitForExit();
  assert.deepEqual(exit, { code: 0, signal: null }, `worker ${worker.pid} failed:\n${worker.stderr()}`);
  return worker.stdout().trim().split("\n").pop()!;
}

function runs(log: string): string[] {
  try {
    return readFileSync(log, "utf8").trim().split("\n").filter(Boolean);
  } catch {
    return [];
  }
}

describe("serialize: true across processes", () => {
  const dir = tempDir();
  after(dir.cleanup);

  test("8 processes calling one key at once: exactly one execution, all get its result", async () => {
    const cache = join(dir.path, "eight");
    const log = join(dir.path, "eight.log");
    writeFileSync(log, "");
    const workers = Array.from({ length: 8 }, () => start(cache, log, 1500));
    try {
      const kinds = await Promise.all(workers.map(lastLine));
      assert.equal(runs(log).length, 1, `runs: ${runs(log).join(", ")}`);
      for (const line of kinds) assert.match(line, /^(miss|waited|hit) 144$/);
      assert.equal(kinds.filter((line) => line.startsWith("miss")).length, 1);
    } finally {
      await Promise.all(workers.map((worker) => worker.kill9()));
    }
  });

  test("when the running process is killed, a waiter takes over at once", async () => {
    const cache = join(dir.path, "killed");
    const log = join(dir.path, "killed.log");
    writeFileSync(log, "");
    const runner = start(cache, log, 0, "hang");
    let waiter: Child | undefined;
    try {
      // Wait until the runner's function body is running (it holds the key lock): at most 15 s.
      for (let i = 0; i < 600 && runs(log).length === 0 && !runner.exitedYet(); i++) await new Promise((resolve) => setTimeout(resolve, 25));
      assert.equal(runs(log).length, 1, `the runner never started its function:\n${runner.stderr()}`);
      waiter = start(cache, log, 0);
      await waiter.waitFor("ready");
      await new Promise((resolve) => setTimeout(resolve, 300)); // the waiter is now blocked on the key lock
      assert.equal(runs(log).length, 1, "the waiter must not run while the runner holds the key");
      assert.equal((await runner.kill9()).signal, "SIGKILL");
      assert.equal(await lastLine(waiter), "miss 144");
      assert.equal(runs(log).length, 2, "the waiter ran the function itself");
    } finally {
      await Promise.all([runner.kill9(), waiter?.kill9()]);
    }
  });
});
