import Database from "better-sqlite3";
import type { Database as SqliteDatabase, Statement } from "better-sqlite3";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { performance } from "node:perf_hooks";
import { asWriteError } from "./errors.js";

/** Where an entry's content lives. */
export type Storage = "inline" | "blob" | "tree";

/** How an entry came to be: made here (kept by `prune --ci`) or fetched from elsewhere (dropped by it). */
export type Origin = "computed" | "downloaded";

/** One row of the index, as the rest of the store sees it. */
export interface IndexRow {
  id: number;
  name: string;
  key: string;
  storage: Storage;
  digest: string;
  inline: Uint8Array | null;
  size: number;
  origin: Origin;
  costMs: number;
  createdAt: number;
  lastUsedAt: number;
  format: string | null;
}

/** The part of a row a reader needs to judge and return an entry (the hot path of a cache hit). */
export type ValueRow = Pick<IndexRow, "id" | "storage" | "digest" | "inline" | "createdAt" | "lastUsedAt" | "format">;

/** What a writer supplies for a new or replaced row (the index sets the id and the times). */
export type NewRow = Omit<IndexRow, "id" | "createdAt" | "lastUsedAt"> & { components: string | null };

const STORAGE_TO_BUCKET: Record<Storage, string> = { inline: "inline", blob: "blobs-v1", tree: "trees-v1" };
const BUCKET_TO_STORAGE: Record<string, Storage> = { inline: "inline", "blobs-v1": "blob", "trees-v1": "tree" };

// Columns are only ever added (within index-v1, old and new builds must read each other's rows).
const SCHEMA = `
CREATE TABLE IF NOT EXISTS entries (
  id           INTEGER PRIMARY KEY,
  name         TEXT    NOT NULL,
  key          TEXT    NOT NULL,
  bucket       TEXT    NOT NULL,
  digest       TEXT    NOT NULL,
  inline       BLOB,
  size         INTEGER NOT NULL,
  origin       TEXT    NOT NULL,
  cost_ms      REAL    NOT NULL DEFAULT 0,
  created_at   INTEGER NOT NULL,
  last_used_at INTEGER NOT NULL,
  format       TEXT,
  components   TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS entries_by_name_key ON entries (name, key);
CREATE INDEX IF NOT EXISTS entries_by_last_use ON entries (last_used_at);
`;

const ROW_COLUMNS = "id, name, key, bucket, digest, inline, size, origin, cost_ms, created_at, last_used_at, format";

/** Address space mapped for reading the index file (the default SQLITE_MAX_MMAP_SIZE; SQLite clamps to it). */
const MMAP_BYTES = 0x7fff0000;

/** Last-use times are kept to the minute: hot reads then cost no writes, and pruning by age or LRU needs no more. */
const TOUCH_GRANULARITY_MS = 60_000;
const TOUCH_FLUSH_MS = 1000;

/**
 * Reads share one read transaction for up to this long (and never past the current turn of the event loop):
 * in WAL mode every statement outside a transaction takes and drops a lock on the shared-memory file, two
 * syscalls that cost a third of a hit. A read may therefore miss another process's write made within the last
 * millisecond; writes and key-lock acquisitions end the window first, so nothing that synchronizes is stale.
 */
const READ_WINDOW_MS = 1;

/**
 * Small inline rows read in this process are kept in memory while no other connection has committed anything
 * (SQLite's `data_version`, checked once per read window, says so) and this connection has not written: a hit
 * then skips SQLite entirely. Bounded by bytes and rows, least recently read first out.
 */
const MEMO_MAX_BYTES = 16 * 1024 * 1024;
const MEMO_MAX_ROWS = 50_000;

const openIndexes = new Set<EntryIndex>();
let exitHookInstalled = false;

/**
 * The entry catalog: one SQLite database in WAL mode, shared by every process using the root. Readers never
 * block writers; writers queue on SQLite's busy timeout. Last-use updates are batched in memory and written
 * once a second, at close and at exit, because a write per read would cost ten times the read.
 */
