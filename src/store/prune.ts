import { existsSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import type { Database } from "better-sqlite3";
import { EntryIndex } from "./entry-index.js";
import { BUCKETS, BUCKET_NAME, TMP_DIR, type CacheLayout } from "./layout.js";
import { withExclusiveRoot, type MaintenanceOptions } from "./maintenance-lock.js";
import { emptyTally, removeCounted, type Tally } from "./tally.js";
import { isManifestName, treeIdOfBucketName } from "./tree-manifest.js";

/** Options of {@link pruneCache}. */
export interface PruneOptions extends MaintenanceOptions {
  /** Drop entries of origin `downloaded` (and trees unpacked from them); keep `computed` ones. */
  ci?: boolean | undefined;
  /** Drop entries not used within this many milliseconds. */
  maxAgeMs?: number | undefined;
  /** Drop least-recently-used entries until the entries' content fits in this many bytes. */
  maxSizeBytes?: number | undefined;
  /** Count what would go, remove nothing. */
  dryRun?: boolean | undefined;
  /** Clock for `maxAgeMs` (tests). */
  now?: number | undefined;
}

/** What `pruneCache` removed (or would remove, with `dryRun`). */
export interface PruneResult {
  root: string;
  found: boolean;
  dryRun: boolean;
  tally: Tally;
  /** Bucket directories of versions this build does not know. */
  unknownBuckets: string[];
}

const KNOWN_BUCKETS = new Set<string>(Object.values(BUCKETS));

/**
 * Removes what is unused: buckets of unknown versions, stale staging files, key-lock files, blobs and trees no
 * entry refers to; and, when asked, downloaded entries (`ci`), entries unused for `maxAgeMs`, and
 * least-recently-used entries beyond `maxSizeBytes`. Holds the root exclusively (see `cleanCache`).
 */
export async function pruneCache(options: PruneOptions = {}): Promise<PruneResult> {
  const tally = emptyTally();
  const dryRun = options.dryRun ?? false;
  const unknownBuckets: string[] = [];
  const { resolved, result } = await withExclusiveRoot(options, async (layout) => {
    const walk = { dryRun, reporter: options.reporter };
    for (const name of await readdir(layout.root)) {
      if (BUCKET_NAME.test(name) && !KNOWN_BUCKETS.has(name)) {
        unknownBuckets.push(name);
        await removeCounted(join(layout.root, name), tally, walk);
      }
    }
    await removeChildren(join(layout.root, TMP_DIR), tally, walk);
    await removeChildren(layout.bucket("locks"), tally, walk);
    if (existsSync(layout.indexFile)) await pruneEntries(layout, options, tally);
    return true;
  });
  options.reporter?.end?.(tally);
  return { root: resolved.path, found: result === true, dryRun, tally, unknownBuckets };
}

async function pruneEntries(layout: CacheLayout, options: PruneOptions, tally: Tally): Promise<void> {
  const index = new EntryIndex(layout.indexFile);
  const db = index.database;
  const dryRun = options.dryRun ?? false;
  db.exec("BEGIN IMMEDIATE");
  try {
    if (options.ci) dropEntries(db, "origin = 'downloaded'", [], tally);
    if (options.maxAgeMs !== undefined) dropEntries(db, "last_used_at < ?", [(options.now ?? Date.now()) - options.maxAgeMs], tally);
    if (options.maxSizeBytes !== undefined) {
      // The first row, newest first, at which the running total passes the limit: it and everything older go.
      const cutoff = db
        .prepare(
          "SELECT last_used_at, id FROM (SELECT last_used_at, id, SUM(size) OVER (ORDER BY last_used_at DESC, id DESC) AS kept " +
            "FROM entries) WHERE kept > ? LIMIT 1",
        )
        .raw(true)
        .get(options.maxSizeBytes) as [number, number] | undefined;
      if (cutoff) dropEntries(db, "(last_used_at, id) <= (?, ?)", cutoff, tally);
    }
    const referenced = index.referencedContent();
    const walk = { dryRun, reporter: options.reporter };
    await removeUnreferenced(layout.bucket("blobs"), 2, referenced.blobs, tally, walk);
    await removeUnreferencedTrees(layout.bucket("trees"), referenced.trees, tally, walk);
    db.exec(dryRun ? "ROLLBACK" : "COMMIT");
  } catch (error) {
    if (db.inTransaction) db.exec("ROLLBACK");
    throw error;
  } finally {
    index.close();
  }
}

/** Dropping more than this share of the rows (and at least REBUILD_MIN_ROWS) copies the survivors instead. */
const REBUILD_SHARE = 0.25;
const REBUILD_MIN_ROWS = 20_000;

/**
 * Removes the entries matching `where`, counting them into `tally`. Deleting row by row costs a b-tree update
 * per row in the table and each index (seconds for 10⁶ rows); when most rows go, copying the survivors into a
 * fresh table built from the stored schema (so columns added by newer builds survive) and swapping it in is
 * several times faster. Both run inside the caller's transaction, so a dry run can roll either back.
 */
function dropEntries(db: Database, where: string, params: readonly unknown[], tally: Tally): void {
  const [count, inlineBytes] = db
    .prepare(`SELECT count(*), coalesce(sum(CASE WHEN bucket = 'inline' THEN size ELSE 0 END), 0) FROM entries WHERE ${where}`)
    .raw(true)
    .get(...params) as [number, number];
  if (count === 0) return;
  tally.entries += count;
  tally.bytes += inlineBytes;
  const total = db.prepare("SELECT count(*) FROM entries").pluck().get() as number;
  if (count < REBUILD_MIN_ROWS || count < total * REBUILD_SHARE) {
    db.prepare(`DELETE FROM entries WHERE ${where}`).run(...params);
    return;
  }
  const schema = db.prepare("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'entries'").pluck().get() as string;
  const indexes = db
    .prepare("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'entries' AND sql IS NOT NULL")
    .pluck()
    .all() as string[];
  db.exec(schema.replace(/^CREATE TABLE (IF NOT EXISTS )?["`]?entries["`]?/i, "CREATE TABLE entries_kept"));
  db.prepare(`INSERT INTO entries_kept SELECT * FROM entries WHERE NOT (${where})`).run(...params);
  db.exec("DROP TABLE entries");
  db.exec("ALTER TABLE entries_kept RENAME TO entries");
  for (const sql of indexes) db.exec(sql);
}

/** Walks `depth` levels of fan-out directories and removes content whose name is not in `keep`. */
async function removeUnreferenced(
  dir: string,
  depth: number,
  keep: Set<string>,
  tally: Tally,
  walk: { dryRun: boolean; reporter: MaintenanceOptions["reporter"] },
): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  for (const name of names) {
    const path = join(dir, name);
    if (depth > 0) await removeUnreferenced(path, depth - 1, keep, tally, walk);
    else if (!keep.has(name)) await removeCounted(path, tally, walk);
  }
}

/**
 * Removes trees no entry refers to, each with its manifest (`<id>.manifest`). Trees go before manifests: a prune
 * killed half-way leaves a partial tree with the manifest that shows it is partial, never a partial tree without.
 */
async function removeUnreferencedTrees(
  dir: string,
  keep: Set<string>,
  tally: Tally,
  walk: { dryRun: boolean; reporter: MaintenanceOptions["reporter"] },
): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  const unreferenced = names.filter((name) => !keep.has(treeIdOfBucketName(name)));
  unreferenced.sort((a, b) => Number(isManifestName(a)) - Number(isManifestName(b)));
  for (const name of unreferenced) await removeCounted(join(dir, name), tally, walk);
}

async function removeChildren(dir: string, tally: Tally, walk: { dryRun: boolean; reporter: MaintenanceOptions["reporter"] }): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  for (const name of names) await removeCounted(join(dir, name), tally, walk);
}
