import { CachetError } from "../errors.js";

/**
 * The failures of sources, one class per failure class. Each names what it is about (the URL, the expected and
 * actual digests) in one line; URLs in messages never carry credentials.
 */

/**
 * `CACHET_OFFLINE` is on and nothing usable is stored for the URL: the network is disabled, so there is no answer.
 * `stored` says what is stored instead when there is something (a download with another sha256).
 */
export class OfflineMissError extends CachetError {
  readonly code = "CACHET_OFFLINE_MISS";
  constructor(
    readonly url: string,
    stored?: string,
  ) {
    super(`the network is disabled (CACHET_OFFLINE / --offline) and ${stored ?? "nothing is stored"} for ${url}; run once online, or unset CACHET_OFFLINE`);
  }
}

/** A download's content does not have the sha256 it was asked to have; nothing was kept. */
export class Sha256MismatchError extends CachetError {
  readonly code = "CACHET_SHA256_MISMATCH";
  constructor(
    readonly url: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`sha256 mismatch for ${url}: expected ${expected}, got ${actual}; nothing was kept`);
  }
}

/** The server answered a download with a status that is not a success (404, 500, …). */
export class DownloadStatusError extends CachetError {
  readonly code = "CACHET_DOWNLOAD_STATUS";
  constructor(
    readonly url: string,
    readonly status: number,
  ) {
    super(`download of ${url} failed: the server answered ${status}`);
  }
}

/** A download could not reach the server (refused, unreachable, reset); `cause` is the network's own error. */
export class DownloadNetworkError extends CachetError {
  readonly code = "CACHET_DOWNLOAD_NETWORK";
  constructor(
    readonly url: string,
    cause: unknown,
  ) {
    // fetch rejects with a bare "fetch failed" whose cause says why (connect ECONNREFUSED 127.0.0.1:9).
    const reason = (cause as { cause?: { message?: unknown } } | undefined)?.cause?.message ?? (cause as { message?: unknown } | undefined)?.message;
    super(`download of ${url} failed: ${typeof reason === "string" && reason !== "" ? reason : String(cause)}`, { cause });
  }
}

/** A download ended before the length the server announced; nothing was kept. */
export class DownloadIncompleteError extends CachetError {
  readonly code = "CACHET_DOWNLOAD_INCOMPLETE";
  constructor(
    readonly url: string,
    readonly received: number,
    readonly expected: number,
  ) {
    super(`download of ${url} ended after ${received} of ${expected} bytes; nothing was kept`);
  }
}

/** A URL that cannot be fetched: not parseable, or not http(s). */
export class SourceUrlError extends CachetError {
  readonly code = "CACHET_BAD_URL";
  constructor(url: string, reason: string) {
    super(`cannot fetch ${url}: ${reason}`);
  }
}

/** An option of a source call that is not valid (a sha256 that is not 64 hex digits, an unknown unpack format). */
export class SourceOptionError extends CachetError {
  readonly code = "CACHET_BAD_SOURCE_OPTION";
}
