import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import assert from "node:assert/strict";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A fresh temporary directory, removed when the test's `after` runs `cleanup`. */
export function tempDir(label = "cachet-test-"): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), label));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

export const CLI = new URL("../dist/cli/main.js", import.meta.url).pathname;

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built `cachet` binary with a clean cachet environment (plus `env`). */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, options: { cwd?: string } = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const base: NodeJS.ProcessEnv = { ...process.env };
    for (const name of Object.keys(base)) if (name.startsWith("CACHET_")) delete base[name];
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...base, ...env },
      cwd: options.cwd ?? tmpdir(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** After a whole `cache clean`: the root holds only its two lock files (kept so waiting processes find them). */
export function assertCleaned(root: string): void {
  assert.deepEqual(readdirSync(root).sort(), [".lock", ".lock-queue"]);
}
