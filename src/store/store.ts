import { stat } from "node:fs/promises";
import { Readable } from "node:stream";
import { createHash } from "node:crypto";
import { sha256Hex } from "../hash/index.js";
import { CachetError } from "../errors.js";
import { removeTemporaryRoot, resolveCacheDir, type CacheDirRequest, type ResolvedCacheDir } from "./cache-dir.js";
import { assertValidKey, assertValidName } from "./entry-name.js";
import { BlobIntegrityError, asWriteError } from "./errors.js";
import { EntryIndex, type IndexRow, type RecoveredRow, type Storage } from "./entry-index.js";
import { CacheLayout } from "./layout.js";
import { FileLock, lockTimeoutFromEnv, type LockWaitHandler } from "./locks.js";
import { RootLock } from "./root-lock.js";
import { replacedIndexWarning } from "./index-warnings.js";
import { readBlob, streamBlob, writeBlob, type BlobSource } from "./blobs.js";
import {
  assertTargetOutsideCache,
  emitProcessWarning,
  linkModeFromEnv,
  linkTreeOut,
  type LinkMode,
  type LinkTally,
  type RestorePurpose,
  type WarningHandler,
} from "./link-out.js";
import { publishTree } from "./tree-publish.js";
import type { CacheStore, EntryInfo, KeyLock, LinkTreeOptions, LockKeyOptions, PutOptions, PutTreeOptions, StoredValue } from "./cache-store.js";
import { removeStamp, samePaths, statPaths, statWalk, targetHoldsTree, writeStamp } from "./restore-stamps.js";
import { loadTreeManifest } from "./tree-rebuild.js";
import { checkTree } from "./tree-manifest.js";

/** Values up to this size live in the index itself; larger ones become blobs. */
export const INLINE_LIMIT = 16 * 1024;

/** Options of {@link openStore}. */
export interface StoreOptions extends CacheDirRequest {
  /** Seconds to wait for the cache while `clean`/`prune` hold it. Default `CACHET_LOCK_TIMEOUT` or 300. */
  lockTimeout?: number | undefined;
  /** Force a link mode for trees; default `CACHET_LINK_MODE` or automatic. */
  linkMode?: LinkMode | undefined;
  /** Receives integrity and link warnings; default `process.emitWarning`. */
  onWarning?: WarningHandler | undefined;
  /** Called once if opening has to wait for another process's `clean` or `prune`. */
  onLockWait?: LockWaitHandler | undefined;
}

/** An entry with its content. */
export interface Entry extends EntryInfo {
  data: Uint8Array;
}

/** `get` on an entry whose content is a tree (use `linkTree`), or `linkTree` on a value entry. */
export class EntryKindError extends CachetError {
  readonly code = "CACHET_ENTRY_KIND";
  constructor(name: string, key: string, actual: Storage, wanted: string) {
    super(`entry ${name}/${key} holds a ${actual}; use ${wanted}`);
  }
}

/**
 * Opens (creating if needed) the cache root and holds it shared until {@link Store.close}, so `cache clean`
 * and `cache prune` wait for this process instead of pulling entries from under it.
 */
export async function openStore(options: StoreOptions = {}): Promise<Store> {
  const resolved = resolveCacheDir(options);
  const layout = new CacheLayout(resolved.path);
  const timeoutSeconds = options.lockTimeout ?? lockTimeoutFromEnv(options.env);
  const linkMode = options.linkMode ?? linkModeFromEnv(options.env);
  const onWarning = options.onWarning ?? emitProcessWarning;
  layout.ensure();
  const rootLock = await RootLock.acquire(layout.lockFile, layout.queueLockFile, "shared", {
    timeoutSeconds,
    onWait: options.onLockWait,
  });
  try {
    layout.ensure(); // a `clean` we waited for removed the buckets
    const index = new EntryIndex(layout.indexDir, {
      lockTimeoutSeconds: timeoutSeconds,
      onReplaced: (replacement) => onWarning(replacedIndexWarning(replacement)),
      onDamagedRow: (row) =>
        onWarning({
          code: "CACHET_INTEGRITY",
          message: `cachet: dropped entry ${row.name}/${row.key}: its index row failed its checksum (the index file is damaged)`,
        }),
    });
    return new Store(resolved, layout, index, rootLock, { timeoutSeconds, linkMode, onWarning });
  } catch (error) {
    rootLock.release();
    throw error;
  }
}

