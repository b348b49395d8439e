import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { cp, mkdtemp, realpath, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join, relative, resolve, isAbsolute } from "node:path";
import { pipeline } from "node:stream/promises";
import { Readable, Transform } from "node:stream";
import { readSettings, refreshes } from "../config/index.js";
import { CachetError } from "../errors.js";
import { sha256Hex } from "../hash/index.js";
import { assertValidName, type CacheStore, type KeyLock, type WarningHandler } from "../store/index.js";
import { archiveFormatOf, SUPPORTED_EXTENSION_LIST } from "./archive-formats.js";
import { UnsupportedArchiveFormatError, unpackArchive } from "./archive-unpack.js";
import { DownloadIncompleteError, DownloadNetworkError, DownloadStatusError, OfflineMissError, Sha256MismatchError, SourceOptionError } from "./errors.js";
import type { FetchFunction } from "./http-cache.js";
import { answersStored, conditionalHeaders, endToEnd, keptPolicy, policyOf, policyRequestOf, storedPolicy } from "./response-policy.js";
import { defaultSourceStore, emitSourceWarning, reportSourceFailure } from "./source-store.js";
import { artifactNameOf, canonicalArtifactUrl, splitUrl } from "./source-urls.js";
import { assertLinkTargetClear } from "./link-target.js";

/** Progress of a download: bytes received so far, and the total when the server said it. */
export interface DownloadProgress {
  url: string;
  bytes: number;
  total: number | undefined;
}

/** Options of {@link fetchArtifact}. */
export interface FetchArtifactOptions {
  /** The sha256 (hex) the content must have: a mismatch is a `Sha256MismatchError` and nothing is kept. */
  sha256?: string | undefined;
  /** Unpack the archive (`.tar`, `.tar.gz`/`.tgz`, `.zip`) once into an immutable tree; `path` is then the tree. */
  unpack?: boolean | undefined;
  /** With `unpack`: refuse archives that expand past this many bytes (default the unpacker's, 20 GiB). */
  maxUnpackedBytes?: number | undefined;
  /** The entry name (`cachet cache ls NAME`); default the URL's last path segment. */
  name?: string | undefined;
  /** A directory to materialize the file (or the unpacked tree) in: clone, else hardlink, else copy, swapped whole. */
  linkTo?: string | undefined;
  /** Called as bytes arrive. */
  onProgress?: ((progress: DownloadProgress) => void) | undefined;
  /** The store; default `openConfiguredStore()` (the local cache, and the shared tier if configured), opened on first use. */
  store?: CacheStore | undefined;
  /** The network; default the global `fetch`. */
  fetch?: FetchFunction | undefined;
  /** Receives the one warning per process a cache that cannot be used gives. */
  onWarning?: WarningHandler | undefined;
  /** The environment settings are read from (`CACHET_OFFLINE`, `CACHET_REFRESH`); default `process.env`. */
  env?: NodeJS.ProcessEnv | undefined;
}

/** What {@link fetchArtifact} returns. */
export interface ArtifactResult {
  /** The downloaded file in the cache (read-only), or the unpacked tree's directory with `unpack`. */
  path: string;
  /** sha256 (hex) of the downloaded file. */
  sha256: string;
  /** Its size in bytes. */
  size: number;
  /** True when no download was needed (a stored response was fresh, pinned by `sha256`, or revalidated by a 304). */
  fromCache: boolean;
}

/** Format of an artifact's head entry (its HTTP metadata and where its content is). */
const ARTIFACT_HEAD_FORMAT = "cachet-artifact-head/1";

interface ArtifactHead {
  status: number;
  headers: [string, string][];
  mustRevalidate: boolean;
  policy: Record<string, unknown>;
  sha256: string;
  size: number;
  fileName: string;
}

/** Downloads stored or revalidated by this process: under `CACHET_REFRESH` they count as fresh. */
const refreshedHere = new Set<string>();

const headKey = (url: string) => `head ${url}`;
const fileKey = (url: string) => `file ${url}`;
const unpackedKey = (url: string, sha256: string) => `unpacked ${url} ${sha256}`;


/**
 * Downloads `url` once per canonical URL (credentials, fragment and trailing slash removed) under the HTTP
 * caching rules of `cachedFetch`, and returns a read-only file in the cache. One process downloads a URL at a
 * time (a lock per canonical URL); the others wait and reuse its download. With `sha256`, a mismatch is an error
 * naming both digests and nothing is kept. A cache that cannot be used downloads to a temporary directory
 * instead, with one warning.
 */
