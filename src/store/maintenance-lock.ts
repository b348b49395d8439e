import { existsSync } from "node:fs";
import { resolveCacheDir, type CacheDirRequest, type ResolvedCacheDir } from "./cache-dir.js";
import { CacheLayout } from "./layout.js";
import { FileLock, lockTimeoutFromEnv, type LockWaitHandler } from "./locks.js";
import type { Reporter } from "./tally.js";

/** Options shared by `clean`, `prune`, `size` and `verify`. */
export interface MaintenanceOptions extends CacheDirRequest {
  /** Skip waiting for other processes (only safe when none is using the cache). */
  force?: boolean | undefined;
  /** Seconds to wait for other processes; default `CACHET_LOCK_TIMEOUT` or 300. */
  lockTimeout?: number | undefined;
  /** Called once if the cache is in use and the operation starts waiting. */
  onLockWait?: LockWaitHandler | undefined;
  reporter?: Reporter | undefined;
}

/**
 * Runs `fn` with the cache root held exclusively (no other process has it open), unless `force`. Returns
 * undefined without calling `fn` when there is no cache at the resolved root.
 */
export async function withExclusiveRoot<T>(
  options: MaintenanceOptions,
  fn: (layout: CacheLayout, resolved: ResolvedCacheDir) => Promise<T>,
): Promise<{ resolved: ResolvedCacheDir; result: T | undefined }> {
  const resolved = resolveCacheDir(options);
  const layout = new CacheLayout(resolved.path);
  if (!existsSync(resolved.path)) return { resolved, result: undefined };
  const lock = new FileLock(layout.lockFile);
  try {
    if (!options.force) {
      await lock.acquire("exclusive", {
        timeoutSeconds: options.lockTimeout ?? lockTimeoutFromEnv(options.env),
        onWait: options.onLockWait,
      });
    }
    return { resolved, result: await fn(layout, resolved) };
  } finally {
    lock.release();
  }
}
