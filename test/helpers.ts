import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runToEnd, startProcess, type RunOptions } from "./workers/child.js";

/** A fresh temporary directory, removed when the test's `after` runs `cleanup`. */
export function tempDir(label = "cachet-test-"): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), label));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

export const CLI = new URL("../dist/cli/cachet.js", import.meta.url).pathname;

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

/** True when util-linux `script` is installed, which {@link runCliInTerminal} needs for a pseudo-terminal. */
export function terminalAvailable(): boolean {
  const probe = spawnSync("script", ["--version"], { encoding: "utf8", timeout: 10_000 });
  return probe.status === 0 && /util-linux/.test(probe.stdout);
}

/** A CLI run in a pseudo-terminal. */
export interface TerminalRun {
  code: number | null;
  /** What the terminal received from stdout and stderr together, with `\r\n` turned back into `\n`. */
  output: string;
}

/**
 * Runs the built `cachet` with stdout and stderr on a pseudo-terminal (util-linux `script`), as a person at a
 * terminal runs it, with a clean cachet environment plus `env` (set `TERM` to choose the terminal). Bounded like
 * {@link runCli}: rejects with the output if it has not exited within `options.timeoutMs` (default 30 s); the
 * process is killed either way.
 */
export async function runCliInTerminal(args: string[], env: NodeJS.ProcessEnv = {}, options: { cwd?: string; timeoutMs?: number } = {}): Promise<TerminalRun> {
  const command = [process.execPath, CLI, ...args].map(shellQuote).join(" ");
  // A terminal of a person, not of a CI service: CI (set by CI runners, and by .ci/run) would turn progress off.
  const child = startProcess("script", ["-qefc", command, "/dev/null"], { SHELL: "/bin/sh", CI: "", ...env }, options.cwd === undefined ? {} : { cwd: options.cwd });
  try {
    child.endInput();
    const { code } = await child.waitForExit(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs });
    return { code, output: child.stdout().replace(/\r\n/g, "\n") };
  } finally {
    await child.kill9();
  }
}

function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * Writes a CommonJS preload (for `node --require <it>`) that makes `require` of the given module names — and,
 * with `nativeAddons`, of any `.node` file — throw `message`, as when a module is missing or not built.
 */
export function writeModuleBlocker(path: string, requests: readonly string[], message: string, options: { nativeAddons?: boolean } = {}): string {
  const test = [
    ...requests.map((request) => `request === ${JSON.stringify(request)}`),
    ...(options.nativeAddons ? ['request.endsWith(".node")'] : []),
  ].join(" || ");
  writeFileSync(
    path,
    `const Module = require("node:module");
const load = Module._load;
Module._load = function (request, ...rest) {
  if (${test}) throw new Error(${JSON.stringify(message)});
  return load.call(this, request, ...rest);
};
`,
  );
  return path;
}

/** Awaits `promise`, which must fail with a cachet error of `code` and a one-line message; returns the error. */
export async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    assert.equal((error as { code?: string }).code, code, (error as Error).message);
    assert.doesNotMatch((error as Error).message, /\n/);
    return error as Error;
  }
  assert.fail(`expected ${code}`);
}
