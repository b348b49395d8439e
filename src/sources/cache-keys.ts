/**
 * Cache keys of local files and directories: the seam `localSource` and `cachet run` compute their keys through.
 * A key is a sha256 over the canonical encoding of what the cache keys read (file contents, directory existence,
 * git HEAD and tags, environment values), never over mtimes or absolute paths, so a fresh checkout elsewhere
 * computes the same key.
 */
export { parseCacheKeySpec, formatCacheKeySpec, type CacheKeySpec } from "./cache-key-spec.js";
export { computeCacheKey, cacheKeyOf, type CacheKeyOptions, type CacheKeyResult } from "./cache-key-computation.js";
export { diffCacheKeyComponents, isCacheKeyComponents, CACHE_KEY_FORMAT, type CacheKeyComponents } from "./cache-key-components.js";
export { readPackageCachetFields, alwaysRuns, DEFAULT_CACHE_KEYS, type PackageCachetFields } from "./package-fields.js";
export { localSource, LocalSource, type LocalSourceOptions } from "./local-source.js";
export { explainCacheKeyEntry, cacheKeyComponentsOf, type CacheKeyExplanation } from "./cache-key-explain.js";
export { FILE_DIGEST_MEMO_NAME, FILE_DIGEST_MEMO_FORMAT, type DigestCounts } from "./file-digests.js";
export type { GitState } from "./git-state.js";
