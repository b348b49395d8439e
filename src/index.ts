/**
 * cachet: durable, versioned, concurrency-safe caching for TypeScript.
 *
 * - The store: `openStore()` and its raw entry API (put/get/delete/list, streams, trees, key locks), and the
 *   maintenance operations behind `cachet cache …` (clean, prune, size, verify).
 * - Keys: the canonical value encoding and digests of values, files and trees.
 * - Tasks: `task()` runs a function once per key, configured by Flyte-style `Cache`, policies, `ImageSpec`
 *   and `PodTemplate`; `explain()` says why a call would miss.
 * - Settings: `readSettings()` reads every `CACHET_*` variable and package.json `"cachet"` field, validated.
 * - Sources: `cachedFetch` (fetch with a private RFC 9111 HTTP cache on disk), `fetchArtifact` (a download once
 *   per canonical URL, sha256-checked, unpacked on request), `gitSource()` (a git checkout cached by its commit) and
 *   `localSource()` (files and directories keyed by their cache keys).
 * - The shared tier: `RemoteStore` on PostgreSQL (fenced leases, Redis for hand-off), `TieredStore` (the local
 *   cache in front of it), and `openConfiguredStore()`, which picks by the settings.
 */
export { CachetError, isCachetError } from "./errors.js";
export { readSettings, SettingError, PackageJsonError, parseSize, parseDuration } from "./config/index.js";
export type { Settings, SettingsSource, SettingFlags, RefreshSetting, CacheRoot, CacheRootSource } from "./config/index.js";
export {
  encodeCanonical,
  hashValue,
  hashKey,
  sha256Hex,
  serializeValue,
  deserializeValue,
  VALUE_FORMAT,
  UnhashableValueError,
  UnserializableValueError,
  ValueDecodeError,
  UnsupportedFileTypeError,
  hashFile,
  hashTree,
  treeDigestFromEntries,
} from "./hash/index.js";
export type { HashOptions, Hashable, SerializeOptions, FileDigest, TreeDigest, TreeEntry, HashTreeOptions, TreeSkip } from "./hash/index.js";
export * from "./store/index.js";
export * from "./task/index.js";
export * from "./sources/index.js";
// The shared tier (src/remote/) and the store the settings ask for.
export * from "./remote/index.js";
export { openConfiguredStore } from "./open-store.js";
