import type { Readable } from "node:stream";
import type { BlobSource } from "./blobs.js";
import type { Origin, Storage } from "./index-rows.js";
import type { LinkTally, RestorePurpose } from "./link-out.js";
import type { LockWaitHandler } from "./locks.js";

/** Options of a write. */
export interface PutOptions {
  /** `computed` (default) for work done here, `downloaded` for fetched content (`prune --ci` drops those). */
  origin?: Origin | undefined;
  /** How long making the value took, in ms, so pruning and reports can weigh it. */
  costMs?: number | undefined;
  /** Identifier of the value's encoding (e.g. `cachet-value/1`); readers treat unknown formats as misses. */
  format?: string | undefined;
  /** JSON-serializable description of what the key was made of, for `explain`. */
  components?: unknown;
}

/** Options of {@link CacheStore.putTree}. */
export interface PutTreeOptions extends PutOptions {
  /**
   * `dir` stays where it is as the tree's restored copy (a command's output): remember what it looks like, so a
   * later `linkTree` into it with `keepUnchanged` leaves it alone while it is unchanged. Implementations without
   * this ability ignore it (the later restore then simply restores).
   */
  stampSource?: boolean | undefined;
}

/** Options of {@link CacheStore.linkTree}. */
export interface LinkTreeOptions {
  /** Replace whatever is at the target (swapped by rename, never left mixed). */
  replace?: boolean | undefined;
  /** `output` (default): may be rewritten in place, so never hard-linked unless forced; `source`: read-only use. */
  purpose?: RestorePurpose | undefined;
  /** Called per file restored, for progress. */
  onFile?: ((relativePath: string, bytes: number) => void) | undefined;
  /**
   * Leave the target alone when it still is this tree as the last restore (or a `putTree` with `stampSource`)
   * left it, judged by an `lstat` of each entry (inode, mode, size, mtime, ctime); the tally then has `kept`.
   * Implementations without this ability ignore it and restore.
   */
  keepUnchanged?: boolean | undefined;
}

/** Options of {@link CacheStore.lockKey}. */
export interface LockKeyOptions {
  /** Called once if the lock is held elsewhere and the call starts waiting. */
  onWait?: LockWaitHandler | undefined;
  /** Seconds to wait before failing with `LockTimeoutError`; default the store's lock timeout. */
  timeoutSeconds?: number | undefined;
}

/** An entry's catalog row. */
export interface EntryInfo {
  name: string;
  key: string;
  storage: Storage;
  /** sha256 hex of the content (the tree digest for trees). */
  digest: string;
  size: number;
  origin: Origin;
  costMs: number;
  createdAt: Date;
  lastUsedAt: Date;
  format: string | undefined;
}

/** An entry's content with what a reader needs to judge it (see {@link CacheStore.getValue}). */
export interface StoredValue {
  data: Uint8Array;
  /** The writer's format identifier, if it gave one. */
  format: string | undefined;
  /** When the entry was written, in ms since the epoch. */
  createdAt: number;
}

/** A lock held on one key (see {@link CacheStore.lockKey}). */
export interface KeyLock {
  release(): void;
}

/**
 * The store that tasks (and other layers above the store) use: entries addressed by `(name, key)` holding a
 * value, a stream's bytes or a directory tree, plus per-key locks. `Store` (`openStore`) is the local
 * implementation; others (a remote tier, a two-tier composition) keep the same contract:
 *
 * - **Never wrong data.** A read returns exactly the bytes, tree and metadata that were written for that
 *   `(name, key)`, or a miss (`undefined`). Content that fails its check is dropped and reported, not returned.
 * - **Whole or absent.** A write is visible only once its content is complete; a reader never sees part of it.
 *   A tree restored by `linkTree` is swapped in whole.
 * - **Errors.** Misuse and known failures (a closed store, an invalid name or key, the wrong kind of entry, a
 *   lock timeout, a full disk) are `CachetError`s with a stable `code` and a one-line message. Callers that must
 *   not fail (the task runner) still treat anything a store throws as a miss.
 * - **Names and keys** are checked by every method (`assertValidName`; a key is any non-empty string) before
 *   anything is read or written.
 * - **`close()`** writes what is pending and releases what the store holds; it is idempotent, and every other
 *   method fails with `StoreClosedError` afterwards.
 */
export interface CacheStore {
  /** Where the cache lives, for messages (the cache root of a local store). */
  readonly root: string;