interface StoreSettings {
  timeoutSeconds: number;
  linkMode: LinkMode | undefined;
  onWarning: WarningHandler;
}

/**
 * The local cache: a raw entry API in the manner of cacache (put/get/delete/list) plus trees and key locks, on a
 * cache root with an SQLite index. The {@link CacheStore} that tasks use by default.
 */
export class Store implements CacheStore {
  private closed = false;
  private readonly checkedNames = new Set<string>();

  /** @internal use {@link openStore}. */
  constructor(
    readonly cacheDir: ResolvedCacheDir,
    readonly layout: CacheLayout,
    private readonly index: EntryIndex,
    private readonly rootLock: RootLock,
    private readonly settings: StoreSettings,
  ) {}

  /** The cache root in use. */
  get root(): string {
    return this.layout.root;
  }

  /** The index database file in use (`index-v1/CURRENT` names it). */
  get indexFile(): string {
    return this.index.file;
  }

  /** Writes (or replaces) an entry. Small values go inline in the index, larger ones into a blob first. */
  async put(name: string, key: string, data: Uint8Array | string, options: PutOptions = {}): Promise<EntryInfo> {
    this.assertUsable(name, key);
    const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    if (bytes.byteLength <= INLINE_LIMIT) {
      const digest = sha256Hex(bytes);
      return this.record(name, key, "inline", digest, bytes.byteLength, bytes, options);
    }
    const blob = await writeBlob(this.layout, bytes);
    return this.record(name, key, "blob", blob.digest, blob.size, null, options);
  }

  /** Writes an entry from a stream of chunks, always as a blob, hashing as it goes (constant memory). */
  async putStream(name: string, key: string, source: BlobSource | Readable, options: PutOptions = {}): Promise<EntryInfo> {
    this.assertUsable(name, key);
    const blob = await writeBlob(this.layout, source as BlobSource);
    return this.record(name, key, "blob", blob.digest, blob.size, null, options);
  }

  /** The content of an entry, or undefined on a miss. A blob that fails its integrity check is a miss. */
  async get(name: string, key: string): Promise<Uint8Array | undefined> {
    this.assertUsable(name, key);
    // The reader's columns only (as getValue): converting the whole row costs ~1 µs of a ~5 µs hit.
    const row = this.index.lookupValue(name, key);
    if (row === undefined) return undefined;
    if (row.storage === "inline") return row.inline!;
    return this.readContent({ name, key, storage: row.storage, digest: row.digest });
  }

  /**
   * The content of an entry with its format and creation time, or undefined on a miss: the cheapest read for
   * callers that judge entries themselves (formats, ages), such as the task runner.
   */
  async getValue(name: string, key: string): Promise<StoredValue | undefined> {
    this.assertUsable(name, key);
    const row = this.index.lookupValue(name, key);
    if (row === undefined) return undefined;
    const data = row.storage === "inline" ? row.inline! : await this.readContent({ name, key, storage: row.storage, digest: row.digest });
    if (data === undefined) return undefined;
    return { data, format: row.format ?? undefined, createdAt: row.createdAt };
  }

  /** The entry with its content and metadata, or undefined on a miss. */
  async getEntry(name: string, key: string): Promise<Entry | undefined> {
    this.assertUsable(name, key);
    const row = this.index.lookup(name, key);
    if (row === undefined) return undefined;
    const data = row.storage === "inline" ? row.inline! : await this.readContent(row);
    if (data === undefined) return undefined;
    return { ...toInfo(row), data };
  }

