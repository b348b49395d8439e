import { closeSync, fstatSync, mkdirSync, openSync, statSync } from "node:fs";
import { dirname } from "node:path";
import fsExt from "fs-ext";
import { LockTimeoutError, StoreSettingError } from "./errors.js";

/** Shared (many holders) or exclusive (one holder). */
export type LockMode = "shared" | "exclusive";

/** Called once when a lock is busy and the caller starts to wait. */
export type LockWaitHandler = (info: { path: string; mode: LockMode }) => void;

export interface AcquireOptions {
  /** Seconds to wait before {@link LockTimeoutError}; `0` fails at once if busy. Default: `CACHET_LOCK_TIMEOUT` or 300. */
  timeoutSeconds?: number | undefined;
  onWait?: LockWaitHandler | undefined;
}

const DEFAULT_LOCK_TIMEOUT_SECONDS = 300;

/** The lock timeout from `CACHET_LOCK_TIMEOUT` (seconds), or the default of 300. */
export function lockTimeoutFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.CACHET_LOCK_TIMEOUT;
  if (raw === undefined || raw === "") return DEFAULT_LOCK_TIMEOUT_SECONDS;
  const seconds = Number(raw);
  if (!Number.isFinite(seconds) || seconds < 0) {
    throw new StoreSettingError("CACHET_LOCK_TIMEOUT", raw, "a number of seconds ≥ 0");
  }
  return seconds;
}

/**
 * A kernel advisory lock (`flock`) on a file. The kernel drops it when the holder's descriptor closes,
 * including when the process is killed, so a crash never leaves a stale lock. Each `FileLock` opens its own
 * descriptor, so two locks on one path conflict even within one process.
 */
export class FileLock {
  private fd: number | undefined;
  private heldMode: LockMode | undefined;

  constructor(readonly path: string) {}

  get mode(): LockMode | undefined {
    return this.heldMode;
  }

  /** Takes the lock without waiting; false when another holder has it in a conflicting mode. */
  tryAcquire(mode: LockMode): boolean {
    const fd = this.open();
    try {
      fsExt.flockSync(fd, mode === "shared" ? "shnb" : "exnb");
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "EAGAIN" || code === "EWOULDBLOCK") return false;
      throw error;
    }
    if (!this.stillLinked(fd)) {
      // The file was removed and recreated while we opened it: our lock guards nothing. Start over.
      this.closeFd();
      return this.tryAcquire(mode);
    }
    this.heldMode = mode;
    return true;
  }

  /** Takes the lock, polling with backoff while it is busy, until the timeout. */
  async acquire(mode: LockMode, options: AcquireOptions = {}): Promise<void> {
    if (this.tryAcquire(mode)) return;
    const timeoutSeconds = options.timeoutSeconds ?? lockTimeoutFromEnv();
    options.onWait?.({ path: this.path, mode });
    const deadline = Date.now() + timeoutSeconds * 1000;
    let delay = 2;
    for (;;) {
      if (Date.now() >= deadline) throw new LockTimeoutError(this.path, timeoutSeconds);
      await sleep(Math.min(delay, Math.max(1, deadline - Date.now())));
      delay = Math.min(delay * 2, 50);
      if (this.tryAcquire(mode)) return;
    }
  }

  /** Releases the lock and closes the descriptor. Idempotent. */
  release(): void {
    this.closeFd();
  }

  private open(): number {
    if (this.fd !== undefined) return this.fd;
    try {
      this.fd = openSync(this.path, "a+");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      mkdirSync(dirname(this.path), { recursive: true });
      this.fd = openSync(this.path, "a+");
    }
    return this.fd;
  }

  private stillLinked(fd: number): boolean {
    try {
      return statSync(this.path).ino === fstatSync(fd).ino;
    } catch {
      return false;
    }
  }

  private closeFd(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    this.heldMode = undefined;
    closeSync(fd);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