export class EntryIndex {
  private readonly db: SqliteDatabase;
  private readonly lookupStatement: Statement<[string, string]>;
  private readonly valueStatement: Statement<[string, string]>;
  private readonly upsertStatement: Statement<unknown[]>;
  private readonly touchStatement: Statement<[number, number, number]>;
  private readonly pendingTouches = new Map<number, number>();
  private flushTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly beginRead: Statement;
  private readonly endRead: Statement;
  private readWindowSince = -1;
  private readonly dataVersionStatement: Statement;
  /** The `data_version` the memo's rows were read at; -1 when the memo is empty and unversioned. */
  private memoVersion = -1;
  private readonly memo = new Map<string, ValueRow>();
  private memoBytes = 0;
  /** Keys read once since the memo was last cleared: a row is memoized on its second read, so scans stay cheap. */
  private readonly readOnce = new Set<string>();

  constructor(readonly file: string, options: { busyTimeoutMs?: number; readonly?: boolean } = {}) {
    try {
      if (!options.readonly) mkdirSync(dirname(file), { recursive: true });
      this.db = new Database(file, { timeout: options.busyTimeoutMs ?? 60_000, readonly: options.readonly ?? false });
      if (!options.readonly) {
        this.db.pragma("journal_mode = WAL");
        this.db.pragma("synchronous = NORMAL");
        this.db.exec(SCHEMA);
      }
      // Map the whole index file (up to SQLite's 2 GiB cap), not just its first 256 MiB: a 10⁶-entry index is
      // ~700 MiB, and pages past the mapping are read with a syscall and a copy each (get p50 10 → 7.5 µs there).
      this.db.pragma(`mmap_size = ${MMAP_BYTES}`);
    } catch (error) {
      throw asWriteError(file, error);
    }
    this.lookupStatement = this.db.prepare(`SELECT ${ROW_COLUMNS} FROM entries WHERE name = ? AND key = ?`).raw(true);
    // Only the columns a hit needs: every returned column costs a value conversion on the hottest path.
    this.valueStatement = this.db
      .prepare("SELECT id, bucket, digest, inline, created_at, last_used_at, format FROM entries WHERE name = ? AND key = ?")
      .raw(true);
    this.upsertStatement = this.db.prepare(`
      INSERT INTO entries (name, key, bucket, digest, inline, size, origin, cost_ms, created_at, last_used_at, format, components)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (name, key) DO UPDATE SET
        bucket = excluded.bucket, digest = excluded.digest, inline = excluded.inline, size = excluded.size,
        origin = excluded.origin, cost_ms = excluded.cost_ms, created_at = excluded.created_at,
        last_used_at = excluded.last_used_at, format = excluded.format, components = excluded.components`);
    this.touchStatement = this.db.prepare("UPDATE entries SET last_used_at = ? WHERE id = ? AND last_used_at < ?");
    this.beginRead = this.db.prepare("BEGIN");
    this.endRead = this.db.prepare("COMMIT");
    this.dataVersionStatement = this.db.prepare("PRAGMA data_version").pluck();
    openIndexes.add(this);
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.on("exit", () => {
        for (const index of openIndexes) index.close();
      });
    }
  }

  /** The raw database, for maintenance queries of the store's own modules. */
  get database(): SqliteDatabase {
    this.endReadWindows();
    this.clearMemo();
    return this.db;
  }

  /**
   * Ends the shared read transaction of every index open on this file in this process, so the next read sees
   * the latest committed state. Called before every write and after taking a key lock.
   */
  endReadWindows(): void {
    for (const index of openIndexes) if (index.file === this.file) index.endReadWindow();
  }

  private endReadWindow(): void {
    if (this.readWindowSince < 0) return;
    this.readWindowSince = -1;
    if (this.db.inTransaction) this.endRead.run();
  }

  private openReadWindow(): void {
    const now = performance.now();
    if (this.readWindowSince >= 0) {
      if (now - this.readWindowSince <= READ_WINDOW_MS) return;
      this.endReadWindow();
    }
    if (this.db.inTransaction) return; // inside a caller's transaction: reads are already consistent
    this.beginRead.run();
    this.readWindowSince = now;
    setImmediate(() => this.endReadWindow()).unref();
    const version = this.dataVersionStatement.get() as number;
    if (version !== this.memoVersion) {
      this.clearMemo();
      this.memoVersion = version;
    }
  }

  /** Forgets every memoized row (after a write of this connection, which `data_version` does not count). */
  private clearMemo(): void {
    if (this.memo.size > 0) this.memo.clear();
    if (this.readOnce.size > 0) this.readOnce.clear();
    this.memoBytes = 0;
  }

  private remember(memoKey: string, row: ValueRow): void {
    if (!this.readOnce.has(memoKey)) {
      if (this.readOnce.size >= MEMO_MAX_ROWS) this.readOnce.clear();
      this.readOnce.add(memoKey);
      return;
    }
    this.readOnce.delete(memoKey);
    const size = row.inline!.byteLength + memoKey.length * 2 + 64;
    if (size > MEMO_MAX_BYTES / 16) return;
    // The memo keeps its own copy, outside Buffer's shared pool; callers get fresh buffers and may write to them.
    this.memo.set(memoKey, { ...row, inline: new Uint8Array(row.inline!) });
    this.memoBytes += size;
    while (this.memoBytes > MEMO_MAX_BYTES || this.memo.size > MEMO_MAX_ROWS) {
      const [oldestKey, oldest] = this.memo.entries().next().value as [string, ValueRow];
      this.memo.delete(oldestKey);
      this.memoBytes -= oldest.inline!.byteLength + oldestKey.length * 2 + 64;
    }
  }

  /** The row for `(name, key)`, or undefined. Queues a last-use update. */
  lookup(name: string, key: string, now = Date.now()): IndexRow | undefined {
    this.openReadWindow();
    const raw = this.lookupStatement.get(name, key) as unknown[] | undefined;
    if (raw === undefined) return undefined;
    const row = toRow(raw);
    if (now - row.lastUsedAt >= TOUCH_GRANULARITY_MS) this.touch(row.id, now);
    return row;
  }

  /** The reader's part of the row for `(name, key)`, or undefined. Queues a last-use update. */
  lookupValue(name: string, key: string, now = Date.now()): ValueRow | undefined {
    this.openReadWindow();
    const memoKey = this.readWindowSince >= 0 ? `${name}\0${key}` : undefined;
    if (memoKey !== undefined) {
      const cached = this.memo.get(memoKey);
      if (cached !== undefined) {
        this.memo.delete(memoKey); // most recently read goes last
        this.memo.set(memoKey, cached);
        if (now - cached.lastUsedAt >= TOUCH_GRANULARITY_MS) {
          this.touch(cached.id, now);
          cached.lastUsedAt = now;
        }
        return { ...cached, inline: Buffer.from(cached.inline!) };
      }
    }
    const raw = this.valueStatement.get(name, key) as unknown[] | undefined;
    if (raw === undefined) return undefined;
    const row: ValueRow = {
      id: raw[0] as number,
      storage: BUCKET_TO_STORAGE[raw[1] as string] ?? ("unknown" as Storage),
      digest: raw[2] as string,
      inline: raw[3] as Uint8Array | null,
      createdAt: raw[4] as number,
      lastUsedAt: raw[5] as number,
      format: raw[6] as string | null,
    };
    if (now - row.lastUsedAt >= TOUCH_GRANULARITY_MS) {
      this.touch(row.id, now);
      row.lastUsedAt = now;
    }
    if (memoKey !== undefined && row.storage === "inline" && row.inline !== null) this.remember(memoKey, row);
    return row;
  }


  /** Writes or replaces the row for `(name, key)`; content must already be in place. */
  upsert(row: NewRow, now = Date.now()): void {
    this.endReadWindows();
    this.clearMemo();
    // Positional parameters and no RETURNING clause: both cost measurably on the put path (≈ 5 µs of ≈ 37).
    // `.run()` steps the statement to its end, so an error of the autocommit (SQLITE_FULL) is thrown, not lost.
    this.upsertStatement.run(
      row.name,
      row.key,
      STORAGE_TO_BUCKET[row.storage],
      row.digest,
      row.inline,
      row.size,
      row.origin,
      row.costMs,
      now,
      now,
      row.format,
      row.components,
    );
  }

  /** Deletes `(name, key)`; with `digest`, only if the row still points at that content. */
  delete(name: string, key: string, digest?: string): boolean {
    this.endReadWindows();
    this.clearMemo();
    const result =
      digest === undefined
        ? this.db.prepare("DELETE FROM entries WHERE name = ? AND key = ?").run(name, key)
        : this.db.prepare("DELETE FROM entries WHERE name = ? AND key = ? AND digest = ?").run(name, key, digest);
    return result.changes > 0;
  }

  /** The key components recorded with an entry (for `explain`), parsed from JSON. */
  components(name: string, key: string): unknown {
    this.openReadWindow();
    const row = this.db.prepare("SELECT components FROM entries WHERE name = ? AND key = ?").get(name, key) as
      | { components: string | null }
      | undefined;
    return row?.components ? JSON.parse(row.components) : undefined;
  }

  /**
   * One page of rows in last-use order (newest first), optionally of one name, after the `(lastUsedAt, id)`
   * position of the previous page's last row.
   */
  page(name: string | undefined, after: [number, number] | undefined, limit: number): IndexRow[] {
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
    return (this.db.prepare(sql).raw(true).all(...params) as unknown[][]).map(toRow);
  }

  /** Digests of every blob and tree some entry refers to (one scan; for garbage collection). */
  referencedContent(): { blobs: Set<string>; trees: Set<string> } {
    this.endReadWindows();
    const blobs = new Set<string>();
    const trees = new Set<string>();
    const rows = this.db.prepare("SELECT DISTINCT bucket, digest FROM entries WHERE bucket != 'inline'").raw(true).iterate();
    for (const [bucket, digest] of rows as IterableIterator<[string, string]>) {
      (bucket === "trees-v1" ? trees : blobs).add(digest);
    }
    return { blobs, trees };
  }

  /** Runs `fn` in one write transaction. */
  transaction<T>(fn: () => T): T {
    this.endReadWindows();
    this.clearMemo();
    return this.db.transaction(fn).immediate();
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
    this.endReadWindows();
    try {
      this.db.transaction(() => {
        for (const [id, at] of touches) this.touchStatement.run(at, id, at);
      })();
    } catch {
      // Last-use times are advisory (they order pruning); losing a batch to a busy or full disk is harmless.
    }
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.endReadWindow();
    this.closed = true;
    openIndexes.delete(this);
    this.db.close();
  }

  private touch(id: number, at: number): void {
    this.pendingTouches.set(id, at);
    if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => this.flush(), TOUCH_FLUSH_MS);
      this.flushTimer.unref();
    }
  }
}

function toRow(raw: unknown[]): IndexRow {
  return {
    id: raw[0] as number,
    name: raw[1] as string,
    key: raw[2] as string,
    storage: BUCKET_TO_STORAGE[raw[3] as string] ?? ("unknown" as Storage),
    digest: raw[4] as string,
    inline: raw[5] as Uint8Array | null,
    size: raw[6] as number,
    origin: raw[7] as Origin,
    costMs: raw[8] as number,
    createdAt: raw[9] as number,
    lastUsedAt: raw[10] as number,
    format: raw[11] as string | null,
  };
}
