import type { Database as SqliteDatabase } from "better-sqlite3";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { CORRUPT_INDEX, currentIndexName, isIndexName } from "./index-file.js";
import { ROW_COLUMNS, hasRowTypes, rawBucket, rawRowCheck, storageOf, toRow, type IndexRow, type Storage } from "./index-rows.js";
import { loadSqlite } from "./native-modules.js";

/** A row read back from a damaged index, with the checksum it was written with. */
export interface SalvagedRow extends Omit<IndexRow, "storage"> {
  /** Undefined for a bucket this build does not know. */
  storage: Storage | undefined;
  /** The raw bucket column, which the checksum covers. */
  bucket: string;
  check: Uint8Array | null;
  components: string | null;
}

/** Rows read per attempt; an attempt that meets a damaged page is retried row by row. */
const CHUNK = 64;

/**
 * The damaged indexes kept in `dir` (`corrupt-*.sqlite`), oldest first, then any index file `CURRENT` does not
 * name (left by a process that opened an index as it was being replaced): both may hold entries to recover.
 */
export function keptDamagedIndexes(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  let current: string | undefined;
  try {
    current = currentIndexName(dir);
  } catch {
    current = undefined;
  }
  const kept = names.filter((name) => CORRUPT_INDEX.test(name)).sort();
  const strays = names.filter((name) => isIndexName(name) && name !== current).sort();
  return [...kept, ...strays].map((name) => join(dir, name));
}

/**
 * Every row that can still be read from a damaged index file, in rowid order, read-only. Rows are read in
 * small rowid ranges, a range that fails row by row, so a damaged page costs only its own rows; a file SQLite
 * cannot open at all yields nothing. Callers must still check each row (its checksum, its content) before trusting it.
 */
export function* readableRows(file: string): Generator<SalvagedRow> {
  let db: SqliteDatabase;
  try {
    const Database = loadSqlite();
    db = new Database(file, { readonly: true, fileMustExist: true });
    // A file shorter than its header says is refused outright unless the schema may be read as is; that
    // needs SQLite's defensive mode off (harmless on this read-only connection).
    db.unsafeMode(true);
    db.pragma("writable_schema = ON");
  } catch {
    return;
  }
  try {
    let maxId: number | undefined;
    try {
      maxId = (db.prepare("SELECT max(id) FROM entries").pluck().get() as number | null) ?? 0;
    } catch {
      maxId = undefined; // the b-tree's right edge is damaged: walk until ranges stop answering
    }
    const statement = prepareRange(db);
    if (statement === undefined) return;
    let barrenInARow = 0;
    for (let from = 0; maxId === undefined ? barrenInARow < 64 : from < maxId; from += CHUNK) {
      let rows: unknown[][];
      try {
        rows = statement.all(from, from + CHUNK) as unknown[][];
      } catch {
        // A damaged page in this range: read its rows one by one, keeping those on sound pages.
        rows = [];
        for (let id = from + 1; id <= from + CHUNK; id++) {
          try {
            rows.push(...(statement.all(id - 1, id) as unknown[][]));
          } catch {
            // this row's page is damaged
          }
        }
      }
      barrenInARow = rows.length === 0 ? barrenInARow + 1 : 0;
      for (const raw of rows) {
        if (!hasRowTypes(raw)) continue;
        const components = raw[raw.length - 1];
        yield {
          ...toRow(raw),
          storage: storageOf(rawBucket(raw)),
          bucket: rawBucket(raw),
          check: rawRowCheck(raw),
          components: typeof components === "string" ? components : null,
        };
      }
    }
  } finally {
    try {
      db.close();
    } catch {
      // read-only: nothing to lose
    }
  }
}

/** The range query, with the checksum column where the file has it (files from before checksums lack it). */
function prepareRange(db: SqliteDatabase): { all(...params: unknown[]): unknown[] } | undefined {
  for (const columns of [`${ROW_COLUMNS}, components`, `${ROW_COLUMNS.replace("row_check", "NULL")}, components`]) {
    try {
      return db.prepare(`SELECT ${columns} FROM entries WHERE id > ? AND id <= ? ORDER BY id`).raw(true);
    } catch {
      // try the older column set, then give up
    }
  }
  return undefined;
}
