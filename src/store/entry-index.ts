import { existsSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { ensureDirectory } from "./directories.js";
import { IndexError, asWriteError } from "./errors.js";
import { EntryMemo } from "./entry-memo.js";
import { MAY_NAME_GIT_DATABASE, gitDatabaseOf } from "./git-databases.js";
import { IndexConnection } from "./index-connection.js";
import { currentIndexName, pointerStamp, INITIAL_INDEX } from "./index-file.js";
import { isCorruption, replaceCorruptIndex, type IndexReplacement } from "./index-recovery.js";
import { FileLock } from "./locks.js";
import {
  ROW_COLUMNS,
  bucketOf,
  rawBucket,
  rawRowCheck,
  storageOf,
  toRow,
  toValueRow,
  type IndexRow,
  type Origin,
  type Storage,
  type ValueRow,
} from "./index-rows.js";
import { rowCheck, rowIsIntact } from "./row-check.js";

export type { Storage, Origin, IndexRow, ValueRow } from "./index-rows.js";

/** What a writer supplies for a new or replaced row (the index sets the id and the times). */
export type NewRow = Omit<IndexRow, "id" | "createdAt" | "lastUsedAt"> & { components: string | null };

/** A row recovered from a damaged index, with its original times. */
export type RecoveredRow = Omit<IndexRow, "id"> & { components: string | null };

/** A row dropped because it failed its checksum: a damaged index, never returned as data. */
export interface DamagedRow {
  name: string;
  key: string;
}

/** Content an entry referred to, as removals report it. */
export interface ContentRow {
  storage: Storage;
  digest: string;
  size: number;
}

/** A removed entry: its name and what its row referred to. */
export interface RemovedRow extends ContentRow {
  name: string;
  /** The git repository database its components named (see `git-databases.ts`), if any. */
  gitDatabase?: string | undefined;
}

/** Content some entry refers to: blob and tree digests, and git repository database ids. */
export interface ReferencedContent {
  blobs: Set<string>;
  trees: Set<string>;
  gitDatabases: Set<string>;
}

/** An entry prune drops, as {@link IndexMaintenance} reports it before the drop. */
export interface DroppedRow {
  name: string;
  key: string;
  size: number;
  origin: Origin;
}

/** What dropping entries removed: how many, and the bytes of inline values among them. */
export interface DropCount {
  entries: number;
  inlineBytes: number;
}

export interface EntryIndexOptions {
  busyTimeoutMs?: number | undefined;
  /** Seconds to wait for another process replacing a damaged index. Default 300. */
  lockTimeoutSeconds?: number | undefined;
  /** Told when a damaged index was replaced by a fresh one (by this process or, noticed here, by another). */
  onReplaced?: ((replacement: IndexReplacement) => void) | undefined;
  /** Told when a row failed its checksum and was dropped. */
  onDamagedRow?: ((row: DamagedRow) => void) | undefined;
}

/** Last-use times are written in batches this often (and at close and exit): a write per read would cost ten times the read. */
const TOUCH_FLUSH_MS = 1000;

/**
 * Reads share one read transaction for up to this long (and never past the current turn of the event loop):
 * in WAL mode every statement outside a transaction takes and drops a lock on the shared-memory file, two
 * syscalls that cost a third of a hit. A read may therefore miss another process's write made within the last
 * millisecond; writes and key-lock acquisitions end the window first, so nothing that synchronizes is stale.
 */
const READ_WINDOW_MS = 1;

/** Dropping more than this share of the rows (and at least REBUILD_MIN_ROWS) copies the survivors instead. */
const REBUILD_SHARE = 0.25;
const REBUILD_MIN_ROWS = 20_000;

/**
 * Writers hold this lock across "is my connection current? write. is it still current?", so a deleted `-shm`
 * cannot split writers into two groups that each append to the log unseen by the other (lost writes): every
 * write lands where the connections opened after the deletion look.
 */
const WRITE_LOCK = "write.lock";

/** Reconnections in a row (the `-shm` deleted again each time) before an operation gives up with an error. */
const RECONNECT_ATTEMPTS = 10;

const openIndexes = new Set<EntryIndex>();
let exitHookInstalled = false;

let lastUseTime = 0;

/**
 * The wall-clock time of a use, in ms with a fraction: strictly increasing within the process, so uses in one
 * millisecond keep their order (pruning by recency keeps the one used last). Follows the clock back if it jumps
 * back by more than a second.
 */
export function useTime(now = Date.now()): number {
  lastUseTime = now > lastUseTime || now < lastUseTime - 1000 ? now : lastUseTime + 0.001;
  return lastUseTime;
}

/**
 * The entry catalog: one SQLite database in WAL mode (the file `CURRENT` names in `index-v1/`), shared by every
 * process using the root. Readers never block writers; writers queue on SQLite's busy timeout.
 *
 * Every row carries a checksum verified on read, so a damaged row is a miss. A damaged file (SQLite reports
 * corruption) is replaced by a fresh one, keeping the old as `corrupt-<time>.sqlite`, and the operation goes
 * on against the new index; no error escapes for it. Before each read window and each write the index checks
 * that `CURRENT` and the `-shm` file are still the ones it opened, and reconnects if not.
 */
export class EntryIndex {
  private conn: IndexConnection;
  private readonly pendingTouches = new Map<number, number>();
  private flushTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readWindowSince = -1;
  /** The `data_version` the memo's rows were read at; -1 when unversioned. */
  private memoVersion = -1;
  private readonly memo = new EntryMemo();
  private readonly busyTimeoutMs: number;
  private readonly lockTimeoutSeconds: number;
  private readonly writeLock: FileLock;

  constructor(readonly dir: string, private readonly options: EntryIndexOptions = {}) {
    this.lockTimeoutSeconds = options.lockTimeoutSeconds ?? 300;
    // Every wait of a write (SQLite's busy wait, the write lock) ends by the lock timeout.
    this.busyTimeoutMs = Math.min(options.busyTimeoutMs ?? 60_000, this.lockTimeoutSeconds * 1000);
    try {
      ensureDirectory(dir);
    } catch (error) {
      throw wrapError(dir, error);
    }
    this.writeLock = new FileLock(join(dir, WRITE_LOCK));
    this.conn = this.connect();
    openIndexes.add(this);
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.on("exit", () => {
        for (const index of openIndexes) index.close();
      });
    }
  }

  /** The index file in use. */
  get file(): string {
    return this.conn.file;
  }

  /**
   * Ends the shared read transaction of every index open on this directory in this process, so the next read
   * sees the latest committed state. Called before every write and after taking a key lock.
   */
  endReadWindows(): void {
    for (const index of openIndexes) if (index.dir === this.dir) index.endReadWindow();
  }

  /** The row for `(name, key)`, or undefined. Queues a last-use update. */
  lookup(name: string, key: string, touch = true): IndexRow | undefined {
    return this.guarded(
      () => {
        this.openReadWindow();
        const raw = this.conn.lookup.get(name, key) as unknown[] | undefined;
        if (raw === undefined) return undefined;
        const row = toRow(raw);
        if (!this.intact(name, key, raw, row)) return undefined;
        if (touch) row.lastUsedAt = this.touch(row.id);
        return row;
      },
      () => undefined,
    );
  }

  /** The reader's part of the row for `(name, key)`, or undefined. Queues a last-use update. */
  lookupValue(name: string, key: string): ValueRow | undefined {
    return this.guarded(
      () => {
        this.openReadWindow();
        const memoKey = this.readWindowSince >= 0 ? `${name}\0${key}` : undefined;
        if (memoKey !== undefined) {
          const kept = this.memo.get(memoKey);
          if (kept !== undefined) {
            const at = this.touch(kept.id);
            this.memo.touch(memoKey, at);
            return { ...kept, storage: "inline", lastUsedAt: at };
          }
        }
        const raw = this.conn.value.get(name, key) as unknown[] | undefined;
        if (raw === undefined) return undefined;
        const row = toValueRow(raw);
        if (!this.intact(name, key, raw, row)) return undefined;
        row.lastUsedAt = this.touch(row.id);
        if (memoKey !== undefined && row.storage === "inline" && row.inline !== null) {
          this.memo.offer(memoKey, { ...row, inline: row.inline });
        }
        return row;
      },
      () => undefined,
    );
  }

  /** Writes or replaces the row for `(name, key)`; content must already be in place. Returns the creation time. */
  upsert(row: NewRow, now = Date.now()): number {
    const bucket = bucketOf(row.storage);
    const check = rowCheck({ name: row.name, key: row.key, bucket, digest: row.digest, format: row.format, createdAt: now, inline: row.inline });
    this.write(() => {
      // Positional parameters and no RETURNING clause: both cost measurably on the put path.
      // `.run()` steps the statement to its end, so an error of the autocommit (SQLITE_FULL) is thrown, not lost.
      this.conn.upsert.run(
        row.name, row.key, bucket, row.digest, row.inline, row.size, row.origin, row.costMs,
        now, useTime(now), row.format, row.components, check,
      );
    });
    return now;
  }

  /** Deletes `(name, key)`; with `digest`, only if the row still points at that content. */
  delete(name: string, key: string, digest?: string): boolean {
    return this.write(() => {
      const result =
        digest === undefined
          ? this.conn.db.prepare("DELETE FROM entries WHERE name = ? AND key = ?").run(name, key)
          : this.conn.db.prepare("DELETE FROM entries WHERE name = ? AND key = ? AND digest = ?").run(name, key, digest);
      return result.changes > 0;
    });
  }

  /** The key components recorded with an entry (for `explain`), parsed from JSON; undefined when absent or unreadable. */
  components(name: string, key: string): unknown {
    return this.guarded(
      () => {
        this.openReadWindow();
        const row = this.conn.db.prepare("SELECT components FROM entries WHERE name = ? AND key = ?").get(name, key) as
          | { components: string | null }
          | undefined;
        if (!row?.components) return undefined;
        try {
          return JSON.parse(row.components);
        } catch {
          return undefined;
        }
      },
      () => undefined,
    );
  }

  /**
   * One page of rows in last-use order (newest first), optionally of one name, after the `(lastUsedAt, id)`
   * position of the previous page's last row. Rows that fail their checksum are dropped, not listed.
   */
  page(name: string | undefined, after: [number, number] | undefined, limit: number): IndexRow[] {
    return this.guarded(
      () => {
        const where: string[] = [];
        const params: unknown[] = [];
        if (name !== undefined) {
          where.push("name = ?");
          params.push(name);
        }
        if (after !== undefined) {
          where.push("(last_used_at, id) < (?, ?)");
          params.push(after[0], after[1]);
        }
        const sql =
          `SELECT ${ROW_COLUMNS} FROM entries ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ` +
          `ORDER BY last_used_at DESC, id DESC LIMIT ?`;
        params.push(limit);
        this.openReadWindow();
        const rows: IndexRow[] = [];
        for (const raw of this.conn.db.prepare(sql).raw(true).all(...params) as unknown[][]) {
          const row = toRow(raw);
          if (this.intact(row.name, row.key, raw, row)) rows.push(row);
        }
        return rows;
      },
      () => [],
    );
  }

  /** The number of entries. */
  count(): number {
    return this.guarded(
      () => {
        this.endReadWindows();
        this.checkConnection();
        return this.conn.db.prepare("SELECT count(*) FROM entries").pluck().get() as number;
      },
      () => 0,
    );
  }

  /** Removes every entry of the given names in one transaction; returns their names and what their rows referred to. */
  removeNames(names: readonly string[]): RemovedRow[] {
    if (names.length === 0) return [];
    const placeholders = names.map(() => "?").join(", ");
    return this.write(() =>
      this.conn.db
        .transaction(() => {
          const rows = this.conn.db
            .prepare(`SELECT bucket, digest, size, name, components FROM entries WHERE name IN (${placeholders})`)
            .raw(true)
            .all(...names) as Array<[string, string, number, string, string | null]>;
          this.conn.db.prepare(`DELETE FROM entries WHERE name IN (${placeholders})`).run(...names);
          return rows.map(([bucket, digest, size, name, components]) => ({
            storage: storageOf(bucket) ?? ("unknown" as Storage),
            digest,
            size,
            name,
            gitDatabase: gitDatabaseOf(components),
          }));
        })
        .immediate(),
    );
  }

  /** Digests of every blob and tree, and the git databases, some entry refers to (for garbage collection). */
  referencedContent(): ReferencedContent {
    return this.guarded(
      () => {
        this.endReadWindows();
        this.checkConnection();
        return referencedIn(this.conn.db);
      },
      () => ({ blobs: new Set<string>(), trees: new Set<string>(), gitDatabases: new Set<string>() }),
    );
  }

  /**
   * Runs `fn` inside one write transaction for maintenance (prune), committed when `fn` resolves and `commit`
   * is true, rolled back otherwise. The caller must hold the cache root exclusively: the transaction stays open
   * across `fn`'s awaits.
   */
  async maintain<T>(commit: boolean, fn: (maintenance: IndexMaintenance) => Promise<T>): Promise<T> {
    this.endReadWindows();
    this.memo.clear();
    this.pendingTouches.clear();
    try {
      this.checkConnection();
      return await this.inTransaction(commit, fn);
    } catch (error) {
      // What `fn` does besides the index (removing files) fails with its own error, not as the index's.
      if (!isCorruption(error)) throw isSqliteError(error) ? wrapError(this.conn.file, error) : error;
      // Once more on the fresh index that replaced the damaged one.
      this.recoverFrom(error);
      return await this.inTransaction(commit, fn);
    }
  }

  private async inTransaction<T>(commit: boolean, fn: (maintenance: IndexMaintenance) => Promise<T>): Promise<T> {
    const db = this.conn.db;
    db.exec("BEGIN IMMEDIATE");
    try {
      const result = await fn(new IndexMaintenance(db));
      db.exec(commit ? "COMMIT" : "ROLLBACK");
      return result;
    } catch (error) {
      try {
        if (db.inTransaction) db.exec("ROLLBACK");
      } catch {
        // The error that stopped the transaction is the one to report.
      }
      throw error;
    }
  }

  /** Problems `PRAGMA quick_check` finds in the index file (empty when it is sound). */
  checkIntegrity(): string[] {
    try {
      this.endReadWindows();
      this.checkConnection();
      const rows = this.conn.db.prepare("PRAGMA quick_check").pluck().all() as string[];
      return rows.length === 1 && rows[0] === "ok" ? [] : rows;
    } catch (error) {
      if (isCorruption(error)) return [(error as Error).message];
      throw wrapError(this.conn.file, error);
    }
  }

  /**
   * Replaces the index file with a fresh one, keeping it as a damaged copy (`corrupt-<time>.sqlite`). Asked for,
   * so not reported through `onReplaced`.
   */
  retire(reason: string): void {
    this.endReadWindows();
    this.recoverFrom(new Error(reason), false);
  }

  /**
   * Inserts a row recovered from a damaged index, unless the key has an entry already (a newer one wins).
   * The caller has checked the row and its content. Returns whether it was inserted.
   */
  insertRecovered(row: RecoveredRow): boolean {
    const bucket = bucketOf(row.storage);
    const check = rowCheck({ name: row.name, key: row.key, bucket, digest: row.digest, format: row.format, createdAt: row.createdAt, inline: row.inline });
    return this.write(
      () =>
        this.conn.db
          .prepare(
            "INSERT INTO entries (name, key, bucket, digest, inline, size, origin, cost_ms, created_at, last_used_at, format, components, row_check) " +
              "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name, key) DO NOTHING",
          )
          .run(row.name, row.key, bucket, row.digest, row.inline, row.size, row.origin, row.costMs, row.createdAt, row.lastUsedAt, row.format, row.components, check)
          .changes > 0,
    );
  }

  /** Writes queued last-use times now. */
  flush(): void {
    if (this.flushTimer) {
      clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
    }
    if (this.pendingTouches.size === 0 || this.closed) return;
    const touches = [...this.pendingTouches];
    this.pendingTouches.clear();
    try {
      this.endReadWindows();
      this.writeLock.acquireBriefly(this.busyTimeoutMs);
      try {
        if (!this.conn.isCurrent()) return; // row ids belong to the file they were read from
        const now = Date.now();
        this.conn.db.transaction(() => {
          for (const [id, at] of touches) this.conn.touch.run({ at, id, now });
        })();
      } finally {
        this.writeLock.unlock();
      }
    } catch {
      // Last-use times are advisory (they order pruning); losing a batch to a busy, full or damaged disk is harmless.
    }
  }

  /** Writes queued last-use times and closes. Idempotent; never throws. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.endReadWindow();
    this.closed = true;
    openIndexes.delete(this);
    this.conn.close();
    this.writeLock.release();
  }

  private connect(): IndexConnection {
    const stamp = pointerStamp(this.dir);
    let name: string | undefined;
    try {
      name = currentIndexName(this.dir);
    } catch (error) {
      throw wrapError(this.dir, error);
    }
    if (name === undefined) return this.replace(INITIAL_INDEX, new Error("index-v1/CURRENT does not name an index file"));
    if (name !== INITIAL_INDEX && !existsSync(join(this.dir, name))) {
      // Opening would create an empty database under that name and hide every entry (a damaged CURRENT).
      return this.replace(name, new Error(`index-v1/CURRENT names ${name}, which does not exist`));
    }
    try {
      return new IndexConnection(this.dir, name, stamp, this.busyTimeoutMs);
    } catch (error) {
      if (isCorruption(error)) return this.replace(name, error);
      throw wrapError(`${this.dir}/${name}`, error);
    }
  }

  private replace(badName: string, reason: unknown, report = true): IndexConnection {
    let result;
    try {
      result = replaceCorruptIndex(this.dir, badName, reason, {
        busyTimeoutMs: this.busyTimeoutMs,
        lockTimeoutSeconds: this.lockTimeoutSeconds,
      });
    } catch (error) {
      throw wrapError(this.dir, error);
    }
    if (report) this.options.onReplaced?.(result.replacement);
    return result.connection;
  }

  /** Switches to a fresh connection when the current one no longer serves the index (see {@link IndexConnection.isCurrent}). */
  private checkConnection(): void {
    for (let attempt = 1; !this.conn.isCurrent(); attempt++) {
      if (attempt > RECONNECT_ATTEMPTS) throw new IndexError(this.conn.file, "the -shm file kept changing while the index reconnected");
      // SQLite maps a database's -shm once per process, shared by its connections: while another index of this
      // process still holds the deleted one, a new connection would map that one again.
      for (const index of openIndexes) if (index !== this && index.conn.file === this.conn.file) index.releaseStaleConnection();
      this.dropConnectionState();
      this.conn.close();
      this.conn = this.connect();
    }
  }

  /** Closes this index's connection if it no longer shares the log; the next operation reconnects. */
  private releaseStaleConnection(): void {
    if (this.conn.sharesLog()) return;
    this.dropConnectionState();
    this.conn.close();
  }

  private dropConnectionState(): void {
    this.readWindowSince = -1;
    this.memoVersion = -1;
    this.memo.clear();
    this.pendingTouches.clear();
  }

  /**
   * Runs a read; if SQLite reports the file damaged, replaces the index and answers `fallback()` (a miss).
   * Other failures become one-line store errors.
   */
  private guarded<T>(read: () => T, fallback: () => T): T {
    try {
      return read();
    } catch (error) {
      if (!isCorruption(error)) throw wrapError(this.conn.file, error);
      this.recoverFrom(error);
      return fallback();
    }
  }

  /**
   * Runs a write on a current connection; on damage, replaces the index and writes again, once. A write that
   * finds afterwards that the `-shm` file changed under it (someone deleted the shared memory) may have gone to
   * a log other connections no longer read, so it is made again on a fresh connection until it lands on one that
   * still shares the log afterwards (up to RECONNECT_ATTEMPTS times): writes are idempotent (an upsert, a delete).
   */
  private write<T>(fn: () => T): T {
    this.endReadWindows();
    this.memo.clear();
    this.lockWrites();
    try {
      // The log this connection appends to must be the one everyone reads, before (a write on a split log can
      // overwrite others' commits) and after (else the write is made again where they read). A CURRENT swapped
      // in between is noticed by the next read window or write; a write that went to the retired index is in
      // the damaged copy, where `verify --repair` finds it.
      for (let attempt = 1; ; attempt++) {
        if (!this.conn.sharesLog()) this.checkConnection();
        const result = fn();
        if (this.conn.sharesLog()) return result;
        if (attempt >= RECONNECT_ATTEMPTS) throw new IndexError(this.conn.file, "the -shm file kept changing under a write");
      }
    } catch (error) {
      if (!isCorruption(error)) throw wrapError(this.conn.file, error);
      this.recoverFrom(error);
      try {
        return fn();
      } catch (retryError) {
        throw wrapError(this.conn.file, retryError);
      }
    } finally {
      this.writeLock.unlock();
    }
  }

  private lockWrites(): void {
    try {
      this.writeLock.acquireBriefly(this.busyTimeoutMs);
    } catch (error) {
      throw wrapError(this.writeLock.path, error);
    }
  }

  private recoverFrom(error: unknown, report = true): void {
    const bad = this.conn.fileName;
    this.dropConnectionState();
    this.conn.close();
    this.conn = this.replace(bad, error, report);
  }

  /** Checks a row read for `(name, key)` against its checksum; a damaged row is deleted, reported and a miss. */
  private intact(name: string, key: string, raw: unknown[], row: Pick<IndexRow, "id" | "digest" | "format" | "createdAt" | "inline">): boolean {
    const fields = { name, key, bucket: rawBucket(raw), digest: row.digest, format: row.format, createdAt: row.createdAt, inline: row.inline };
    const check = rawRowCheck(raw);
    if (rowIsIntact(fields, check)) return true;
    // By id: the damaged row's name or key may be what was damaged.
    try {
      this.endReadWindows();
      this.conn.db.prepare("DELETE FROM entries WHERE id = ?").run(row.id);
    } catch {
      // A damaged row that cannot be deleted stays a miss on every read.
    }
    // A row without a checksum is an older build's, not damage: it goes without a warning.
    if (check !== null) this.options.onDamagedRow?.({ name, key });
    return false;
  }

  private endReadWindow(): void {
    if (this.readWindowSince < 0) return;
    this.readWindowSince = -1;
    try {
      if (this.conn.db.inTransaction) this.conn.commit.run();
    } catch {
      // Ending a read transaction loses nothing; a damaged file is noticed by the next statement.
    }
  }

  private openReadWindow(): void {
    const now = performance.now();
    if (this.readWindowSince >= 0) {
      if (now - this.readWindowSince <= READ_WINDOW_MS) return;
      this.endReadWindow();
    }
    this.checkConnection();
    if (this.conn.db.inTransaction) return; // inside a caller's transaction: reads are already consistent
    this.conn.begin.run();
    this.readWindowSince = now;
    setImmediate(() => this.endReadWindow()).unref();
    const version = this.conn.dataVersion.get() as number;
    if (version !== this.memoVersion) {
      this.memo.clear();
      this.memoVersion = version;
    }
  }

  /** Queues a last-use update for a row; returns the use time. */
  private touch(id: number): number {
    const at = useTime();
    this.pendingTouches.set(id, at);
    if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => this.flush(), TOUCH_FLUSH_MS);
      this.flushTimer.unref();
    }
    return at;
  }
}

