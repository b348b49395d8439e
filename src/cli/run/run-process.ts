import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import type { Readable } from "node:stream";
import type { Output } from "../output.js";
import { RunLog, type LogStream } from "./run-log.js";

/** Logs larger than this are not kept (the run then is not cached): replaying them would be slower than running. */
const LOG_LIMIT = 256 * 1024 * 1024;

/** Signals passed on to the command while it runs; the command's own way of dying decides ours. */
const FORWARDED = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"] as const;

/** How a command ended, and what it wrote. */
export interface CommandOutcome {
  /** The exit code, or undefined when the command died of a signal. */
  code: number | undefined;
  signal: NodeJS.Signals | undefined;
  /** A signal this process received and passed on during the run (Ctrl-C): nothing is stored then. */
  interrupted: NodeJS.Signals | undefined;
  /** Its output in order (see {@link RunLog.dropped}); undefined when recording was not asked for. */
  log: RunLog | undefined;
  /** The command could not be started (not found, not executable): the message. */
  startError: string | undefined;
  /** Whether it ran on a pseudo-terminal. */
  terminal: boolean;
}

/**
 * Runs `command` (no shell) in `env` (the environment its key read) with the caller's stdin, teeing its stdout and stderr to `output` and, with `record`,
 * into a log in the order the chunks arrive. When stdin and both of `output`'s streams are terminals (a person at
 * a terminal) and util-linux `script` is installed, the command runs on a pseudo-terminal made by `script`, so it sees a terminal (colours,
 * `isTTY`) as it would without cachet; a terminal has one output stream, so its output is recorded as stdout.
 * Signals this process receives are passed on to the command while it runs.
 */
export async function runCommand(command: readonly string[], output: Output, record: boolean, env: NodeJS.ProcessEnv): Promise<CommandOutcome> {
  const terminal = process.stdin.isTTY === true && output.stdout.isTTY === true && output.stderr.isTTY === true && scriptProgram() !== undefined;
  const log = record ? new RunLog(LOG_LIMIT) : undefined;
  const child = terminal ? spawnOnTerminal(command, env) : spawn(command[0]!, command.slice(1), { stdio: ["inherit", "pipe", "pipe"], env });

  let interrupted: NodeJS.Signals | undefined;
  const restoreSignals = forwardSignals((signal) => {
    interrupted ??= signal;
    signalCommand(child, terminal, signal);
  });
  try {
    tee(child, output, log);
    const ended = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
      child.once("error", (error) => {
        if (child.pid === undefined) resolve({ code: null, signal: null, error });
      });
      child.once("close", (code, signal) => resolve({ code, signal }));
    });
    return {
      code: ended.code ?? undefined,
      signal: ended.signal ?? undefined,
      interrupted,
      log,
      startError: ended.error === undefined ? undefined : `cannot run ${command[0]}: ${ended.error.message}`,
      terminal,
    };
  } finally {
    restoreSignals();
  }
}

/** Copies the child's output to ours as it comes, pausing the child when ours is backed up. */
function tee(child: ChildProcess, output: Output, log: RunLog | undefined): void {
  const sources: Array<[Readable | null, LogStream, NodeJS.WritableStream]> = [
    [child.stdout, 1, output.stdout],
    [child.stderr, 2, output.stderr],
  ];
  // Both sources pause together, so a backed-up stdout cannot let stderr run ahead of it.
  let waiting = 0;
  const pauseAll = (): void => {
    for (const [source] of sources) source?.pause();
  };
  const resumeAll = (): void => {
    if (--waiting === 0) for (const [source] of sources) source?.resume();
  };
  for (const [source, stream, target] of sources) {
    // A reader that went away (`cachet run … | head -1`): close the command's end too, so it meets the closed pipe
    // as it would without cachet; its output is then incomplete and is not cached.
    const readerGone = (): void => {
      log?.drop("output closed");
      source?.destroy();
    };
    target.on("error", readerGone);
    child.once("close", () => target.removeListener("error", readerGone));
    source?.on("data", (chunk: Buffer) => {
      log?.add(stream, chunk);
      if (!target.write(chunk)) {
        waiting++;
        pauseAll();
        target.once("drain", resumeAll);
      }
    });
  }
}

/** `script -qefc '<command>' /dev/null`: the command on a pseudo-terminal, its exit status passed on. */
function spawnOnTerminal(command: readonly string[], env: NodeJS.ProcessEnv): ChildProcess {
  // `script` runs its command through $SHELL -c; a known shell, and the user's SHELL put back for the command.
  const shell = env.SHELL;
  const restoreShell = shell === undefined ? "unset SHELL;" : `SHELL=${shellQuote(shell)}; export SHELL;`;
  const line = `${restoreShell} exec ${command.map(shellQuote).join(" ")}`;
  return spawn(scriptProgram()!, ["-qefc", line, "/dev/null"], { stdio: ["inherit", "pipe", "pipe"], env: { ...env, SHELL: "/bin/sh" } });
}

function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

let scriptPath: string | null | undefined;

/** util-linux `script` on PATH, found once. */
function scriptProgram(): string | undefined {
  if (scriptPath === undefined) {
    scriptPath = null;
    for (const dir of (process.env.PATH ?? "").split(delimiter)) {
      if (dir !== "" && existsSync(join(dir, "script"))) {
        scriptPath = join(dir, "script");
        break;
      }
    }
  }
  return scriptPath ?? undefined;
}

/**
 * Sends `signal` to the command. On a terminal, the command is `script`'s child (the shell `exec`s it), and
 * `script` itself answers SIGTERM by killing the session; so the signal goes to `script`'s children.
 */
function signalCommand(child: ChildProcess, terminal: boolean, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  if (terminal) {
    let children: number[] = [];
    try {
      children = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      children = [];
    }
    if (children.length > 0) {
      for (const pid of children) {
        try {
          process.kill(pid, signal);
        } catch {
          // already gone
        }
      }
      return;
    }
  }
  child.kill(signal);
}

/**
 * Replaces this process's handlers of the forwarded signals with `handler` until the returned function is called,
 * which puts them back: while the command runs, Ctrl-C is the command's to act on, and we follow its exit.
 */
function forwardSignals(handler: (signal: NodeJS.Signals) => void): () => void {
  const saved = new Map<NodeJS.Signals, Function[]>();
  const forwarders = new Map<NodeJS.Signals, () => void>();
  for (const signal of FORWARDED) {
    saved.set(signal, process.rawListeners(signal));
    process.removeAllListeners(signal);
    const forward = (): void => handler(signal);
    forwarders.set(signal, forward);
    process.on(signal, forward);
  }
  return () => {
    for (const signal of FORWARDED) {
      process.removeListener(signal, forwarders.get(signal)!);
      for (const listener of saved.get(signal) ?? []) process.on(signal, listener as () => void);
    }
  };
}
