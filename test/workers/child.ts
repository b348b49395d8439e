// Helpers the reliability tests use to drive real child processes: start one, watch its output for a line,
// wait for its exit. Not a test file and not a child script itself.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { tmpdir } from "node:os";

/** Path of a child-process script in this folder. */
export function workerPath(file: string): string {
  return new URL(`./${file}`, import.meta.url).pathname;
}

/** The built CLI (`npm run build`, which `npm test` runs first). */
export const CLI_PATH = new URL("../../dist/cli/main.js", import.meta.url).pathname;

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
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
  /** Resolves when `pattern` has appeared in the stream; rejects if the child exits first. */
  waitFor(pattern: string | RegExp, stream?: "stdout" | "stderr"): Promise<void>;
  /** Resolves on exit (never rejects). */
  readonly exit: Promise<ChildExit>;
  /** Writes a line to the child's stdin. */
  send(line: string): void;
  /** Closes the child's stdin. */
  endInput(): void;
  /** SIGKILLs the child (if still running) and resolves once it is reaped. */
  kill9(): Promise<ChildExit>;
}

/**
 * Starts `node <args>` with a cachet-free environment (every `CACHET_*` variable removed) plus `env`.
 * Output is collected in memory; the caller owns the process and must end it.
 */
export function startNode(args: string[], env: NodeJS.ProcessEnv = {}, options: { cwd?: string } = {}): Child {
  const base: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(base)) if (name.startsWith("CACHET_")) delete base[name];
  // Never let a child inherit NODE_OPTIONS from the test runner (e.g. `--import tsx`), which slows its start.
  delete base.NODE_OPTIONS;
  delete base.NODE_TEST_CONTEXT;
  const child = spawn(process.execPath, args, {
    env: { ...base, ...env },
    cwd: options.cwd ?? tmpdir(),
    stdio: ["pipe", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  let exited = false;
  const listeners = new Set<() => void>();
  const notify = (): void => {
    for (const listener of [...listeners]) listener();
  };
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
  const exit = new Promise<ChildExit>((resolve) => {
    child.on("close", (code, signal) => {
      exited = true;
      notify();
      resolve({ code, signal });
    });
  });
  const handle: Child = {
    process: child,
    pid: child.pid!,
    stdout: () => out,
    stderr: () => err,
    exitedYet: () => exited,
    exit,
    waitFor(pattern, stream = "stdout") {
      const matches = (): boolean => {
        const text = stream === "stdout" ? out : err;
        return typeof pattern === "string" ? text.includes(pattern) : pattern.test(text);
      };
      return new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (matches()) {
            listeners.delete(check);
            resolve();
          } else if (exited) {
            listeners.delete(check);
            reject(
              new Error(
                `node ${args.join(" ")} exited (code ${child.exitCode}, signal ${child.signalCode}) before printing ` +
                  `${String(pattern)} on ${stream}\n--- stdout ---\n${out}\n--- stderr ---\n${err}`,
              ),
            );
          }
        };
        listeners.add(check);
        check();
      });
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
  return handle;
}

/** Runs the built CLI to completion. */
export async function runCliToEnd(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<ChildExit & { stdout: string; stderr: string }> {
  const child = startNode([CLI_PATH, ...args], env);
  child.endInput();
  const result = await child.exit;
  return { ...result, stdout: child.stdout(), stderr: child.stderr() };
}