  /**
   * A stream of a blob entry's content, verified as it is read (the stream errors on corruption, and the
   * entry is dropped), or undefined on a miss.
   */
  async getStream(name: string, key: string): Promise<Readable | undefined> {
    this.assertUsable(name, key);
    const row = this.index.lookup(name, key);
    if (row === undefined) return undefined;
    if (row.storage === "inline") return Readable.from([row.inline!]);
    if (row.storage !== "blob") throw new EntryKindError(name, key, row.storage, "linkTree()");
    try {
      await stat(this.layout.blob(row.digest));
    } catch {
      this.dropMissing(row);
      return undefined;
    }
    return streamBlob(this.layout, row.digest, (error) => this.dropCorrupt(row, error));
  }

  /** The catalog row of an entry without reading its content, or undefined. Does not count as a use. */
  info(name: string, key: string): EntryInfo | undefined {
    this.assertUsable(name, key);
    const row = this.index.lookup(name, key, false);
    return row && toInfo(row);
  }

  /**
   * @internal An inline entry's bytes without counting a use (for `verify`, which must not make every entry
   * look recently used); undefined for a miss or an entry that is not inline.
   */
  peekInline(name: string, key: string): Uint8Array | undefined {
    this.assertUsable(name, key);
    const row = this.index.lookup(name, key, false);
    return row?.storage === "inline" && row.inline !== null ? row.inline : undefined;
  }

  /** The key components recorded by the writer of an entry (see {@link PutOptions.components}). */
  components(name: string, key: string): unknown {
    this.assertUsable(name, key);
    return this.index.components(name, key);
  }

  /**
   * Stores a copy of the directory `dir` as an immutable tree entry (content-addressed by its tree digest), with
   * read-only files and a manifest (see {@link publishTree}). The user's directory is copied, never linked, so
   * later edits to it cannot reach the cache.
   */
  async putTree(name: string, key: string, dir: string, options: PutTreeOptions = {}): Promise<EntryInfo> {
    this.assertUsable(name, key);
    if (options.stampSource !== true) {
      const tree = await publishTree(this.layout, dir);
      return this.record(name, key, "tree", tree.digest, tree.bytes, null, options);
    }
    const lock = await this.lockTarget(dir);
    try {
      // Stamped only if nothing changed while it was copied: the stamp then describes exactly what was published.
      const before = statWalk(dir);
      const tree = await publishTree(this.layout, dir);
      const info = await this.record(name, key, "tree", tree.digest, tree.bytes, null, options);
      const loaded = await loadTreeManifest(this.layout, tree.digest);
      const after = before && statPaths(dir, before.map((entry) => entry[0]));
      if (before && after && "manifest" in loaded && samePaths(before, ["", ...loaded.manifest.entries.map((entry) => entry.path)])) {
        if (JSON.stringify(before) === JSON.stringify(after)) writeStamp(this.layout, dir, tree.digest, after);
      }
      return info;
    } finally {
      lock.release();
    }
  }

  /** The lock every restore into `target` holds, so two restores into one place take turns. */
  private async lockTarget(target: string): Promise<FileLock> {
    const lock = new FileLock(this.layout.targetLock(target));
    await lock.acquire("exclusive", {
      timeoutSeconds: this.settings.timeoutSeconds,
      timeoutAdvice: `another process is restoring into ${target}; raise CACHET_LOCK_TIMEOUT to wait longer`,
    });
    return lock;
  }

  /**
   * Materializes a tree entry into `target` (see {@link linkTreeOut}: by default as a writable output, cloned or
   * copied), or returns undefined on a miss. A tree changed in the cache since it was stored (a hard-linked
   * restore edited in place, say) is a miss too: the entry is dropped with a warning that names the file.
   */
  async linkTree(name: string, key: string, target: string, options: LinkTreeOptions = {}): Promise<LinkTally | undefined> {
    this.assertUsable(name, key);
    assertTargetOutsideCache(this.layout.root, target);
    const row = this.index.lookup(name, key);
    if (row === undefined) return undefined;
    if (row.storage !== "tree") throw new EntryKindError(name, key, row.storage, "get()");
    const lock = await this.lockTarget(target);
    try {
      if (options.keepUnchanged === true && targetHoldsTree(this.layout, target, row.digest)) {
        return { files: 0, directories: 0, symlinks: 0, bytes: 0, mode: this.settings.linkMode ?? "clone", kept: true };
      }
      const source = this.layout.tree(row.digest);
      const loaded = await loadTreeManifest(this.layout, row.digest);
      if ("missing" in loaded) {
        this.dropMissing(row);
        return undefined;
      }
      if (options.keepUnchanged === true) removeStamp(this.layout, target);
      const outcome =
        "mismatch" in loaded
          ? { changed: loaded.mismatch }
          : await linkTreeOut(source, loaded.manifest, target, {
              mode: this.settings.linkMode,
              purpose: options.purpose,
              replace: options.replace,
              onWarning: this.settings.onWarning,
              onFile: options.onFile,
            });
      if ("changed" in outcome) {
        this.dropChangedTree(row, source, outcome.changed);
        return undefined;
      }
      if (options.keepUnchanged === true && "manifest" in loaded) {
        const entries = statPaths(target, ["", ...loaded.manifest.entries.map((entry) => entry.path)]);
        if (entries !== undefined) writeStamp(this.layout, target, row.digest, entries);
      }
      return outcome.tally;
    } finally {
      lock.release();
    }
  }