  /**
   * For a store in front of a shared tier: this machine's own store, where entries that only mean something on
   * this machine are kept (the file-stat memo of cache keys holds inode numbers and times). Absent on a store
   * that is itself local.
   */
  readonly local?: CacheStore | undefined;

  /** Writes (or replaces) an entry from bytes (a string is written as UTF-8). */
  put(name: string, key: string, data: Uint8Array | string, options?: PutOptions): Promise<EntryInfo>;

  /** Writes (or replaces) an entry from a stream of chunks, in constant memory. */
  putStream(name: string, key: string, source: BlobSource | Readable, options?: PutOptions): Promise<EntryInfo>;

  /**
   * An entry's bytes with their format and creation time, or undefined on a miss; counts as a use. Fails with
   * `EntryKindError` on a tree entry.
   */
  getValue(name: string, key: string): Promise<StoredValue | undefined>;

  /**
   * A stream of an entry's bytes, checked as it is read (the stream errors on corruption, and the entry is
   * dropped), or undefined on a miss. Fails with `EntryKindError` on a tree entry.
   */
  getStream(name: string, key: string): Promise<Readable | undefined>;

  /** Stores a copy of the directory `dir` as a tree entry; later edits to `dir` cannot reach the cache. */
  putTree(name: string, key: string, dir: string, options?: PutTreeOptions): Promise<EntryInfo>;

  /**
   * Materializes a tree entry at `target` for its `purpose` (see {@link LinkTreeOptions}), holding a lock on the
   * target so concurrent restores into it take turns, or returns undefined
   * on a miss (a tree changed in the cache since it was stored is a miss too). Fails with `EntryKindError` on a
   * value entry.
   */
  linkTree(name: string, key: string, target: string, options?: LinkTreeOptions): Promise<LinkTally | undefined>;

  /**
   * The directory of a tree entry inside the cache, for read-only use in place (an unpacked archive, a git
   * checkout), or undefined on a miss; counts as a use. The tree is checked against its manifest first (a `stat`
   * per file), so a tree changed since it was stored is a miss and is dropped. The caller must not write to it.
   * Fails with `EntryKindError` on a value entry.
   */
  treePath(name: string, key: string): Promise<string | undefined>;

  /** The catalog row of an entry without reading its content, or undefined. Does not count as a use. */
  info(name: string, key: string): EntryInfo | undefined;

  /** The key components recorded by the writer of an entry (see {@link PutOptions.components}), or undefined. */
  components(name: string, key: string): unknown;

  /** Removes an entry; true if there was one. */
  delete(name: string, key: string): Promise<boolean>;

  /** Entries, most recently used first, optionally of one name. Safe to interleave with other calls. */
  list(name?: string): AsyncIterableIterator<EntryInfo>;

  /**
   * Takes a per-key exclusive lock across processes (compute once), waiting while another holder has it; released
   * by {@link KeyLock.release} or the holder's death. Reads made after it returns see what the previous holder wrote.
   */
  lockKey(name: string, key: string, options?: LockKeyOptions): Promise<KeyLock>;

  /** Writes what is pending and releases what the store holds. Idempotent. */
  close(): Promise<void>;
}

/** The methods of {@link CacheStore}; the type makes this list complete. */
const CACHE_STORE_METHODS: Record<{ [K in keyof CacheStore]-?: NonNullable<CacheStore[K]> extends Function ? K : never }[keyof CacheStore], true> = {
  put: true,
  putStream: true,
  getValue: true,
  getStream: true,
  putTree: true,
  linkTree: true,
  treePath: true,
  info: true,
  components: true,
  delete: true,
  list: true,
  lockKey: true,
  close: true,
};

/** The members of {@link CacheStore} that `value` lacks (all of them for a non-object); empty for a store. */
export function missingCacheStoreMembers(value: unknown): string[] {
  const candidate = (typeof value === "object" && value !== null ? value : {}) as Record<string, unknown>;
  const missing = Object.keys(CACHE_STORE_METHODS).filter((method) => typeof candidate[method] !== "function");
  return typeof candidate.root === "string" ? missing : ["root", ...missing];
}

/** True for an object with every method of {@link CacheStore} and a string `root`. */
export function isCacheStore(value: unknown): value is CacheStore {
  return missingCacheStoreMembers(value).length === 0;
}
