import { rm } from "node:fs/promises";
import { resolve as resolvePath } from "node:path";
import { readSettings, refreshes, type Settings } from "../config/index.js";
import { sha256Hex } from "../hash/index.js";
import { openConfiguredStore } from "../open-store.js";
import { assertValidName, openStore, type CacheStore, type LinkTally, type StoreWarning, type WarningHandler } from "../store/index.js";
import { GIT_DATABASE_COMPONENT, gitStagingPath } from "../store/git-databases.js";
import { GitDatabase } from "./git-database.js";
import { GitCheckoutError, GitCommandError, GitFetchError, GitOfflineError, GitRefError, GitRefNotFoundError } from "./git-errors.js";
import { parseGitRemote, type GitRemote } from "./git-url.js";
import { assertLinkTargetClear } from "./link-target.js";

/** Options of {@link gitSource}. */
export interface GitSourceOptions {
  /** A branch, a tag, a full or abbreviated commit, or a full ref name (`refs/pull/1/head`); default the remote's HEAD. */
  ref?: string | undefined;
  /** The entry name in the cache (what `cachet cache clean NAME` takes); default the repository's name. */
  name?: string | undefined;
  /** Also materialize the checkout at this path (replacing what is there), for a writable copy. */
  linkTo?: string | undefined;
  /** The cache to use; default one opened per process (`openConfiguredStore()`). */
  store?: CacheStore | undefined;
  /** Receives the warning when the default cache cannot be opened (default `process.emitWarning`). */
  onWarning?: WarningHandler | undefined;
  /** Settings (offline, refresh); default `readSettings()` at the call. */
  settings?: Settings | undefined;
  /** Bound of each git command, in ms (above 0; `Infinity` for none); default 10 minutes. */
  timeoutMs?: number | undefined;
}

/** What {@link gitSource} returns. */
export interface GitSourceResult {
  /** The full commit the ref resolved to (40 hex digits; 64 for a SHA-256 repository). */
  commit: string;
  /** The checkout of that commit in the cache: read-only, not to be written to. */
  path: string;
  /** The entry name it is cached under. */
  name: string;
  /** The URL as cachet keys it: no credentials, no `.git` suffix or trailing slash, lower-cased scheme and host. */
  url: string;
  /** True when the checkout was already in the cache (nothing was exported). */
  fromCache: boolean;
  /** True when the remote was contacted (a fetch ran). */
  fetched: boolean;
  /** With `linkTo`: what was restored there. */
  linked?: LinkTally | undefined;
}

/** The key components of a git source's entry (what `cachet cache explain` shows). */
export interface GitSourceComponents {
  source: "git";
  url: string;
  ref: string;
  commit: string;
  /** The repository database (sha256 of `url`); `prune` and `clean` keep a database while an entry names it. */
  gitDatabase: string;
}

const DEFAULT_TIMEOUT_MS = 10 * 60_000;
const FULL_COMMIT = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/i;
const SHORT_COMMIT = /^[0-9a-f]{7,63}$/i;
/** Everything from the remote, kept where a short commit's `rev-parse` cannot mistake it for a ref of that name. */
const ALL_REFS = ["+refs/heads/*:refs/cachet/all/heads/*", "+refs/tags/*:refs/cachet/all/tags/*"];

/**
 * A git repository at one commit, checked out in the cache. `ref` (a branch, tag, short or full commit; default
 * the remote's HEAD) is resolved to a full commit with the system `git`, in one bare repository database per
 * canonical URL; the commit's files are stored once as a tree entry (key: the commit; origin `downloaded`).
 *
 * - A full commit already in the cache needs no network, nor any git command.
 * - A branch or tag is resolved from the remote at every call (a branch moves), except offline
 *   (`CACHET_OFFLINE`, `--offline`), where the answer of the last fetch is used; a ref never fetched is then a
 *   {@link GitOfflineError}. A short commit already in the database is used without the network unless the
 *   name is refreshed (`CACHET_REFRESH`, `--refresh`, `--refresh-package NAME`).
 * - Processes fetching one repository take turns (a lock per repository); credentials in the URL are used for
 *   the fetch and never written to the cache.
 */