export async function fetchArtifact(url: string | URL, options: FetchArtifactOptions = {}): Promise<ArtifactResult> {
  const canonical = canonicalArtifactUrl(url);
  const { authorization } = splitUrl(url);
  const expected = options.sha256?.toLowerCase();
  if (expected !== undefined && !/^[0-9a-f]{64}$/.test(expected)) {
    throw new SourceOptionError(`fetchArtifact(${canonical}): sha256 must be 64 hexadecimal digits, got ${JSON.stringify(options.sha256)}`);
  }
  const name = options.name ?? artifactNameOf(canonical);
  assertValidName(name);
  // The file is named by the URL, or by the name given when only that one says which archive it is
  // (`/releases/assets/7` named `tool.tar.gz`).
  const urlFileName = artifactNameOf(canonical);
  const fileName = options.unpack && archiveFormatOf(urlFileName) === undefined && archiveFormatOf(name) !== undefined ? name : urlFileName;
  // Refuse an archive format that cannot be unpacked before downloading it.
  if (options.unpack && archiveFormatOf(fileName) === undefined) {
    throw new UnsupportedArchiveFormatError(fileName, SUPPORTED_EXTENSION_LIST);
  }
  if (options.linkTo !== undefined) assertLinkTargetClear(`fetchArtifact(${canonical})`, options.linkTo);
  const onWarning = options.onWarning ?? emitSourceWarning;
  const settings = readSettings({ env: options.env ?? process.env });
  const download: Download = {
    url: canonical,
    authorization,
    name,
    fileName,
    expected,
    network: options.fetch ?? globalThis.fetch,
    onProgress: options.onProgress,
    offline: settings.offline,
    refresh: refreshes(settings.refresh, name),
  };

  let store: CacheStore | undefined = options.store;
  if (store === undefined) {
    try {
      store = await defaultSourceStore(onWarning);
    } catch (error) {
      reportSourceFailure("open", error, (error as { root?: string }).root, onWarning);
    }
  }
  if (store === undefined) return downloadUncached(download, options);

  if (options.linkTo !== undefined) await assertOutsideCache(store.root, options.linkTo, canonical);
  let lock: KeyLock | undefined;
  try {
    lock = await store.lockKey(name, `download ${canonical}`);
  } catch (error) {
    reportSourceFailure("lock", error, store.root, onWarning);
  }
  try {
    const result = await downloadInto(store, download, onWarning);
    if (result === undefined) return downloadUncached(download, options);
    let path = result.path;
    let inStore = true;
    if (options.unpack) ({ path, stored: inStore } = await unpacked(store, download, result, options.maxUnpackedBytes, onWarning));
    if (options.linkTo !== undefined && inStore) await linkOut(store, name, options.unpack ? unpackedKey(canonical, result.sha256) : fileKey(canonical), options.linkTo);
    else if (options.linkTo !== undefined) await copyOut(path, options.linkTo);
    return { ...result, path };
  } finally {
    lock?.release();
  }
}

interface Download {
  url: string;
  authorization: string | undefined;
  name: string;
  fileName: string;
  expected: string | undefined;
  network: FetchFunction;
  onProgress: ((progress: DownloadProgress) => void) | undefined;
  offline: boolean;
  refresh: boolean;
}

