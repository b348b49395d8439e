import { readSettings, refreshes } from "../config/index.js";
import { resolveCacheDir, type CacheStore, type StoreOptions, type WarningHandler, type StoreWarning } from "../store/index.js";
import { isCacheStore, missingCacheStoreMembers } from "../store/cache-store.js";
import { openConfiguredStore } from "../open-store.js";
import { TaskDefinitionError } from "./errors.js";
import type { TaskEventHandler } from "./task-events.js";

/** Process-wide defaults for tasks that do not set their own. */
export interface TaskDefaults {
  /** The store tasks use (any {@link CacheStore}), or the options of `openStore()`; default: `openConfiguredStore()` on first use (the local cache, in front of the shared tier when one is configured). */
  store?: CacheStore | StoreOptions | undefined;
  onEvent?: TaskEventHandler | undefined;
  onWarning?: WarningHandler | undefined;
}

let defaults: TaskDefaults = {};
let sharedStore: Promise<CacheStore> | undefined;
/** The last failure to open the shared store, and until when it stands in for a new attempt. */
let openFailure: { error: unknown; until: number } | undefined;

/** How long a failed open of the shared store is remembered before the next call tries again. */
export const REOPEN_AFTER_MS = 30_000;

/** Sets process-wide task defaults (a store or the options to open one, event and warning handlers). */
export function configureTasks(next: TaskDefaults): void {
  if (next.store !== undefined) checkStoreDefault(next.store);
  defaults = { ...defaults, ...next };
  if ("store" in next) {
    sharedStore = undefined;
    openFailure = undefined;
  }
}

/**
 * A store default that has some of a store's methods but not all is a store written against an older or
 * different interface, not the options of `openStore()`: say what it lacks instead of opening a cache with it.
 */
function checkStoreDefault(store: object): void {
  const { put, getValue } = store as Record<string, unknown>;
  if (typeof put !== "function" && typeof getValue !== "function") return;
  const missing = missingCacheStoreMembers(store);
  if (missing.length > 0) {
    throw new TaskDefinitionError(`configureTasks({ store }): the store lacks ${missing.join(", ")} of the CacheStore interface`);
  }
}

/**
 * The store tasks without their own `store` use, opened once per process. When opening fails, the failure is
 * returned again (without touching the disk) for {@link REOPEN_AFTER_MS}, then opening is tried anew.
 */
export function defaultTaskStore(): Promise<CacheStore> {
  if (sharedStore) return sharedStore;
  if (openFailure && Date.now() < openFailure.until) return Promise.reject(openFailure.error);
  const configured = defaults.store;
  let opening: Promise<CacheStore>;
  try {
    opening = isCacheStore(configured)
      ? Promise.resolve(configured)
      : openConfiguredStore({ onWarning: defaults.onWarning, ...(configured as StoreOptions | undefined) });
  } catch (error) {
    opening = Promise.reject(error);
  }
  sharedStore = opening;
  opening.then(
    () => (openFailure = undefined),
    (error: unknown) => {
      if (sharedStore === opening) sharedStore = undefined;
      openFailure = { error, until: Date.now() + REOPEN_AFTER_MS };
    },
  );
  return opening;
}

/** The cache root the shared store uses (or would use), for messages; undefined when it cannot be told. */
export function defaultTaskStoreRoot(error?: unknown): string | undefined {
  const named = (error as { root?: unknown } | undefined)?.root;
  if (typeof named === "string") return named;
  const configured = defaults.store;
  if (isCacheStore(configured)) return configured.root;
  const options = (configured ?? {}) as StoreOptions;
  if (options.noCache) return "a temporary cache directory";
  try {
    return resolveCacheDir(options).path;
  } catch {
    return undefined;
  }
}

export function defaultEventHandler(): TaskEventHandler | undefined {
  return defaults.onEvent;
}

export function defaultWarningHandler(): WarningHandler {
  return defaults.onWarning ?? ((warning: StoreWarning) => process.emitWarning(warning.message, { code: warning.code }));
}

/**
 * `CACHET_NO_CACHE` (read by the settings module, like the CLI reads it): on turns task caching off. Read at
 * every call, so a process may switch it. A value that is not understood throws its `SettingError`.
 */
export function cachingDisabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return readSettings({ env }).noCache;
}

/** `CACHET_REFRESH=1` (every task) or `CACHET_REFRESH=name,name` (those tasks), read at every call. */
export function refreshRequested(taskName: string, env: NodeJS.ProcessEnv = process.env): boolean {
  return refreshes(readSettings({ env }).refresh, taskName);
}