  /**
   * The directory of a tree entry in the cache, checked by `stat` against its manifest, for read-only use in
   * place; undefined on a miss (a tree changed since it was stored is dropped with a warning).
   */
  async treePath(name: string, key: string): Promise<string | undefined> {
    this.assertUsable(name, key);
    const row = this.index.lookup(name, key);
    if (row === undefined) return undefined;
    if (row.storage !== "tree") throw new EntryKindError(name, key, row.storage, "getValue()");
    const path = this.layout.tree(row.digest);
    const loaded = await loadTreeManifest(this.layout, row.digest);
    if ("missing" in loaded) {
      this.dropMissing(row);
      return undefined;
    }
    const change = "mismatch" in loaded ? loaded.mismatch : await checkTree(path, loaded.manifest);
    if (change !== undefined) {
      this.dropChangedTree(row, path, change);
      return undefined;
    }
    return path;
  }

  /** Removes an entry's row; its content goes with the next `prune` if nothing else refers to it. */
  async delete(name: string, key: string): Promise<boolean> {
    this.assertUsable(name, key);
    return this.index.delete(name, key);
  }

  /** Removes an entry only if it still points at `digest` (so a concurrent replacement survives). */
  async deleteIfDigest(name: string, key: string, digest: string): Promise<boolean> {
    this.assertUsable(name, key);
    return this.index.delete(name, key, digest);
  }

  /** Entries, most recently used first, optionally of one name. Safe to interleave with other calls. */
  async *list(name?: string): AsyncIterableIterator<EntryInfo> {
    if (name !== undefined) this.assertName(name);
    this.assertOpen();
    // Materialize in pages: a live SQLite cursor would lock the connection against calls made inside the loop.
    const page = 1000;
    let after: [number, number] | undefined;
    for (;;) {
      const rows = this.index.page(name, after, page);
      for (const row of rows) yield toInfo(row);
      if (rows.length < page) return;
      const last = rows[rows.length - 1]!;
      after = [last.lastUsedAt, last.id];
    }
  }

  /**
   * Takes a per-key exclusive kernel lock (for compute-once across processes). Waits, polling, while
   * another process or another call holds it; released by {@link KeyLock.release} or the holder's death.
   */
  async lockKey(name: string, key: string, options: LockKeyOptions = {}): Promise<KeyLock> {
    this.assertUsable(name, key);
    const hash = createHash("sha256").update(name).update("\0").update(key).digest("hex");
    const lock = new FileLock(this.layout.keyLock(hash));
    await lock.acquire("exclusive", {
      timeoutSeconds: options.timeoutSeconds ?? this.settings.timeoutSeconds,
      onWait: options.onWait,
      timeoutAdvice: `another process is computing ${name}/${key}; raise CACHET_LOCK_TIMEOUT to wait longer`,
    });
    // Whatever the previous holder wrote must be visible to the reads this lock now guards.
    this.index.endReadWindows();
    return { release: () => lock.release() };
  }

  /** @internal Problems SQLite's `quick_check` finds in the index file, empty when it is sound (for `verifyStore`). */
  checkIndex(): string[] {
    this.assertOpen();
    return this.index.checkIntegrity();
  }