export async function gitSource(url: string, options: GitSourceOptions = {}): Promise<GitSourceResult> {
  const remote = parseGitRemote(url);
  const ref = options.ref;
  if (ref !== undefined) assertValidRef(ref, remote);
  const name = options.name ?? remote.repositoryName;
  assertValidName(name);
  if (options.linkTo !== undefined) assertLinkTargetClear(`gitSource(${remote.display})`, options.linkTo);
  const settings = options.settings ?? readSettings();
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (typeof timeoutMs !== "number" || !(timeoutMs > 0)) {
    throw new RangeError(`timeoutMs must be a number of milliseconds above 0, or Infinity (got ${String(timeoutMs)})`);
  }
  const store = options.store ?? (await defaultSourceStore(options.onWarning));
  const full = ref !== undefined && FULL_COMMIT.test(ref) ? ref.toLowerCase() : undefined;

  let result: GitSourceResult | undefined;
  if (full !== undefined) {
    const path = await store.treePath(name, full);
    if (path !== undefined) result = { commit: full, path, name, url: remote.canonical, fromCache: true, fetched: false };
  }
  let holder = store;
  if (result === undefined) {
    const warn = (code: string, message: string) => warnOnce(options.onWarning, code, message);
    const request: CheckoutRequest = { ref, full, name, settings, timeoutMs, warn };
    try {
      result = await lockedCheckout(store, remote, request);
    } catch (error) {
      const temporary = isCacheWriteFailure(error) ? await temporarySourceStore(options.onWarning).catch(() => undefined) : undefined;
      if (temporary === undefined || temporary === store) throw error;
      // The cache cannot hold the database or the export (a full disk, a read-only root): a temporary cache of
      // this process holds them instead, and the caller still gets its checkout.
      // When the temporary cache fails too (offline with nothing in it, a repository git refuses to write), the
      // first failure says more.
      result = await lockedCheckout(temporary, remote, request).catch((): Promise<GitSourceResult> => Promise.reject(error));
      holder = temporary;
      warn("CACHET_CACHE_WRITE_FAILED", `cachet: could not check out ${name}/${result.commit} in the cache (${messageOf(error)}); using a temporary cache for this process`);
    }
  }
  if (options.linkTo !== undefined) result.linked = await linkCheckout(holder, result, options.linkTo);
  return result;
}

/** {@link checkout} under the repository's lock; a lock that cannot be taken is one warning, and no lock. */
async function lockedCheckout(store: CacheStore, remote: GitRemote, request: CheckoutRequest): Promise<GitSourceResult> {
  const lock = await store.lockKey("git", remote.id).catch((error: unknown) => {
    request.warn("CACHET_CACHE_LOCK_FAILED", `cachet: could not take the lock of git repository ${remote.display} (${messageOf(error)}); fetching without it`);
    return undefined;
  });
  try {
    return await checkout(store, remote, request);
  } finally {
    lock?.release();
  }
}