/**
 * Prune's view of the index inside {@link EntryIndex.maintain}: drops by origin, age and size, and the
 * content still referenced afterwards. Each drop counts what it removed.
 */
export class IndexMaintenance {
  /** @internal (its SQLite type stays out of the published declarations) */
  constructor(private readonly db: import("better-sqlite3").Database) {}

  /** Drops entries of origin `downloaded`; `onRow` first hears of each. */
  dropDownloaded(onRow?: (row: DroppedRow) => void): DropCount {
    return this.drop("origin = 'downloaded'", [], onRow);
  }

  /** Drops entries last used before `cutoff`, and entries dated after `now` (written under a clock that was ahead). */
  dropUnusedSince(cutoff: number, now: number, onRow?: (row: DroppedRow) => void): DropCount {
    return this.drop("last_used_at < ? OR last_used_at > ? OR created_at > ?", [cutoff, now, now], onRow);
  }

  /**
   * Drops least-recently-used entries until the rest fit in `maxBytes`. Entries whose last use lies in the
   * future count as least recently used.
   */
  dropBeyondSize(maxBytes: number, now: number, onRow?: (row: DroppedRow) => void): DropCount {
    this.db
      .prepare("UPDATE entries SET last_used_at = CASE WHEN created_at <= @now THEN created_at ELSE 0 END WHERE last_used_at > @now")
      .run({ now });
    // The first row, newest first, at which the running total passes the limit: it and everything older go.
    const cutoff = this.db
      .prepare(
        "SELECT last_used_at, id FROM (SELECT last_used_at, id, SUM(size) OVER (ORDER BY last_used_at DESC, id DESC) AS kept " +
          "FROM entries) WHERE kept > ? LIMIT 1",
      )
      .raw(true)
      .get(maxBytes) as [number, number] | undefined;
    return cutoff ? this.drop("(last_used_at, id) <= (?, ?)", cutoff, onRow) : { entries: 0, inlineBytes: 0 };
  }

