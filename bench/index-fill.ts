// BENCH-ONLY helper: bulk-loads value entries into a cache's index directly through SQLite, so the index-scale
// suite can reach 10⁶ entries in seconds (10⁶ Store.put calls, each its own transaction, take ~40 s).
//
// Rows are written exactly as Store.put writes an inline value — same `entries` table and columns (created by
// openStore), bucket "inline", sha256 digest of the stored bytes, size, origin, cost, times, format, key
// components as JSON, row checksum — only many per transaction. Entries with blob content are not made here: the suite writes
// those through Store.put, so their files exist as the store lays them out. Never use this outside benchmarks.
import Database from "better-sqlite3";
import { createHash, randomBytes } from "node:crypto";
import { VALUE_FORMAT } from "../src/hash/index.js";
import { rowCheck } from "../src/store/row-check.js";

/** The name and key of bench entry `i`: 1000 names (task-0000 … task-0999), keys like task keys (sha256 hex). */
export function benchEntry(i: number): { name: string; key: string } {
  return { name: `task-${String(i % 1000).padStart(4, "0")}`, key: createHash("sha256").update(`entry-${i}`).digest("hex") };
}

const DAY_MS = 86_400_000;

/**
 * Inserts inline entries `from` … `to - 1` (see {@link benchEntry}) with values of 64–512 bytes, 30 % of origin
 * `downloaded`, last used at random within the past 90 days. Checkpoints the WAL afterwards, as a long-lived
 * cache would have.
 */
export function fillIndex(indexFile: string, from: number, to: number, now = Date.now()): void {
  const db = new Database(indexFile, { timeout: 60_000 });
  try {
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    const insert = db.prepare(`
      INSERT INTO entries (name, key, bucket, digest, inline, size, origin, cost_ms, created_at, last_used_at, format, components, row_check)
      VALUES (?, ?, 'inline', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    const pool = randomBytes(1 << 20);
    const batch = db.transaction((start: number, end: number) => {
      for (let i = start; i < end; i++) {
        const { name, key } = benchEntry(i);
        const size = 64 + Math.floor(Math.random() * 449);
        const offset = Math.floor(Math.random() * (pool.length - size));
        const value = pool.subarray(offset, offset + size);
        const lastUsed = now - Math.floor(Math.random() * 90 * DAY_MS);
        const created = lastUsed - Math.floor(Math.random() * 30 * DAY_MS);
        const digest = createHash("sha256").update(value).digest("hex");
        insert.run(
          name,
          key,
          digest,
          value,
          size,
          i % 10 < 3 ? "downloaded" : "computed",
          Math.round(Math.random() * 5000),
          created,
          lastUsed,
          VALUE_FORMAT,
          JSON.stringify({ name, version: "1", inputs: key.slice(0, 16) }),
          rowCheck({ name, key, bucket: "inline", digest, format: VALUE_FORMAT, createdAt: created, inline: value }),
        );
      }
    });
    for (let start = from; start < to; start += 50_000) batch(start, Math.min(to, start + 50_000));
    db.pragma("wal_checkpoint(TRUNCATE)");
  } finally {
    db.close();
  }
}

/**
 * Gives entries of a bucket (e.g. the blob entries the suite wrote just now through Store.put) the same spread
 * of creation and last-use times as the bulk-loaded ones, so pruning by age or size meets them as it would in a
 * cache that grew over months.
 */
export function spreadLastUse(indexFile: string, bucket: string, now = Date.now()): void {
  const db = new Database(indexFile, { timeout: 60_000 });
  try {
    const rows = db.prepare("SELECT id, name, key, digest, inline, format FROM entries WHERE bucket = ?").all(bucket) as Array<{
      id: number;
      name: string;
      key: string;
      digest: string;
      inline: Uint8Array | null;
      format: string | null;
    }>;
    // The creation time is part of the row checksum, so the checksum is written anew with it.
    const update = db.prepare("UPDATE entries SET last_used_at = ?, created_at = ?, row_check = ? WHERE id = ?");
    db.transaction(() => {
      for (const row of rows) {
        const lastUsed = now - Math.floor(Math.random() * 90 * DAY_MS);
        const created = lastUsed - Math.floor(Math.random() * 30 * DAY_MS);
        update.run(lastUsed, created, rowCheck({ ...row, bucket, createdAt: created }), row.id);
      }
    })();
  } finally {
    db.close();
  }
}
