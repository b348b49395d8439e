import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runToEnd, type RunOptions } from "./workers/child.js";

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

/**
 * Runs the built `cachet` binary with a clean cachet environment (plus `env`). Bounded: rejects, with the CLI's
 * output, if it has not exited within `options.timeoutMs` (default 30 s); the process is killed either way.
 */
export async function runCli(args: string[], env: NodeJS.ProcessEnv = {}, options: RunOptions = {}): Promise<CliRun> {
  const { code, stdout, stderr } = await runToEnd([CLI, ...args], env, options);
  return { code, stdout, stderr };
}

/** After a whole `cache clean`: the root holds only its two lock files (kept so waiting processes find them). */
export function assertCleaned(root: string): void {
  assert.deepEqual(readdirSync(root).sort(), [".lock", ".lock-queue"]);
}
