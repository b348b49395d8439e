import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "./helpers.js";

const WORKER = new URL("./workers/serialized-task.ts", import.meta.url).pathname;

function start(cacheDir: string, log: string, sleepMs: number, mode?: string): { child: ChildProcess; output: Promise<string>; ready: Promise<void> } {
  const child = spawn(process.execPath, ["--import", "tsx", WORKER, cacheDir, log, String(sleepMs), ...(mode ? [mode] : [])], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  let markReady: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  child.stdout!.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
    if (stdout.includes("ready")) markReady();
  });
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const output = new Promise<string>((resolve, reject) =>
    child.on("close", (code, signal) => (code === 0 || signal ? resolve(stdout) : reject(new Error(`worker exited ${code}: ${stderr}`)))),
  );
  return { child, output, ready };
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
    const outputs = await Promise.all(workers.map((w) => w.output));
    assert.equal(runs(log).length, 1, `runs: ${runs(log).join(", ")}`);
    const kinds = outputs.map((out) => out.trim().split("\n").pop()!);
    for (const line of kinds) assert.match(line, /^(miss|waited|hit) 144$/);
    assert.equal(kinds.filter((line) => line.startsWith("miss")).length, 1);
  });

  test("when the running process is killed, a waiter takes over at once", async () => {
    const cache = join(dir.path, "killed");
    const log = join(dir.path, "killed.log");
    writeFileSync(log, "");
    const runner = start(cache, log, 0, "hang");
    // Wait until the runner's function body is running (it holds the key lock).
    for (let i = 0; i < 600 && runs(log).length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 25));
    assert.equal(runs(log).length, 1);
    const waiter = start(cache, log, 0);
    await waiter.ready;
    await new Promise((resolve) => setTimeout(resolve, 300)); // the waiter is now blocked on the key lock
    assert.equal(runs(log).length, 1, "the waiter must not run while the runner holds the key");
    runner.child.kill("SIGKILL");
    const out = await waiter.output;
    assert.equal(out.trim().split("\n").pop(), "miss 144");
    assert.equal(runs(log).length, 2, "the waiter ran the function itself");
  });
});
