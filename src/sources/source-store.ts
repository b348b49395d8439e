import { openConfiguredStore } from "../open-store.js";
import type { CacheStore, WarningHandler } from "../store/index.js";

/**
 * The store sources use when a caller gives none: `openConfiguredStore()` (the local cache, with the shared tier
 * behind it when one is configured), opened on first use and shared by the process.
 * A failure to open is remembered for {@link REOPEN_AFTER_MS} (no disk access meanwhile), then tried anew.
 */
let shared: Promise<CacheStore> | undefined;
let openFailure: { error: unknown; until: number } | undefined;

/** How long a failed open of the shared store stands in for a new attempt. */
export const REOPEN_AFTER_MS = 30_000;

/** The warning handler sources use when a caller gives none. */
export const emitSourceWarning: WarningHandler = (warning) => process.emitWarning(warning.message, { code: warning.code });

/** The shared default store of sources. */
export function defaultSourceStore(onWarning: WarningHandler): Promise<CacheStore> {
  if (shared) return shared;
  if (openFailure && Date.now() < openFailure.until) return Promise.reject(openFailure.error);
  let opening: Promise<CacheStore>;
  try {
    opening = openConfiguredStore({ onWarning });
  } catch (error) {
    opening = Promise.reject(error);
  }
  shared = opening;
  opening.then(
    () => (openFailure = undefined),
    (error: unknown) => {
      if (shared === opening) shared = undefined;
      openFailure = { error, until: Date.now() + REOPEN_AFTER_MS };
    },
  );
  return opening;
}

/** What a source was doing with the cache when it failed. */
export type SourceCacheStep = "open" | "read" | "write" | "lock";

const CODES: Readonly<Record<SourceCacheStep, string>> = {
  open: "CACHET_CACHE_UNAVAILABLE",
  read: "CACHET_CACHE_READ_FAILED",
  write: "CACHET_CACHE_WRITE_FAILED",
  lock: "CACHET_CACHE_LOCK_FAILED",
};

const reported = new Set<string>();

/**
 * Reports a cache failure met by a source once per process and cache root (the first failure says what is
 * wrong; later ones, of any step, are the same cache failing again): the download went to the network instead
 * (invariant 3). A handler that throws never fails the call.
 */
export function reportSourceFailure(step: SourceCacheStep, error: unknown, root: string | undefined, onWarning: WarningHandler): void {
  const id = root ?? "";
  if (reported.has(id)) return;
  reported.add(id);
  const where = root === undefined ? "the cache" : `the cache at ${root}`;
  const reason = (error instanceof Error ? error.message : String(error)).replace(/\s+/g, " ").slice(0, 300);
  const code = (error as { code?: unknown } | null)?.code;
  const what = {
    open: `cannot use ${where}, so downloads go to the network uncached`,
    read: `reading from ${where} failed, so downloads go to the network`,
    write: `a download was returned but not stored in ${where}`,
    lock: `a download ran without waiting for another process fetching the same URL`,
  }[step];
  const warning = { code: CODES[step], message: `cachet: ${what} (later failures of this cache are not reported): ${reason}${typeof code === "string" && !reason.includes(code) ? ` (${code})` : ""}` };
  try {
    onWarning(warning);
  } catch {
    process.emitWarning(warning.message, { code: warning.code });
  }
}