/** The stored download if it may be used, else a (conditional) download into the store. Undefined: the store failed. */
async function downloadInto(store: CacheStore, download: Download, onWarning: WarningHandler): Promise<ArtifactResult | undefined> {
  const { url, name } = download;
  const request = new Headers();
  if (download.authorization !== undefined) request.set("authorization", download.authorization);
  const policyRequest = policyRequestOf(url, new URL(url).host, request);

  let head: ArtifactHead | undefined;
  let storedPath: string | undefined;
  try {
    head = await readHead(store, name, url);
    const dir = head && (await store.treePath(name, fileKey(url)));
    storedPath = dir === undefined || head === undefined ? undefined : join(dir, head.fileName);
  } catch (error) {
    reportSourceFailure("read", error, store.root, onWarning);
    return undefined;
  }
  const stored = head !== undefined && storedPath !== undefined ? { head, path: storedPath } : undefined;
  const matches = stored !== undefined && (download.expected === undefined || stored.head.sha256 === download.expected);
  if (stored && matches) {
    const result = { path: stored.path, sha256: stored.head.sha256, size: stored.head.size, fromCache: true };
    if (download.offline) return result;
    const policy = storedPolicy(stored.head.policy);
    // Pinned by its sha256, the download cannot change: any other answer from the origin would be refused.
    const fresh = download.expected !== undefined || !policy.stale() || (!stored.head.mustRevalidate && policy.evaluateRequest(policyRequest).revalidation === undefined);
    if (fresh && !(download.refresh && !refreshedHere.has(`${name}\0${url}`))) return result;
  }
  if (download.offline) throw new OfflineMissError(url, stored && `the download stored has sha256 ${stored.head.sha256}, not ${download.expected}`);

  const headers = stored && matches ? conditionalHeaders(storedPolicy(stored.head.policy), policyRequest, request) : request;
  const response = await requestDownload(download, headers);
  if (stored && matches && response.status === 304 && answersStored(stored.head.headers, response, request)) {
    const replaced = new Set([...response.headers.keys()].filter((header) => header !== "content-length" && header !== "content-encoding"));
    const merged: [string, string][] = stored.head.headers.filter(([header]) => !replaced.has(header));
    for (const pair of endToEnd(response.headers)) if (replaced.has(pair[0])) merged.push(pair);
    const { policy, mustRevalidate } = policyOf(policyRequest, stored.head.status, merged);
    await writeHead(store, name, url, { ...stored.head, headers: merged, mustRevalidate, policy: keptPolicy(policy, []) }, onWarning);
    refreshedHere.add(`${name}\0${url}`);
    return { path: stored.path, sha256: stored.head.sha256, size: stored.head.size, fromCache: true };
  }
  if (!isWholeFile(response)) {
    await response.body?.cancel();
    throw new DownloadStatusError(url, response.status);
  }

  const staging = await mkdtemp(join(tmpdir(), "cachet-download-"));
  try {
    const file = join(staging, download.fileName);
    const { sha256, size } = await saveResponse(response, file, download);
    const headers = endToEnd(response.headers);
    const { policy, mustRevalidate } = policyOf(policyRequest, response.status, headers);
    try {
      await store.putTree(name, fileKey(url), staging, { origin: "downloaded" });
      const head: ArtifactHead = { status: response.status, headers, mustRevalidate, policy: keptPolicy(policy, []), sha256, size, fileName: download.fileName };
      await writeHead(store, name, url, head, onWarning);
      const dir = await store.treePath(name, fileKey(url));
      refreshedHere.add(`${name}\0${url}`);
      if (dir !== undefined) return { path: join(dir, download.fileName), sha256, size, fromCache: false };
    } catch (error) {
      reportSourceFailure("write", error, store.root, onWarning);
    }
    return undefined;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** Streams the body to `file`, hashing and reporting progress; a mismatch with the expected digest throws. */
async function saveResponse(response: Response, file: string, download: Download): Promise<{ sha256: string; size: number }> {
  const hash = createHash("sha256");
  const length = Number(response.headers.get("content-length") ?? Number.NaN);
  const total = Number.isSafeInteger(length) && !response.headers.has("content-encoding") ? length : undefined;
  let size = 0;
  const count = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      size += chunk.byteLength;
      download.onProgress?.({ url: download.url, bytes: size, total });
      done(null, chunk);
    },
  });
  await pipeline(Readable.fromWeb(response.body! as import("node:stream/web").ReadableStream<Uint8Array>), count, createWriteStream(file, { mode: 0o444 }));
  const sha256 = hash.digest("hex");
  if (total !== undefined && size !== total) throw new DownloadIncompleteError(download.url, size, total);
  if (download.expected !== undefined && sha256 !== download.expected) throw new Sha256MismatchError(download.url, download.expected, sha256);
  return { sha256, size };
}

async function readHead(store: CacheStore, name: string, url: string): Promise<ArtifactHead | undefined> {
  const value = await store.getValue(name, headKey(url));
  if (value === undefined || value.format !== ARTIFACT_HEAD_FORMAT) return undefined;
  try {
    const head = JSON.parse(Buffer.from(value.data).toString("utf8")) as ArtifactHead;
    return typeof head.sha256 === "string" && Array.isArray(head.headers) && typeof head.fileName === "string" ? head : undefined;
  } catch {
    return undefined;
  }
}

async function writeHead(store: CacheStore, name: string, url: string, head: ArtifactHead, onWarning: WarningHandler): Promise<void> {
  try {
    await store.put(name, headKey(url), JSON.stringify(head), { origin: "downloaded", format: ARTIFACT_HEAD_FORMAT });
  } catch (error) {
    reportSourceFailure("write", error, store.root, onWarning);
  }
}

/**
 * The unpacked tree of a stored download: unpacked once (into staging, then stored as an immutable tree). A store
 * that fails to keep it leaves the caller the staging tree itself, with one warning.
 */
