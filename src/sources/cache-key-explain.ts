import { statSync } from "node:fs";
import type { CacheStore, EntryInfo } from "../store/index.js";
import { diffCacheKeyComponents, isCacheKeyComponents, type CacheKeyComponents } from "./cache-key-components.js";
import { computeCacheKey } from "./cache-key-computation.js";

/** The answer of {@link explainCacheKeyEntry}. */
export interface CacheKeyExplanation {
  name: string;
  key: string;
  createdAt: Date;
  lastUsedAt: Date;
  costMs: number;
  /** What the entry's key was computed from. */
  components: CacheKeyComponents;
  /** The key computed again now from the same directory and cache keys; undefined when that was not possible. */
  current?: { key: string; components: CacheKeyComponents } | undefined;
  /** {@link diffCacheKeyComponents} from the entry to now: which file, directory, variable, commit or tag changed. */
  changes: string[];
  /** One sentence: whether the cache keys are the same now, and if not, why it could not tell. */
  reason: string;
}

/**
 * The cache-key components an entry was stored with: components made by `computeCacheKey` (a local source), or an
 * object whose `cacheKeys` property holds them (a `cachet run` entry, whose key also covers the command).
 */
export function cacheKeyComponentsOf(stored: unknown): CacheKeyComponents | undefined {
  if (isCacheKeyComponents(stored)) return stored;
  const nested = typeof stored === "object" && stored !== null ? (stored as { cacheKeys?: unknown }).cacheKeys : undefined;
  return isCacheKeyComponents(nested) ? nested : undefined;
}

/**
 * Explains an entry keyed by cache keys (`key`, default the most recently used entry of `name`): what it was keyed
 * on, and what differs now, computed again from the directory and cache keys its components record (with the
 * current environment). Undefined when there is no such entry or its components are not cache-key components.
 */
export async function explainCacheKeyEntry(
  store: CacheStore,
  name: string,
  key?: string,
  options: { env?: NodeJS.ProcessEnv } = {},
): Promise<CacheKeyExplanation | undefined> {
  const entry = key === undefined ? await mostRecent(store, name) : store.info(name, key);
  if (!entry) return undefined;
  const components = cacheKeyComponentsOf(store.components(name, entry.key));
  if (!components) return undefined;
  const base = { name, key: entry.key, createdAt: entry.createdAt, lastUsedAt: entry.lastUsedAt, costMs: entry.costMs, components };
  if (!isDirectory(components.baseDir)) {
    return { ...base, changes: [], reason: `${components.baseDir} is no longer a directory, so the keys cannot be computed again` };
  }
  let current;
  try {
    current = await computeCacheKey(components.baseDir, components.specs, { store, env: options.env });
  } catch (error) {
    return { ...base, changes: [], reason: `the keys cannot be computed again: ${error instanceof Error ? error.message : String(error)}` };
  }
  const changes = diffCacheKeyComponents(components, current.components);
  const reason =
    changes.length === 0 ? "the cache keys read the same now (this part of the key would hit)" : `the cache keys differ now: ${changes.slice(0, 5).join("; ")}${changes.length > 5 ? `; and ${changes.length - 5} more` : ""}`;
  return { ...base, current: { key: current.key, components: current.components }, changes, reason };
}

async function mostRecent(store: CacheStore, name: string): Promise<EntryInfo | undefined> {
  for await (const entry of store.list(name)) return entry;
  return undefined;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
