import { closeSync, fstatSync, openSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { ensureDirectory } from "./directories.js";
import { readSettings } from "../config/index.js";
import { LockTimeoutError } from "./errors.js";
import { loadFlock } from "./native-modules.js";

/** Shared (many holders) or exclusive (one holder). */
export type LockMode = "shared" | "exclusive";

/** Called once when a lock is busy and the caller starts to wait. */
export type LockWaitHandler = (info: { path: string; mode: LockMode }) => void;

export interface AcquireOptions {
  /** Seconds to wait before {@link LockTimeoutError}; `0` fails at once if busy. Default: `CACHET_LOCK_TIMEOUT` or 300. */
  timeoutSeconds?: number | undefined;
  onWait?: LockWaitHandler | undefined;
  /** The advice a timeout gives (default: raise `CACHET_LOCK_TIMEOUT`, or `--force` when nothing else uses the cache). */
  timeoutAdvice?: string | undefined;
}

const MAX_POLL_MS = 50;

/** The lock timeout from `CACHET_LOCK_TIMEOUT` (seconds), or the default of 300. */
export function lockTimeoutFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  return readSettings({ env }).lockTimeoutSeconds;
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
    const flock = loadFlock();
    for (;;) {
      const fd = this.open();
      try {
        flock.flockSync(fd, mode === "shared" ? "shnb" : "exnb");
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "EAGAIN" || code === "EWOULDBLOCK") return false;
        throw error;
      }
      if (this.stillLinked(fd)) break;
      // The file was removed and recreated while we opened it: our lock guards nothing. Start over.
      this.closeFd();
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
      if (Date.now() >= deadline) throw new LockTimeoutError(this.path, timeoutSeconds, options.timeoutAdvice);
      await sleep(Math.min(delay, Math.max(1, deadline - Date.now())));
      delay = Math.min(delay * 2, MAX_POLL_MS);
      if (this.tryAcquire(mode)) return;
    }
  }

  /**
   * {@link acquire} without leaving the current turn: the thread sleeps between polls. Only for short critical
   * sections reached from synchronous code (replacing a corrupt index).
   */
  acquireSync(mode: LockMode, options: AcquireOptions = {}): void {
    if (this.tryAcquire(mode)) return;
    const timeoutSeconds = options.timeoutSeconds ?? lockTimeoutFromEnv();
    const deadline = Date.now() + timeoutSeconds * 1000;
    let delay = 2;
    for (;;) {
      if (Date.now() >= deadline) throw new LockTimeoutError(this.path, timeoutSeconds, options.timeoutAdvice);
      Atomics.wait(sleeper, 0, 0, Math.min(delay, Math.max(1, deadline - Date.now())));
      delay = Math.min(delay * 2, MAX_POLL_MS);
      if (this.tryAcquire(mode)) return;
    }
  }

  /**
   * Takes the lock exclusively for a short critical section, polling in sleeps that start below a millisecond,
   * until `timeoutMs`.
   */
  acquireBriefly(timeoutMs: number): void {
    if (this.tryBriefly()) return;
    const deadline = Date.now() + timeoutMs;
    // Sections last tens of µs; waiters that sleep longer leave the cores to the holder (measured with 8 writers
    // on 2 cores: backing off from 50 µs to 5 ms gave the most writes per second).
    let delay = 0.05;
    for (;;) {
      if (Date.now() >= deadline) throw new LockTimeoutError(this.path, timeoutMs / 1000, "another process holds it; raise CACHET_LOCK_TIMEOUT");
      Atomics.wait(sleeper, 0, 0, delay);
      delay = Math.min(delay * 2, 5);
      if (this.tryBriefly()) return;
    }
  }

  /**
   * One non-blocking exclusive `flock` on the kept descriptor, without {@link tryAcquire}'s check that the path
   * still names the file: brief locks live in files only a whole `clean` removes, and it excludes every user.
   */
  private tryBriefly(): boolean {
    const fd = this.open();
    try {
      loadFlock().flockSync(fd, "exnb");
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "EAGAIN" || code === "EWOULDBLOCK") return false;
      throw error;
    }
    this.heldMode = "exclusive";
    return true;
  }

  /** Releases the lock but keeps the descriptor open for the next {@link acquireBriefly}. */
  unlock(): void {
    if (this.fd === undefined || this.heldMode === undefined) return;
    this.heldMode = undefined;
    try {
      loadFlock().flockSync(this.fd, "un");
    } catch {
      this.closeFd();
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
      ensureDirectory(dirname(this.path));
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
    try {
      closeSync(fd);
    } catch {
      // Closing drops the lock whatever close reports.
    }
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