  /** @internal Replaces the index file with a fresh one, keeping it as a damaged copy (for `verifyStore --repair`). */
  retireIndex(reason: string): void {
    this.assertOpen();
    this.index.retire(reason);
  }

  /** @internal Puts back a row recovered from a damaged copy unless its key has an entry (for `verifyStore --repair`). */
  insertRecovered(row: RecoveredRow): boolean {
    this.assertOpen();
    return this.index.insertRecovered(row);
  }

  /** Writes queued last-use times, releases the root lock and closes the index. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.index.close();
    this.rootLock.release();
    if (this.cacheDir.temporary) removeTemporaryRoot(this.cacheDir.path);
  }

  private record(
    name: string,
    key: string,
    storage: Storage,
    digest: string,
    size: number,
    inline: Uint8Array | null,
    options: PutOptions,
  ): EntryInfo {
    const origin = options.origin ?? "computed";
    const costMs = options.costMs ?? 0;
    const format = options.format ?? null;
    const components = options.components === undefined ? null : JSON.stringify(options.components);
    const createdAt = this.index.upsert({ name, key, storage, digest, inline, size, origin, costMs, format, components });
    return {
      name,
      key,
      storage,
      digest,
      size,
      origin,
      costMs,
      createdAt: new Date(createdAt),
      lastUsedAt: new Date(createdAt),
      format: format ?? undefined,
    };
  }

  private async readContent(row: ContentRef): Promise<Uint8Array | undefined> {
    if (row.storage !== "blob") throw new EntryKindError(row.name, row.key, row.storage, "linkTree()");
    try {
      return await readBlob(this.layout, row.digest);
    } catch (error) {
      if (error instanceof BlobIntegrityError) {
        this.dropCorrupt(row, error);
        return undefined;
      }
      if ((error as NodeJS.ErrnoException).code === "ENOENT") {
        this.dropMissing(row);
        return undefined;
      }
      throw error;
    }
  }

  private dropCorrupt(row: ContentRef, error: BlobIntegrityError): void {
    this.index.delete(row.name, row.key, row.digest);
    this.settings.onWarning({
      code: "CACHET_INTEGRITY",
      message: `cachet: dropped entry ${row.name}/${row.key}: ${error.message}`,
    });
  }

  private dropChangedTree(row: ContentRef, path: string, change: string): void {
    this.index.delete(row.name, row.key, row.digest);
    this.settings.onWarning({
      code: "CACHET_INTEGRITY",
      message: `cachet: dropped entry ${row.name}/${row.key}: the cached tree ${path} changed since it was stored: ${change}`,
    });
  }

  private dropMissing(row: ContentRef): void {
    this.index.delete(row.name, row.key, row.digest);
    this.settings.onWarning({
      code: "CACHET_MISSING_CONTENT",
      message: `cachet: dropped entry ${row.name}/${row.key}: its content ${row.digest} is missing from ${this.root}`,
    });
  }

  private assertUsable(name: string, key: string): void {
    this.assertOpen();
    this.assertName(name);
    assertValidKey(key);
  }

  private assertName(name: string): void {
    if (this.checkedNames.has(name)) return;
    assertValidName(name);
    if (this.checkedNames.size < 10_000) this.checkedNames.add(name);
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreClosedError(this.root);
  }
}

/** A call on a store after {@link Store.close}. */
export class StoreClosedError extends CachetError {
  readonly code = "CACHET_STORE_CLOSED";
  constructor(root: string) {
    super(`the store at ${root} is closed`);
  }
}

/** Which entry and which content a read is about. */
interface ContentRef {
  name: string;
  key: string;
  storage: Storage;
  digest: string;
}

function toInfo(row: IndexRow): EntryInfo {
  return {
    name: row.name,
    key: row.key,
    storage: row.storage,
    digest: row.digest,
    size: row.size,
    origin: row.origin,
    costMs: row.costMs,
    createdAt: new Date(row.createdAt),
    lastUsedAt: new Date(row.lastUsedAt),
    format: row.format ?? undefined,
  };
}
