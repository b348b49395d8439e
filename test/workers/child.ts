// Helpers the tests use to drive real child processes: start one, watch its output for a line, wait for its exit.
// Not a test file and not a child script itself.
//
// Every wait here is bounded: `waitFor`, `waitForExit` and `runToEnd` fail after a timeout (default
// WAIT_TIMEOUT_MS) with the child's command, stdout and stderr in the message, so a lock bug fails a test in
// seconds instead of hanging it. Every child is tracked and killed even when a test forgets to: by
// `killAllChildren()` in a root `after` hook registered by importing this module, by `exit` and signal hooks, and
// by a watchdog that SIGKILLs any child still running after its lifetime (default LIFETIME_MS). Tests still kill
// what they start in a `finally` (`kill9()`), so a failed assertion ends its children at once.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { tmpdir } from "node:os";
import { basename } from "node:path";
import { after } from "node:test";

/** Default bound of every wait on a child (a line, an exit, a whole run), in ms. */
export const WAIT_TIMEOUT_MS = 30_000;

/** Default lifetime of a child: the watchdog SIGKILLs one still running after this many ms. */
export const LIFETIME_MS = 180_000;

/** Path of a child-process script in this folder. */
export function workerPath(file: string): string {
  return new URL(`./${file}`, import.meta.url).pathname;
}

/** The built CLI (`npm run build`, which `npm test` runs first). */
export const CLI_PATH = new URL("../../dist/cli/cachet.js", import.meta.url).pathname;

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Bounds of a wait. */
export interface WaitOptions {
  /** Fail the wait after this many ms (default {@link WAIT_TIMEOUT_MS}). */
  timeoutMs?: number;
}

/** A running child with its output so far. */
export interface Child {
  readonly process: ChildProcessWithoutNullStreams;
  readonly pid: number;
  /** Everything written to stdout / stderr so far. */
  stdout(): string;
  stderr(): string;
  /** True once the process has exited. */
  exitedYet(): boolean;
  /**
   * Resolves when `pattern` has appeared in the stream (stdout unless told); rejects if the child exits first or
   * the pattern has not appeared within the timeout (default {@link WAIT_TIMEOUT_MS}), with the child's output.
   */
  waitFor(pattern: string | RegExp, stream?: "stdout" | "stderr" | WaitOptions, options?: WaitOptions): Promise<void>;
  /**
   * Resolves on exit (never rejects). Bounded only by the child's lifetime (the watchdog): a test should wait with
   * {@link Child.waitForExit}, which fails in seconds with the child's output.
   */
  readonly exit: Promise<ChildExit>;
  /** Resolves on exit; rejects if the child is still running after the timeout (default {@link WAIT_TIMEOUT_MS}). */
  waitForExit(options?: WaitOptions): Promise<ChildExit>;
  /** Writes a line to the child's stdin. */
  send(line: string): void;
  /** Closes the child's stdin. */
  endInput(): void;
  /** SIGKILLs the child (if still running) and resolves once it is reaped. */
  kill9(): Promise<ChildExit>;
}

/** Options of {@link startNode} and {@link startProcess}. */
export interface StartOptions {
  cwd?: string;
  /** SIGKILL the child if it is still running after this many ms (default {@link LIFETIME_MS}). */
  lifetimeMs?: number;
}

const running = new Set<Child>();

/** SIGKILLs every child these helpers started that is still running, and waits until each is reaped. */
export async function killAllChildren(): Promise<void> {
  await Promise.all([...running].map((child) => child.kill9()));
}

// The test file's root `after` hook: runs when the file's tests are done, even if one failed or timed out.
after(killAllChildren);
// And if the process ends some other way, its children go with it: at exit, or on a signal — the test runner
// SIGTERMs a test file that overran --test-timeout, and a default SIGTERM death runs no "exit" listener.
const killRunningNow = (): void => {
  for (const child of running) child.process.kill("SIGKILL");
};
process.on("exit", killRunningNow);
for (const signal of ["SIGTERM", "SIGHUP", "SIGINT"] as const) {
  process.once(signal, () => {
    killRunningNow();
    process.kill(process.pid, signal); // then die of the signal as if nobody had listened
  });
}

/** How long to wait, from options or the default. */
function timeoutOf(options: WaitOptions | undefined): number {
  return options?.timeoutMs ?? WAIT_TIMEOUT_MS;
}

/** The end of a child's output, for error messages (a runaway child can print megabytes). */
function tail(text: string, max = 4000): string {
  return text.length <= max ? text : `…(${text.length - max} characters cut)…${text.slice(-max)}`;
}

/**
 * Starts `node <args>` with a cachet-free environment (every `CACHET_*` variable removed) plus `env`.
 * Output is collected in memory; the caller owns the process and must end it (`kill9()` in a `finally`).
 */
export function startNode(args: string[], env: NodeJS.ProcessEnv = {}, options: StartOptions = {}): Child {
  return startProcess(process.execPath, args, env, options);
}

