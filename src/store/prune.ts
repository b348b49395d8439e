import { existsSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { EntryIndex } from "./entry-index.js";
import { BUCKETS, BUCKET_NAME, TMP_DIR, type CacheLayout } from "./layout.js";
import { withExclusiveRoot, type MaintenanceOptions } from "./maintenance-lock.js";
import { emptyTally, removeCounted, type Tally } from "./tally.js";

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
    // Count as rows are deleted rather than collecting them: a prune may drop 10⁵–10⁶ entries.
    const take = (sql: string, ...params: unknown[]): void => {
      const rows = db.prepare(`DELETE FROM entries WHERE ${sql} RETURNING bucket, size`).raw(true).iterate(...params);
      for (const [bucket, size] of rows as IterableIterator<[string, number]>) {
        tally.entries++;
        if (bucket === "inline") tally.bytes += size;
      }
    };
    if (options.ci) take("origin = 'downloaded'");
    if (options.maxAgeMs !== undefined) take("last_used_at < ?", (options.now ?? Date.now()) - options.maxAgeMs);
    if (options.maxSizeBytes !== undefined) {
      take(
        `id IN (SELECT id FROM (SELECT id, SUM(size) OVER (ORDER BY last_used_at DESC, id DESC) AS kept FROM entries) WHERE kept > ?)`,
        options.maxSizeBytes,
      );
    }
    const referenced = index.referencedContent();
    const walk = { dryRun, reporter: options.reporter };
    await removeUnreferenced(layout.bucket("blobs"), 2, referenced.blobs, tally, walk);
    await removeUnreferenced(layout.bucket("trees"), 0, referenced.trees, tally, walk);
    db.exec(dryRun ? "ROLLBACK" : "COMMIT");
  } catch (error) {
    if (db.inTransaction) db.exec("ROLLBACK");
    throw error;
  } finally {
    index.close();
  }
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

async function removeChildren(dir: string, tally: Tally, walk: { dryRun: boolean; reporter: MaintenanceOptions["reporter"] }): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  for (const name of names) await removeCounted(join(dir, name), tally, walk);
}
