import { LockTimeoutError, type WarningHandler } from "../store/index.js";

/**
 * A cache that cannot be used never breaks a task call: the call runs the function and returns its value, and
 * the failure is reported once per process (per step and cache root) as a warning that says what is wrong and
 * how to fix it. This module words those warnings.
 */

/** What a task was doing with the cache when it failed. */
export type CacheStep = "open" | "read" | "write" | "lock";

/** Warning codes, one per step. */
export const CACHE_FAILURE_CODES: Readonly<Record<CacheStep, string>> = Object.freeze({
  open: "CACHET_CACHE_UNAVAILABLE",
  read: "CACHET_CACHE_READ_FAILED",
  write: "CACHET_CACHE_WRITE_FAILED",
  lock: "CACHET_CACHE_LOCK_FAILED",
});

const reported = new Set<string>();

/**
 * Reports a failure of the cache met by task `task`, unless one of the same step at the same root was reported
 * already in this process. `root` is the cache root, when known.
 */
export function reportCacheFailure(step: CacheStep, error: unknown, task: string, root: string | undefined, onWarning: WarningHandler): void {
  const id = `${step}\0${root ?? ""}`;
  if (reported.has(id)) return;
  reported.add(id);
  onWarning({ code: CACHE_FAILURE_CODES[step], message: describeCacheFailure(step, error, task, root) });
}

const MAX_REASON = 300;
const MAX_NAME = 80;

/** One line: what failed, where, what the call did instead, why, and how to fix it. */
export function describeCacheFailure(step: CacheStep, error: unknown, task: string, root: string | undefined): string {
  const where = root === undefined ? "the cache" : `the cache at ${cut(root, MAX_REASON)}`;
  const name = `task "${cut(task, MAX_NAME)}"`;
  const reason = reasonOf(error);
  const fix = `${fixFor(step, error, root)}; CACHET_NO_CACHE=1 turns task caching off`;
  switch (step) {
    case "open":
      return `cachet: cannot use ${where}, so tasks run without caching (${name} was the first): ${reason}. Fix: ${fix}`;
    case "read":
      return `cachet: reading from ${where} failed, so calls run as misses (${name} was the first): ${reason}. Fix: ${fix}`;
    case "write":
      return `cachet: the result of ${name} was returned but not stored in ${where} (later failures are not reported): ${reason}. Fix: ${fix}`;
    case "lock":
      return `cachet: ${name} ran without waiting for another caller of the same key (serialize): ${reason}. Fix: ${fix}`;
  }
}

function errorCode(error: unknown): string | undefined {
  const own = (error as { code?: unknown } | null)?.code;
  const cause = ((error as { cause?: { code?: unknown } } | null)?.cause ?? undefined)?.code;
  // A wrapped errno (StoreWriteError's cause) says more than the wrapper's own code.
  if (typeof cause === "string" && !/^CACHET_/.test(cause)) return cause;
  return typeof own === "string" ? own : undefined;
}

function reasonOf(error: unknown): string {
  if (error instanceof LockTimeoutError) {
    return `waited ${error.seconds}s for the lock ${cut(error.lockPath, MAX_REASON)} held by another process`;
  }
  let message = error instanceof Error ? error.message : String(error);
  // A NativeModuleError's message ends with its fix, which the warning gives once, after "Fix:".
  const fix = (error as { fix?: unknown } | null)?.fix;
  if (typeof fix === "string" && message.endsWith(`; ${fix}`)) message = message.slice(0, -(fix.length + 2));
  const code = errorCode(error);
  const line = message.replace(/\s+/g, " ").trim() || "unknown error";
  const withCode = code && !line.includes(code) ? `${line} (${code})` : line;
  return cut(withCode, MAX_REASON);
}

function fixFor(step: CacheStep, error: unknown, root: string | undefined): string {
  const dir = root ?? "the cache directory";
  const elsewhere = "or set CACHET_CACHE_DIR to a directory that is";
  const code = errorCode(error) ?? "";
  if (error instanceof LockTimeoutError) {
    return step === "lock"
      ? "if the other process is alive, it is still computing; raise CACHET_LOCK_TIMEOUT (seconds) to wait longer"
      : "another process holds the cache for `cachet cache clean` or `prune`; wait for it or raise CACHET_LOCK_TIMEOUT (seconds)";
  }
  if (code === "CACHET_LINK_MODE") return "unset CACHET_LINK_MODE to let cachet choose, or set it to copy";
  if (code === "CACHET_BAD_SETTING") return "give the setting named above one of the values it accepts, or unset it";
  if (["ENOSPC", "EDQUOT", "SQLITE_FULL", "CACHET_DISK_FULL", "SQLITE_IOERR_SHMSIZE"].includes(code)) {
    return `free space on the file system of ${dir} (\`cachet cache prune --max-size 1GiB\` shrinks the cache), or set CACHET_CACHE_DIR to another disk`;
  }
  if (code === "EACCES" || code === "EPERM") return `make ${dir} readable and writable by this user, ${elsewhere}`;
  if (code === "EROFS") return `${dir} is on a read-only file system; set CACHET_CACHE_DIR to a writable directory`;
  if (code === "ENOTDIR" || code === "EEXIST" || code === "CACHET_BAD_ROOT") {
    return `point CACHET_CACHE_DIR (or --cache-dir) at a directory cachet can create and write`;
  }
  if (code === "SQLITE_CORRUPT" || code === "SQLITE_NOTADB") {
    return `the cache index is damaged; \`cachet cache clean\` starts the cache afresh`;
  }
  if (code === "EXDEV") return `${dir}/tmp must be on the same file system as the cache; remove it and cachet recreates it`;
  const native = error as { code?: unknown; fix?: unknown } | null;
  if (native?.code === "CACHET_NATIVE_MODULE" && typeof native.fix === "string") return native.fix; // NativeModuleError
  if (code === "ERR_DLOPEN_FAILED" || /better-sqlite3|fs-ext-extra-prebuilt|\.node\b/.test(String((error as Error | null)?.message ?? ""))) {
    return "cachet's native modules did not load; run `npm rebuild better-sqlite3 fs-ext-extra-prebuilt` with this Node.js";
  }
  if (code.startsWith("SQLITE_IOERR") || code === "EIO") return `the disk holding ${dir} reported an I/O error; check it, or set CACHET_CACHE_DIR to a directory on another disk`;
  return `check that ${dir} is a writable directory, ${elsewhere}`;
}

/** `text` cut to `max` characters (with an ellipsis), on one line. */
export function cut(text: string, max: number): string {
  const line = text.replace(/[\r\n]+/g, " ");
  return line.length <= max ? line : `${line.slice(0, max - 1)}…`;
}
