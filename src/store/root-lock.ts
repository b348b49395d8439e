import { realpathSync } from "node:fs";
import { dirname } from "node:path";
import { CacheRootError, LockTimeoutError, describeRootFailure } from "./errors.js";
import { FileLock, lockTimeoutFromEnv, type LockMode, type LockWaitHandler } from "./locks.js";

/** Options of taking the root lock. */
export interface RootLockOptions {
  timeoutSeconds?: number | undefined;
  /** Called once if the lock is busy and the caller starts to wait. */
  onWait?: LockWaitHandler | undefined;
  env?: NodeJS.ProcessEnv | undefined;
}

/** Roots this process holds shared, by real path, with how many holders: they skip the queue. */
const sharedHere = new Map<string, number>();

/**
 * The cache root's usage lock: every open store holds `<root>/.lock` shared; `clean` and `prune` hold it
 * exclusively. `flock` alone lets a steady stream of short-lived stores starve an exclusive waiter forever,
 * so requests pass through a second lock, `<root>/.lock-queue`: an exclusive request takes the queue first and
 * keeps it while it waits, which holds new shared requests back; a shared request passes the queue (shared)
 * only to take `.lock`. A process that already holds the root shared skips the queue, so it never waits for
 * a clean that is waiting for it. Neither file is ever removed: a process blocked on one must find the lock
 * the next holder takes.
 */
export class RootLock {
  private released = false;

  private constructor(
    readonly mode: LockMode,
    private readonly rootKey: string,
    private readonly lock: FileLock,
    private readonly queue: FileLock | undefined,
  ) {}

  /** Takes the root lock in `mode`, waiting (up to the timeout) for holders of the other mode. */
  static async acquire(lockFile: string, queueFile: string, mode: LockMode, options: RootLockOptions = {}): Promise<RootLock> {
    const timeoutSeconds = options.timeoutSeconds ?? lockTimeoutFromEnv(options.env);
    const deadline = Date.now() + timeoutSeconds * 1000;
    const remaining = (): number => Math.max(0, (deadline - Date.now()) / 1000);
    let told = false;
    const onWait: LockWaitHandler = (info) => {
      if (told) return;
      told = true;
      options.onWait?.(info);
    };
    const lock = new FileLock(lockFile);
    // A process's holds are known by the root's real path: the same root reached through a symlink is one root.
    const rootKey = realRoot(lockFile);
    // Each step gets what is left of one deadline; a timeout reports the whole wait.
    const step = async (file: FileLock, stepMode: LockMode): Promise<void> => {
      try {
        await file.acquire(stepMode, { timeoutSeconds: remaining(), onWait });
      } catch (error) {
        if (error instanceof LockTimeoutError) throw new LockTimeoutError(file.path, timeoutSeconds);
        const code = (error as NodeJS.ErrnoException).code;
        if (code === undefined || code.startsWith("CACHET_")) throw error;
        throw new CacheRootError(dirname(lockFile), describeRootFailure(error as NodeJS.ErrnoException), { cause: error });
      }
    };
    if (mode === "shared" && (sharedHere.get(rootKey) ?? 0) > 0) {
      await step(lock, "shared");
      return RootLock.held("shared", rootKey, lock, undefined);
    }
    const queue = new FileLock(queueFile);
    await step(queue, mode);
    try {
      await step(lock, mode);
    } catch (error) {
      queue.release();
      throw error;
    }
    if (mode === "exclusive") return RootLock.held(mode, rootKey, lock, queue);
    queue.release();
    return RootLock.held(mode, rootKey, lock, undefined);
  }

  private static held(mode: LockMode, rootKey: string, lock: FileLock, queue: FileLock | undefined): RootLock {
    if (mode === "shared") sharedHere.set(rootKey, (sharedHere.get(rootKey) ?? 0) + 1);
    return new RootLock(mode, rootKey, lock, queue);
  }

  /** Releases the lock. Idempotent. */
  release(): void {
    if (this.released) return;
    this.released = true;
    if (this.mode === "shared") {
      const count = (sharedHere.get(this.rootKey) ?? 1) - 1;
      if (count > 0) sharedHere.set(this.rootKey, count);
      else sharedHere.delete(this.rootKey);
    }
    this.lock.release();
    this.queue?.release();
  }
}

function realRoot(lockFile: string): string {
  try {
    return realpathSync(dirname(lockFile));
  } catch {
    return dirname(lockFile);
  }
}