const WRITE_FAILURES = new Set(["ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "EIO"]);

/**
 * Whether `error` says the cache could not be written rather than anything about the repository: a local git
 * command on the database failed (init, read-tree, checkout-index), the file system refused a write, or a fetch
 * could not write what it received.
 */
function isCacheWriteFailure(error: unknown): boolean {
  if (error instanceof GitCommandError || error instanceof GitCheckoutError) return true;
  if (error instanceof GitFetchError) return /no space left|read-only file system|disk quota/i.test(error.message);
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === "string" && WRITE_FAILURES.has(code);
}

interface CheckoutRequest {
  ref: string | undefined;
  full: string | undefined;
  name: string;
  settings: Settings;
  timeoutMs: number;
  warn: (code: string, message: string) => void;
}

/** Resolves the commit and makes sure its checkout is in the cache; runs under the repository's lock. */
async function checkout(store: CacheStore, remote: GitRemote, request: CheckoutRequest): Promise<GitSourceResult> {
  const started = performance.now();
  const database = new GitDatabase(store.root, remote, request.timeoutMs);
  const { commit, fetched } = await resolveCommit(database, remote, request);
  const base = { commit, name: request.name, url: remote.canonical, fetched };
  const cached = await store.treePath(request.name, commit);
  if (cached !== undefined) return { ...base, path: cached, fromCache: true };
  const staging = gitStagingPath(store.root, "git-checkout");
  let kept = false;
  try {
    await database.exportTree(commit, staging);
    const components = {
      source: "git",
      url: remote.canonical,
      ref: request.ref ?? "HEAD",
      commit,
      gitDatabase: remote.id,
    } satisfies GitSourceComponents & Record<typeof GIT_DATABASE_COMPONENT, string>;
    try {
      await store.putTree(request.name, commit, staging, { origin: "downloaded", components, costMs: performance.now() - started });
    } catch (error) {
      // The cache cannot take the checkout (a full disk, a damaged index): the export itself is whole, so the
      // caller gets it from `tmp/`, uncached, where it stays until the next `prune` once this process is gone.
      request.warn("CACHET_CACHE_WRITE_FAILED", `cachet: could not store the checkout ${request.name}/${commit} (${messageOf(error)}); using it uncached`);
      kept = true;
      return { ...base, path: staging, fromCache: false };
    }
  } finally {
    if (!kept) await rm(staging, { recursive: true, force: true });
  }
  const path = await store.treePath(request.name, commit);
  if (path === undefined) throw new GitCheckoutError(request.name, commit);
  return { ...base, path, fromCache: false };
}

/**
 * The full commit `ref` names. The remote is asked (a fetch into the database) unless the answer cannot change
 * (a full commit it holds), is allowed from the database (a short commit it holds, unless refreshed), or the
 * network is off.
 */
async function resolveCommit(
  database: GitDatabase,
  remote: GitRemote,
  { ref, full, name, settings }: CheckoutRequest,
): Promise<{ commit: string; fetched: boolean }> {
  const label = ref ?? "HEAD";
  if (full !== undefined) {
    if ((await database.resolve(full)) === full) return { commit: full, fetched: false };
    if (settings.offline) throw new GitOfflineError(remote.display, label);
    await database.fetch(ALL_REFS);
    if ((await database.resolve(full)) === full) return { commit: full, fetched: true };
    // Servers that allow fetching by id (uploadpack.allowReachableSHA1InWant, most hosts) serve a commit no branch or tag points at.
    await database.fetch([`+${full}:refs/cachet/commits/${full}`]);
    if ((await database.resolve(full)) === full) return { commit: full, fetched: true };
    throw new GitRefNotFoundError(remote.display, label);
  }
  // Where the remote's last answer for this ref is kept: a ref of its own, so `label` need not be a valid ref name here.
  const answer = `refs/cachet/refs/${sha256Hex(label).slice(0, 32)}`;
  const shortCommit = ref !== undefined && SHORT_COMMIT.test(ref);
  if (settings.offline) {
    const commit = (await database.resolve(answer)) ?? (shortCommit ? await database.resolve(ref.toLowerCase()) : undefined);
    if (commit !== undefined) return { commit, fetched: false };
    throw new GitOfflineError(remote.display, label);
  }
  if (shortCommit && !refreshes(settings.refresh, name)) {
    const known = await database.resolve(ref.toLowerCase());
    if (known !== undefined) return { commit: known, fetched: false };
  }
  if ((await database.fetch([`+${label}:${answer}`])) === "fetched") {
    const commit = await database.resolve(answer);
    if (commit !== undefined) return { commit, fetched: true };
  }
  if (shortCommit) {
    await database.fetch(ALL_REFS);
    const commit = await database.resolve(ref.toLowerCase());
    if (commit !== undefined) return { commit, fetched: true };
  }
  throw new GitRefNotFoundError(remote.display, label);
}

/** Restores the checkout at `target` for read-only use (clone, else hard link, else copy), under a lock on the target. */
async function linkCheckout(store: CacheStore, result: GitSourceResult, target: string): Promise<LinkTally> {
  const absolute = resolvePath(target);
  const lock = await store.lockKey("cachet-link-target", absolute);
  try {
    const tally = await store.linkTree(result.name, result.commit, absolute, { purpose: "source", replace: true });
    if (tally === undefined) throw new GitCheckoutError(result.name, result.commit);
    return tally;
  } finally {
    lock.release();
  }
}

/**
 * Refuses what git would read as an option or a refspec (`-x`, `a:b`, `*`), and what no ref name can hold (git's
 * `check-ref-format` rules: no component starting with `.` or ending with `.lock`, no trailing `.`).
 */
function assertValidRef(ref: unknown, remote: GitRemote): asserts ref is string {
  const reason =
    typeof ref !== "string"
      ? `expected a string, got ${typeof ref}`
      : ref === ""
        ? "it is empty"
        : ref.startsWith("-")
          ? "it starts with '-'"
          : /[\u0000-\u0020\u007f~^:?*[\\]|\.\.|@\{|\/\/|\.lock(?:\/|$)|(?:^|\/)\.|\.$|^\/|\/$/.test(ref)
            ? "it is not a valid branch, tag or commit name"
            : undefined;
  if (reason !== undefined) throw new GitRefError(remote.display, String(ref), reason);
}

let sharedStore: Promise<CacheStore> | undefined;
const warned = new Set<string>();

/** Reports a cache problem once per process per code; a throwing handler does not stop the source. */
function warnOnce(onWarning: WarningHandler | undefined, code: string, message: string): void {
  if (warned.has(code)) return;
  warned.add(code);
  try {
    (onWarning ?? ((warning: StoreWarning) => process.emitWarning(warning.message, { code: warning.code })))({ code, message });
  } catch {
    // The source goes on.
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The store git sources use without their own, opened once per process and held (so a checkout's path stays
 * valid: `clean` and `prune` wait for the process). A cache that cannot be opened becomes a temporary one for
 * this process, with one warning: the source is still fetched.
 */
function defaultSourceStore(onWarning: WarningHandler | undefined): Promise<CacheStore> {
  sharedStore ??= openConfiguredStore({ onWarning }).catch(async (error: unknown) => {
    warnOnce(onWarning, "CACHET_CACHE_UNAVAILABLE", `cachet: the cache cannot be used (${messageOf(error)}); git sources use a temporary cache for this process`);
    return temporarySourceStore(onWarning);
  });
  return sharedStore;
}

let temporaryStore: Promise<CacheStore> | undefined;

/** A temporary cache for this process (`noCache`), opened once, for when the real one cannot be used or written. */
function temporarySourceStore(onWarning: WarningHandler | undefined): Promise<CacheStore> {
  temporaryStore ??= openStore({ noCache: true, onWarning });
  return temporaryStore;
}