  /** Digests of every blob and tree, and the git databases, some remaining entry refers to. */
  referencedContent(): ReferencedContent {
    return referencedIn(this.db);
  }

  /**
   * Removes the entries matching `where`. Deleting row by row costs a b-tree update per row in the table and
   * each index (seconds for 10⁶ rows); when most rows go, copying the survivors into a fresh table built from
   * the stored schema (so columns added by newer builds survive) and swapping it in is several times faster.
   */
  private drop(where: string, params: readonly unknown[], onRow?: (row: DroppedRow) => void): DropCount {
    if (onRow) {
      const rows = this.db.prepare(`SELECT name, key, size, origin FROM entries WHERE ${where} ORDER BY last_used_at, id`).raw(true);
      for (const [name, key, size, origin] of rows.iterate(...params) as IterableIterator<[string, string, number, Origin]>) {
        onRow({ name, key, size, origin });
      }
    }
    const [count, inlineBytes] = this.db
      .prepare(`SELECT count(*), coalesce(sum(CASE WHEN bucket = 'inline' THEN size ELSE 0 END), 0) FROM entries WHERE ${where}`)
      .raw(true)
      .get(...params) as [number, number];
    if (count === 0) return { entries: 0, inlineBytes: 0 };
    const total = this.db.prepare("SELECT count(*) FROM entries").pluck().get() as number;
    if (count < REBUILD_MIN_ROWS || count < total * REBUILD_SHARE) {
      this.db.prepare(`DELETE FROM entries WHERE ${where}`).run(...params);
      return { entries: count, inlineBytes };
    }
    const schema = this.db.prepare("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'entries'").pluck().get() as string;
    const indexes = this.db
      .prepare("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'entries' AND sql IS NOT NULL")
      .pluck()
      .all() as string[];
    this.db.exec(schema.replace(/^CREATE TABLE (IF NOT EXISTS )?["`]?entries["`]?/i, "CREATE TABLE entries_kept"));
    this.db.prepare(`INSERT INTO entries_kept SELECT * FROM entries WHERE NOT (${where})`).run(...params);
    this.db.exec("DROP TABLE entries");
    this.db.exec("ALTER TABLE entries_kept RENAME TO entries");
    for (const sql of indexes) this.db.exec(sql);
    return { entries: count, inlineBytes };
  }
}

function referencedIn(db: import("better-sqlite3").Database): ReferencedContent {
  const blobs = new Set<string>();
  const trees = new Set<string>();
  const gitDatabases = new Set<string>();
  const rows = db.prepare("SELECT DISTINCT bucket, digest FROM entries WHERE bucket != 'inline'").raw(true).iterate();
  for (const [bucket, digest] of rows as IterableIterator<[string, string]>) {
    (storageOf(bucket) === "tree" ? trees : blobs).add(digest);
  }
  const named = db.prepare(`SELECT components FROM entries WHERE ${MAY_NAME_GIT_DATABASE}`).pluck().iterate();
  for (const components of named as IterableIterator<string | null>) {
    const id = gitDatabaseOf(components);
    if (id !== undefined) gitDatabases.add(id);
  }
  return { blobs, trees, gitDatabases };
}

function isSqliteError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("SQLITE_");
}

/** A failure of the index that is not damage: kept as is when already one-line, else an {@link IndexError}. */
function wrapError(file: string, error: unknown): unknown {
  if (error instanceof Error && "code" in error && typeof error.code === "string" && error.code.startsWith("CACHET_")) return error;
  const written = asWriteError(file, error);
  if (written !== error) return written;
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  return new IndexError(file, typeof code === "string" ? `${message} (${code})` : message, { cause: error });
}
