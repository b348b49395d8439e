import type { Database as SqliteDatabase, Statement } from "better-sqlite3";
import { readFileSync, realpathSync, statSync } from "node:fs";
import { join } from "node:path";
import { loadSqlite } from "./native-modules.js";
import { CURRENT_FILE } from "./index-file.js";
import { ROW_COLUMNS, VALUE_COLUMNS } from "./index-rows.js";

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
  components   TEXT,
  row_check    BLOB
);
CREATE UNIQUE INDEX IF NOT EXISTS entries_by_name_key ON entries (name, key);
CREATE INDEX IF NOT EXISTS entries_by_last_use ON entries (last_used_at);
`;

/** Columns added after the first release of index-v1, with their types. */
const ADDED_COLUMNS: ReadonlyArray<[string, string]> = [["row_check", "BLOB"]];

/**
 * One open connection to one index file, with its prepared statements, and what identifies the files it
 * uses: the `CURRENT` pointer it was opened under and the inode of the shared-memory file (`-shm`), so the
 * index can tell when either was replaced under it.
 */
export class IndexConnection {
  readonly db: SqliteDatabase;
  readonly lookup: Statement<[string, string]>;
  readonly value: Statement<[string, string]>;
  readonly upsert: Statement<unknown[]>;
  readonly touch: Statement<[{ at: number; id: number; now: number }]>;
  readonly begin: Statement;
  readonly commit: Statement;
  readonly dataVersion: Statement;
  private readonly shmInode: number;
  private readonly shmPath: string;
  private readonly pointerPath: string;

  constructor(
    readonly dir: string,
    readonly fileName: string,
    /** The `CURRENT` stamp read before the file name was. */
    readonly pointer: number,
    busyTimeoutMs: number,
  ) {
    const Database = loadSqlite();
    this.db = new Database(this.file, { timeout: busyTimeoutMs });
    try {
      this.db.pragma("journal_mode = WAL");
      this.db.pragma("synchronous = NORMAL");
      // No memory map: a mapped index file that another process truncates (a damaged disk, a hostile tester)
      // kills every reader with SIGBUS; read() turns the same damage into an error the index recovers from.
      this.db.pragma("mmap_size = 0");
      // Pages come through SQLite's own cache instead: up to 64 MiB (taken only as pages are read) keeps the
      // b-tree pages of a large index in memory between reads.
      this.db.pragma("cache_size = -65536");
      this.db.exec(SCHEMA);
      addMissingColumns(this.db);
      this.lookup = this.db.prepare(`SELECT ${ROW_COLUMNS} FROM entries WHERE name = ? AND key = ?`).raw(true);
      this.value = this.db.prepare(`SELECT ${VALUE_COLUMNS} FROM entries WHERE name = ? AND key = ?`).raw(true);
      this.upsert = this.db.prepare(`
        INSERT INTO entries (name, key, bucket, digest, inline, size, origin, cost_ms, created_at, last_used_at, format, components, row_check)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (name, key) DO UPDATE SET
          bucket = excluded.bucket, digest = excluded.digest, inline = excluded.inline, size = excluded.size,
          origin = excluded.origin, cost_ms = excluded.cost_ms, created_at = excluded.created_at,
          last_used_at = excluded.last_used_at, format = excluded.format, components = excluded.components,
          row_check = excluded.row_check`);
      // A use time moves forward only, except that a time in the future (a clock that jumped) is corrected.
      this.touch = this.db.prepare("UPDATE entries SET last_used_at = @at WHERE id = @id AND (last_used_at < @at OR last_used_at > @now)");
      this.begin = this.db.prepare("BEGIN");
      this.commit = this.db.prepare("COMMIT");
      this.dataVersion = this.db.prepare("PRAGMA data_version").pluck();
    } catch (error) {
      this.close();
      throw error;
    }
    this.shmPath = `${this.file}-shm`;
    this.pointerPath = join(this.dir, CURRENT_FILE);
    this.shmInode = mappedInodeOf(this.shmPath) ?? inodeOf(this.shmPath);
  }

  get file(): string {
    return join(this.dir, this.fileName);
  }

  /**
   * False when this connection no longer serves the index: `CURRENT` was swapped (a corrupt index was replaced)
   * or the `-shm` file was deleted or replaced, after which this connection and new ones would see two
   * different views of the write-ahead log. Two `stat`s.
   */
  isCurrent(): boolean {
    return this.sharesLog() && inodeOf(this.pointerPath) === this.pointer;
  }

  /** The `-shm` half of {@link isCurrent}: false when the shared memory file was deleted or replaced. One `stat`. */
  sharesLog(): boolean {
    return this.db.open && inodeOf(this.shmPath) === this.shmInode;
  }

  /** Closes without throwing (a connection to a damaged file may fail to close cleanly). */
  close(): void {
    try {
      if (this.db.open) this.db.close();
    } catch {
      // The descriptors are released either way.
    }
  }
}

function addMissingColumns(db: SqliteDatabase): void {
  const present = new Set((db.prepare("PRAGMA table_info(entries)").all() as Array<{ name: string }>).map((c) => c.name));
  for (const [name, type] of ADDED_COLUMNS) {
    if (present.has(name)) continue;
    try {
      db.exec(`ALTER TABLE entries ADD COLUMN ${name} ${type}`);
    } catch (error) {
      // Another process added it first.
      if (!/duplicate column/i.test((error as Error).message)) throw error;
    }
  }
}

/**
 * The inode of the `-shm` file this process has mapped for `shmPath` (Linux, from /proc/self/maps), or undefined
 * where that cannot be told. Not the inode the path names now: the `-shm` may be deleted and recreated between
 * SQLite mapping it and a `stat`, and SQLite shares one mapping per database file among the connections of a
 * process, so a new connection opened while another still holds a deleted `-shm` uses the deleted one.
 */
function mappedInodeOf(shmPath: string): number | undefined {
  let maps: string;
  let path: string;
  try {
    maps = readFileSync("/proc/self/maps", "utf8");
    path = join(realpathSync(join(shmPath, "..")), shmPath.slice(shmPath.lastIndexOf("/") + 1));
  } catch {
    return undefined;
  }
  for (const line of maps.split("\n")) {
    // address perms offset dev inode path
    const match = /^\S+ \S+ \S+ \S+ (\d+) +(.*)$/.exec(line);
    if (match && (match[2] === path || match[2] === `${path} (deleted)`)) return Number(match[1]);
  }
  return undefined;
}

function inodeOf(path: string): number {
  try {
    return statSync(path, { throwIfNoEntry: false })?.ino ?? 0;
  } catch {
    return 0;
  }
}
