import { spawn } from "node:child_process";
import { GitNotInstalledError } from "./git-errors.js";

/** What a git command printed and how it ended. */
export interface GitRun {
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Options of {@link runGit}. */
export interface GitRunOptions {
  /** The repository (`--git-dir`); commands that need none (`init`) leave it out. */
  gitDir?: string | undefined;
  /** Kill git (SIGKILL) after this many ms. */
  timeoutMs: number;
  /** Variables added to git's environment. */
  env?: NodeJS.ProcessEnv | undefined;
}

/**
 * Settings every command runs with, whatever the user's configuration says: no prompts are possible (stdin is
 * closed and `GIT_TERMINAL_PROMPT=0`), no automatic gc or maintenance detaches into the background of a cache
 * that `prune` may remove, no hooks, no filesystem monitor, and no reflogs that could keep a URL.
 */
const FIXED_CONFIG = [
  "gc.auto=0",
  "maintenance.auto=false",
  "core.hooksPath=/dev/null",
  "core.fsmonitor=false",
  "core.logAllRefUpdates=false",
  "fetch.writeCommitGraph=false",
  "init.defaultBranch=main",
  "protocol.version=2",
].flatMap((setting) => ["-c", setting]);

/** Variables of the caller's environment that would point git at another repository or index. */
const REPOSITORY_VARIABLES = ["GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_NAMESPACE", "GIT_CEILING_DIRECTORIES"];

/** Runs the system `git`; rejects only when git cannot be started ({@link GitNotInstalledError}). */
export function runGit(args: readonly string[], options: GitRunOptions): Promise<GitRun> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of REPOSITORY_VARIABLES) delete env[name];
  Object.assign(env, { GIT_TERMINAL_PROMPT: "0", LC_ALL: "C", LANGUAGE: "C" }, options.env);
  const argv = [...FIXED_CONFIG, ...(options.gitDir === undefined ? [] : [`--git-dir=${options.gitDir}`]), ...args];
  return new Promise((resolve, reject) => {
    // A process group of its own: git runs transports in helper processes (`git remote-http`, `ssh`) that hold
    // its output pipes, so a timeout kills the whole group, not git alone, or the wait would last as long as the
    // helper hangs on the network.
    // (POSIX only: Windows has no process groups to signal, and a detached child there gets a console of its own.)
    const child = spawn("git", argv, { env, stdio: ["ignore", "pipe", "pipe"], detached: !WINDOWS });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let timedOut = false;
    const killGroup = () => {
      try {
        if (WINDOWS) child.kill("SIGKILL");
        else process.kill(-child.pid!, "SIGKILL");
      } catch {
        // Already gone.
      }
    };
    if (child.pid !== undefined) runningGroups.add(killGroup);
    // setTimeout reads a delay past 2^31-1 ms (Infinity included) as 1 ms: such a bound means no bound.
    const bounded = options.timeoutMs <= MAX_TIMER_MS;
    const timer = bounded
      ? setTimeout(() => {
          timedOut = true;
          killGroup();
        }, options.timeoutMs)
      : undefined;
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
    child.on("error", (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      runningGroups.delete(killGroup);
      reject(error.code === "ENOENT" || error.code === "EACCES" ? new GitNotInstalledError(error) : error);
    });
    child.on("exit", () => {
      runningGroups.delete(killGroup);
      // A helper that left the group (its own session) may still hold the pipes: once killed, git's end is the end.
      if (timedOut) {
        child.stdout.destroy();
        child.stderr.destroy();
      }
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(stdout).toString("utf8"), stderr: Buffer.concat(stderr).toString("utf8"), timedOut });
    });
  });
}

const WINDOWS = process.platform === "win32";
/** The longest delay setTimeout keeps (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Kills of the git process groups still running; run when this process exits, so none outlives it. */
const runningGroups = new Set<() => void>();
process.on("exit", () => {
  for (const kill of runningGroups) kill();
});

/**
 * The line of git's output that says what failed, for a one-line error: its first `fatal:` or `error:` line
 * (without the prefix), since git follows it with generic advice; else its last line.
 */
export function failureLine(run: GitRun, timeoutMs: number): string {
  if (run.timedOut) return `timed out after ${Math.round(timeoutMs / 1000)}s`;
  const lines = run.stderr.split(/\r?\n|\r/).map((line) => line.trim()).filter((line) => line !== "");
  const line = lines.find((candidate) => /^(fatal|error): /.test(candidate)) ?? lines[lines.length - 1] ?? `exit code ${run.code}`;
  return line.replace(/^(fatal|error): /, "");
}
