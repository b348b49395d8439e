import { existsSync } from "node:fs";
import { resolveCacheDir, type CacheDirRequest, type ResolvedCacheDir } from "./cache-dir.js";
import { EntryIndex } from "./entry-index.js";
import { CacheLayout } from "./layout.js";
import { emitProcessWarning, type WarningHandler } from "./link-out.js";
import { lockTimeoutFromEnv, type LockWaitHandler } from "./locks.js";
import { RootLock } from "./root-lock.js";
import { replacedIndexWarning } from "./index-warnings.js";
import type { Reporter } from "./tally.js";

/** Options shared by `clean`, `prune`, `size` and `verify`. */
export interface MaintenanceOptions extends CacheDirRequest {
  /** Skip waiting for other processes (only safe when none is using the cache). */
  force?: boolean | undefined;
  /** Seconds to wait for other processes; default `CACHET_LOCK_TIMEOUT` or 300. */
  lockTimeout?: number | undefined;
  /** Called once if the cache is in use and the operation starts waiting. */
  onLockWait?: LockWaitHandler | undefined;
  /** Receives warnings (a damaged index replaced); default `process.emitWarning`. */
  onWarning?: WarningHandler | undefined;
  reporter?: Reporter | undefined;
}

/**
 * Runs `fn` with the cache root held exclusively (no other process has it open, and new ones wait), unless
 * `force`. Returns undefined without calling `fn` when there is no cache at the resolved root.
 */
export async function withExclusiveRoot<T>(
  options: MaintenanceOptions,
  fn: (layout: CacheLayout, resolved: ResolvedCacheDir) => Promise<T>,
): Promise<{ resolved: ResolvedCacheDir; result: T | undefined }> {
  const resolved = resolveCacheDir(options);
  const layout = new CacheLayout(resolved.path);
  if (!existsSync(resolved.path)) return { resolved, result: undefined };
  const lock = options.force
    ? undefined
    : await RootLock.acquire(layout.lockFile, layout.queueLockFile, "exclusive", {
        timeoutSeconds: options.lockTimeout ?? lockTimeoutFromEnv(options.env),
        onWait: options.onLockWait,
      });
  try {
    return { resolved, result: await fn(layout, resolved) };
  } finally {
    lock?.release();
  }
}

/** Opens the index for maintenance, reporting a damaged one (which it replaces) through `onWarning`. */
export function openMaintenanceIndex(layout: CacheLayout, options: MaintenanceOptions): EntryIndex {
  const onWarning = options.onWarning ?? emitProcessWarning;
  return new EntryIndex(layout.indexDir, {
    lockTimeoutSeconds: options.lockTimeout ?? lockTimeoutFromEnv(options.env),
    onReplaced: (replacement) => onWarning(replacedIndexWarning(replacement)),
  });
}
