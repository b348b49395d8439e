export { cachedFetch, createCachedFetch } from "./http-cache.js";
export type { CachedFetchOptions, FetchFunction, CachedRequestInit, CacheMode } from "./http-cache.js";
export { OfflineMissError, Sha256MismatchError, DownloadStatusError, DownloadNetworkError, DownloadIncompleteError, SourceUrlError, SourceOptionError } from "./errors.js";
export { canonicalArtifactUrl } from "./source-urls.js";
export { fetchArtifact } from "./artifacts.js";
export type { FetchArtifactOptions, ArtifactResult, DownloadProgress } from "./artifacts.js";
export { gitSource } from "./git-source.js";
export type { GitSourceOptions, GitSourceResult, GitSourceComponents } from "./git-source.js";
export { parseGitRemote, redactUrl } from "./git-url.js";
export type { GitRemote } from "./git-url.js";
export { GitUrlError, GitNotInstalledError, GitFetchError, GitRefNotFoundError, GitOfflineError, GitCommandError, GitRefError, GitCheckoutError } from "./git-errors.js";
export { explainGitSource, asGitSourceComponents } from "./git-explain.js";
export type { GitSourceExplanation, GitSourceChange } from "./git-explain.js";
// Unpacking downloaded archives (`.tar`, `.tar.gz`/`.tgz`, `.zip`) under the hostile-archive rules.
export {
  unpackArchive,
  archiveFormatOf,
  SUPPORTED_ARCHIVE_FORMATS,
  DEFAULT_MAX_UNPACKED_BYTES,
  UnsupportedArchiveFormatError,
  UnsafeArchiveEntryError,
  ArchiveTooLargeError,
  CorruptArchiveError,
  UnsupportedArchiveEntryError,
  ArchiveDestinationError,
} from "./archive-unpack.js";
export type { ArchiveFormat, SupportedArchiveFormat, UnpackOptions, UnpackedTally } from "./archive-unpack.js";
// Local files and directories keyed by their cache keys (`localSource`, and the key computation `cachet run` uses).
export * from "./cache-keys.js";
export { CacheKeySpecError, CacheKeyReadError, GitStateError, LocalSourceError } from "./cache-key-errors.js";