/** Starts any program the way {@link startNode} starts node: tracked, bounded, with a cachet-free environment. */
export function startProcess(command: string, args: string[], env: NodeJS.ProcessEnv = {}, options: StartOptions = {}): Child {
  const base: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(base)) if (name.startsWith("CACHET_")) delete base[name];
  // Never let a child inherit NODE_OPTIONS from the test runner (e.g. `--import tsx`), which slows its start.
  delete base.NODE_OPTIONS;
  delete base.NODE_TEST_CONTEXT;
  const child = spawn(command, args, {
    env: { ...base, ...env },
    cwd: options.cwd ?? tmpdir(),
    stdio: ["pipe", "pipe", "pipe"],
  });
  const label = `${command === process.execPath ? "node" : basename(command)} ${args.join(" ")}`;
  let out = "";
  let err = "";
  let exited = false;
  const listeners = new Set<() => void>();
  const notify = (): void => {
    for (const listener of [...listeners]) listener();
  };
  const describe = (): string => `\n--- stdout of ${label} ---\n${tail(out)}\n--- stderr ---\n${tail(err)}`;
  child.stdout.setEncoding("utf8");
  child.stderr.setEncoding("utf8");
  child.stdout.on("data", (chunk: string) => {
    out += chunk;
    notify();
  });
  child.stderr.on("data", (chunk: string) => {
    err += chunk;
    notify();
  });
  // A child killed before it reads stdin makes our writes fail with EPIPE; that is expected here.
  child.stdin.on("error", () => {});
  const lifetimeMs = options.lifetimeMs ?? LIFETIME_MS;
  const watchdog = setTimeout(() => {
    err += `\n[test harness: SIGKILLed ${label} after its ${lifetimeMs} ms lifetime]\n`;
    child.kill("SIGKILL");
  }, lifetimeMs);
  watchdog.unref();
  let handle: Child;
  const exit = new Promise<ChildExit>((resolve) => {
    const finish = (result: ChildExit): void => {
      if (exited) return;
      exited = true;
      clearTimeout(watchdog);
      running.delete(handle);
      notify();
      resolve(result);
    };
    child.on("close", (code, signal) => finish({ code, signal }));
    // A program that cannot be started (ENOENT, EACCES) never emits "close" for a process that ran.
    child.on("error", (error) => {
      if (child.pid !== undefined) return; // a kill or write failed on a running child: "close" still comes
      err += `\n[test harness: could not start ${label}: ${error.message}]\n`;
      finish({ code: null, signal: null });
    });
  });

  /** Resolves when `done()` is true; rejects once the child has exited first, or after `timeoutMs`. */
  const until = (done: () => boolean, what: string, timeoutMs: number): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        listeners.delete(check);
        reject(new Error(`timed out after ${timeoutMs} ms: ${label} did not ${what}${describe()}`));
      }, timeoutMs);
      const check = (): void => {
        if (done()) {
          listeners.delete(check);
          clearTimeout(timer);
          resolve();
        } else if (exited) {
          listeners.delete(check);
          clearTimeout(timer);
          reject(
            new Error(`${label} exited (code ${child.exitCode}, signal ${child.signalCode}) and did not ${what}${describe()}`),
          );
        }
      };
      listeners.add(check);
      check();
    });

  handle = {
    process: child,
    pid: child.pid!,
    stdout: () => out,
    stderr: () => err,
    exitedYet: () => exited,
    exit,
    waitFor(pattern, streamOrOptions, options) {
      const stream = typeof streamOrOptions === "string" ? streamOrOptions : "stdout";
      const bounds = typeof streamOrOptions === "object" ? streamOrOptions : options;
      const matches = (): boolean => {
        const text = stream === "stdout" ? out : err;
        return typeof pattern === "string" ? text.includes(pattern) : pattern.test(text);
      };
      return until(matches, `print ${String(pattern)} on ${stream}`, timeoutOf(bounds));
    },
    async waitForExit(options) {
      const timeoutMs = timeoutOf(options);
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${label} to exit${describe()}`)), timeoutMs);
      });
      try {
        return await Promise.race([exit, timedOut]);
      } finally {
        clearTimeout(timer);
      }
    },
    send(line) {
      if (!child.stdin.destroyed) child.stdin.write(`${line}\n`);
    },
    endInput() {
      if (!child.stdin.destroyed) child.stdin.end();
    },
    async kill9() {
      if (!exited) child.kill("SIGKILL");
      return exit;
    },
  };
  if (!exited) running.add(handle);
  return handle;
}

/** The result of a child run to its end. */
export interface ChildRun extends ChildExit {
  stdout: string;
  stderr: string;
}

/** Options of {@link runToEnd} and {@link runCliToEnd}. */
export interface RunOptions extends WaitOptions {
  cwd?: string;
  /** Written to the child's stdin before it is closed. */
  input?: string;
}

/**
 * Runs `node <args>` (as {@link startNode}) to its end; stdin is closed at once (after `input`, if given).
 * Rejects, and kills the child, if it has not exited within the timeout (default {@link WAIT_TIMEOUT_MS}).
 */
export async function runToEnd(args: string[], env: NodeJS.ProcessEnv = {}, options: RunOptions = {}): Promise<ChildRun> {
  const child = startNode(args, env, options.cwd === undefined ? {} : { cwd: options.cwd });
  try {
    if (options.input !== undefined) child.process.stdin.write(options.input);
    child.endInput();
    const result = await child.waitForExit(options);
    return { ...result, stdout: child.stdout(), stderr: child.stderr() };
  } finally {
    await child.kill9();
  }
}

/** Runs the built CLI to completion (bounded as {@link runToEnd}). */
export async function runCliToEnd(args: string[], env: NodeJS.ProcessEnv = {}, options: RunOptions = {}): Promise<ChildRun> {
  return runToEnd([CLI_PATH, ...args], env, options);
}
