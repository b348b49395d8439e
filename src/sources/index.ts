/**
 * The sources layer: local files and directories keyed by their cache keys (`localSource`, and the key
 * computation `cachet run` uses). It uses the store only through the `CacheStore` interface.
 */
export * from "./cache-keys.js";
export { CacheKeySpecError, CacheKeyReadError, GitStateError, LocalSourceError } from "./errors.js";
