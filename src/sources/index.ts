/**
 * The sources layer: local files and directories keyed by their cache keys (`localSource`, and the key
 * computation `cachet run` uses). It uses the store only through the `CacheStore` interface.
 */
export * from "./cache-keys.js";
export { computeCacheKey, cacheKeyOf, type CacheKeyOptions, type CacheKeyResult } from "./cache-keys.js";
export { localSource, LocalSource, type LocalSourceOptions } from "./local-source.js";
export { CacheKeySpecError, CacheKeyReadError, GitStateError, LocalSourceError } from "./errors.js";
export { explainCacheKeyEntry, cacheKeyComponentsOf, type CacheKeyExplanation } from "./cache-key-explain.js";
