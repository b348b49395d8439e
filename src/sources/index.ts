export { cachedFetch, createCachedFetch } from "./http-cache.js";
export type { CachedFetchOptions, FetchFunction, CachedRequestInit, CacheMode } from "./http-cache.js";
export { OfflineMissError, Sha256MismatchError, DownloadStatusError, DownloadIncompleteError, SourceUrlError, SourceOptionError } from "./errors.js";
export { canonicalArtifactUrl } from "./source-urls.js";
export { fetchArtifact } from "./artifacts.js";
export type { FetchArtifactOptions, ArtifactResult, DownloadProgress } from "./artifacts.js";
