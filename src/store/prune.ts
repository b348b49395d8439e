import { existsSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { CacheWalk } from "./cache-walk.js";
import type { DropCount } from "./entry-index.js";
import { keptDamagedIndexes, readableRows } from "./index-salvage.js";
import { BUCKETS, BUCKET_NAME, TMP_DIR, type CacheLayout } from "./layout.js";
import { openMaintenanceIndex, withExclusiveRoot, type MaintenanceOptions } from "./maintenance-lock.js";
import { addTally, emptyTally, type Tally } from "./tally.js";
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
  const dryRun = options.dryRun ?? false;
  const unknownBuckets: string[] = [];
  const { resolved, result } = await withExclusiveRoot(options, async (layout) => {
    const walk = new CacheWalk({ dryRun, reporter: options.reporter });
    let tally = emptyTally();
    for (const name of await readdir(layout.root)) {
      if (BUCKET_NAME.test(name) && !KNOWN_BUCKETS.has(name)) {
        unknownBuckets.push(name);
        tally = addTally(tally, await walk.remove(join(layout.root, name)));
      }
    }
    tally = addTally(tally, await removeChildren(join(layout.root, TMP_DIR), walk));
    tally = addTally(tally, await removeChildren(layout.bucket("locks"), walk));
    if (existsSync(layout.indexDir)) tally = addTally(tally, await pruneEntries(layout, options, walk));
    return tally;
  });
  const tally = result ?? emptyTally();
  options.reporter?.end?.(tally);
  return { root: resolved.path, found: result !== undefined, dryRun, tally, unknownBuckets };
}

async function pruneEntries(layout: CacheLayout, options: PruneOptions, walk: CacheWalk): Promise<Tally> {
  const index = openMaintenanceIndex(layout, options);
  const now = options.now ?? Date.now();
  let tally = emptyTally();
  const count = (dropped: DropCount): void => {
    tally = addTally(tally, { entries: dropped.entries, bytes: dropped.inlineBytes });
  };
  try {
    await index.maintain(!options.dryRun, async (entries) => {
      if (options.ci) count(entries.dropDownloaded());
      if (options.maxAgeMs !== undefined) count(entries.dropUnusedSince(now - options.maxAgeMs, now));
      if (options.maxSizeBytes !== undefined) count(entries.dropBeyondSize(options.maxSizeBytes, now));
      const referenced = entries.referencedContent();
      // Content the rows of a kept damaged index refer to stays until `verify --repair` has had its chance.
      for (const file of keptDamagedIndexes(layout.indexDir)) {
        for (const row of readableRows(file)) {
          if (row.storage === "tree") referenced.trees.add(row.digest);
          else if (row.storage === "blob") referenced.blobs.add(row.digest);
        }
      }
      tally = addTally(tally, await removeUnreferenced(layout.bucket("blobs"), 2, referenced.blobs, walk));
      tally = addTally(tally, await removeUnreferencedTrees(layout.bucket("trees"), referenced.trees, walk));
    });
    return tally;
  } finally {
    index.close();
  }
}

/** Walks `depth` levels of fan-out directories and removes content whose name is not in `keep`. */
async function removeUnreferenced(dir: string, depth: number, keep: Set<string>, walk: CacheWalk): Promise<Tally> {
  let tally = emptyTally();
  for (const name of await namesIn(dir)) {
    const path = join(dir, name);
    if (depth > 0) tally = addTally(tally, await removeUnreferenced(path, depth - 1, keep, walk));
    else if (!keep.has(name)) tally = addTally(tally, await walk.remove(path));
  }
  return tally;
}

/**
 * Removes trees no entry refers to, each with its manifest (`<id>.manifest`). Trees go before manifests: a prune
 * killed half-way leaves a partial tree with the manifest that shows it is partial, never a partial tree without.
 */
async function removeUnreferencedTrees(dir: string, keep: Set<string>, walk: CacheWalk): Promise<Tally> {
  const unreferenced = (await namesIn(dir)).filter((name) => !keep.has(treeIdOfBucketName(name)));
  unreferenced.sort((a, b) => Number(isManifestName(a)) - Number(isManifestName(b)));
  let tally = emptyTally();
  for (const name of unreferenced) tally = addTally(tally, await walk.remove(join(dir, name)));
  return tally;
}

/** Removes everything in `dir` but `dir` itself. */
async function removeChildren(dir: string, walk: CacheWalk): Promise<Tally> {
  let tally = emptyTally();
  for (const name of await namesIn(dir)) tally = addTally(tally, await walk.remove(join(dir, name)));
  return tally;
}

/** The names in a bucket directory; none when it does not exist (yet). */
async function namesIn(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
}