async function unpacked(store: CacheStore, download: Download, file: ArtifactResult, maxUnpackedBytes: number | undefined, onWarning: WarningHandler): Promise<{ path: string; stored: boolean }> {
  const key = unpackedKey(download.url, file.sha256);
  let existing: string | undefined;
  try {
    existing = await store.treePath(download.name, key);
  } catch (error) {
    reportSourceFailure("read", error, store.root, onWarning);
  }
  if (existing !== undefined) return { path: existing, stored: true };
  const staging = await mkdtemp(join(tmpdir(), "cachet-unpack-"));
  let kept = false;
  try {
    await unpackArchive(file.path, staging, { archiveName: download.fileName, ...(maxUnpackedBytes === undefined ? {} : { maxUnpackedBytes }) });
    let path: string | undefined;
    try {
      await store.putTree(download.name, key, staging, { origin: "downloaded" });
      path = await store.treePath(download.name, key);
    } catch (error) {
      reportSourceFailure("write", error, store.root, onWarning);
      kept = true;
      return { path: staging, stored: false };
    }
    if (path === undefined) throw new SourceOptionError(`fetchArtifact(${download.url}): the unpacked tree was removed while it was being stored; try again`);
    return { path, stored: true };
  } finally {
    if (!kept) await rm(staging, { recursive: true, force: true });
  }
}

/**
 * `linkTo` replaces its target whole: a target that is the cache root, inside it or above it would wipe what the
 * cache holds, so it is refused before anything is downloaded (symlinks resolved).
 */
async function assertOutsideCache(root: string, target: string, url: string): Promise<void> {
  const [cache, linked] = await Promise.all([realPathOf(root), realPathOf(target)]);
  const within = (outer: string, inner: string) => {
    const path = relative(outer, inner);
    return path === "" || (!path.startsWith("..") && !isAbsolute(path));
  };
  if (within(cache, linked) || within(linked, cache)) {
    throw new SourceOptionError(`fetchArtifact(${url}): linkTo ${target} is the cache at ${root}, inside it or above it; it would be replaced`);
  }
}

/** The real path of `path`, or of its nearest existing ancestor with the rest appended. */
async function realPathOf(path: string): Promise<string> {
  const absolute = resolve(path);
  try {
    return await realpath(absolute);
  } catch {
    const parent = dirname(absolute);
    return parent === absolute ? absolute : join(await realPathOf(parent), basename(absolute));
  }
}

/** Materializes a stored tree at `target`, under a lock on the target so two processes never interleave there. */
const LINK_LOCKS = "cachet-link-targets";

async function linkOut(store: CacheStore, name: string, key: string, target: string): Promise<void> {
  const absolute = resolve(target);
  // One lock per target whatever is linked there: two artifacts restored into one directory take turns too.
  const lock = await store.lockKey(LINK_LOCKS, sha256Hex(absolute));
  try {
    await store.linkTree(name, key, absolute, { purpose: "source", replace: true });
  } finally {
    lock.release();
  }
}

/** The download's request; a network failure becomes a `DownloadNetworkError` naming the URL. */
async function requestDownload(download: Download, headers: Headers): Promise<Response> {
  try {
    return await download.network(download.url, { headers });
  } catch (error) {
    if (error instanceof CachetError) throw error;
    throw new DownloadNetworkError(download.url, error);
  }
}

/**
 * With no usable cache: the download goes to a temporary directory, still checked against its sha256, unpacked
 * there with `unpack`, and copied to `linkTo` (replacing what was there), so the caller gets what it asked for.
 */
async function downloadUncached(download: Download, options: FetchArtifactOptions): Promise<ArtifactResult> {
  if (download.offline) throw new OfflineMissError(download.url);
  const headers = new Headers();
  if (download.authorization !== undefined) headers.set("authorization", download.authorization);
  const response = await requestDownload(download, headers);
  if (!isWholeFile(response)) {
    await response.body?.cancel();
    throw new DownloadStatusError(download.url, response.status);
  }
  const dir = await mkdtemp(join(tmpdir(), "cachet-download-"));
  const path = join(dir, download.fileName);
  let tree: string | undefined;
  try {
    const { sha256, size } = await saveResponse(response, path, download);
    if (options.unpack) {
      tree = await mkdtemp(join(tmpdir(), "cachet-unpack-"));
      await unpackArchive(path, tree, { archiveName: download.fileName, ...(options.maxUnpackedBytes === undefined ? {} : { maxUnpackedBytes: options.maxUnpackedBytes }) });
    }
    if (options.linkTo !== undefined) await copyOut(tree ?? dir, options.linkTo);
    return { path: tree ?? path, sha256, size, fromCache: false };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    if (tree !== undefined) await rm(tree, { recursive: true, force: true });
    throw error;
  }
}

/** Without the store: a copy of `source` (a directory) replaces `target`. */
async function copyOut(source: string, target: string): Promise<void> {
  await rm(target, { recursive: true, force: true });
  await cp(source, target, { recursive: true });
}

/** A response that carries a whole file: a success with a body, not a part of one (206 to a plain request). */
function isWholeFile(response: Response): boolean {
  return response.ok && response.status !== 206 && response.body !== null;
}
