import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { CacheWalk } from "./cache-walk.js";
import { assertValidName } from "./entry-name.js";
import { EntryIndex } from "./entry-index.js";
import { LOCK_FILE, QUEUE_LOCK_FILE, type CacheLayout } from "./layout.js";
import { openMaintenanceIndex, withExclusiveRoot, type MaintenanceOptions } from "./maintenance-lock.js";
import { addTally, emptyTally, type Tally } from "./tally.js";
import { treeManifestPath } from "./tree-manifest.js";

/** What `cleanCache` did. `found` is false when there was no cache at `root`. */
export interface CleanResult {
  root: string;
  found: boolean;
  tally: Tally;
}

/** Files a clean keeps: processes blocked on them must find the same lock once the clean releases it. */
const KEPT = new Set([LOCK_FILE, QUEUE_LOCK_FILE]);

/**
 * Removes the whole cache (everything under the root but its two lock files), or with `names` only those
 * names' entries and the content no other entry uses. Waits (holding the root exclusively, new users queued
 * behind it) until no other process has the cache open, unless `force`. Needs no readable index to remove
 * everything.
 */
export async function cleanCache(options: MaintenanceOptions & { names?: readonly string[] } = {}): Promise<CleanResult> {
  const names = options.names ?? [];
  for (const name of names) assertValidName(name);
  const { resolved, result } = await withExclusiveRoot(options, (layout) => {
    const walk = new CacheWalk({ reporter: options.reporter });
    return names.length === 0 ? removeEverything(layout, walk) : removeNames(layout, names, walk, options);
  });
  const tally = result ?? emptyTally();
  options.reporter?.end?.(tally);
  return { root: resolved.path, found: result !== undefined, tally };
}

async function removeEverything(layout: CacheLayout, walk: CacheWalk): Promise<Tally> {
  let tally = addTally(emptyTally(), { entries: countQuietly(layout) });
  for (const name of await readdir(layout.root)) {
    if (!KEPT.has(name)) tally = addTally(tally, await walk.remove(join(layout.root, name)));
  }
  return tally;
}

/** The number of entries, or 0 when the index cannot be read (a clean removes it either way). */
function countQuietly(layout: CacheLayout): number {
  let index: EntryIndex | undefined;
  try {
    index = new EntryIndex(layout.indexDir, { lockTimeoutSeconds: 0 });
    return index.count();
  } catch {
    return 0;
  } finally {
    index?.close();
  }
}

async function removeNames(layout: CacheLayout, names: readonly string[], walk: CacheWalk, options: MaintenanceOptions): Promise<Tally> {
  const index = openMaintenanceIndex(layout, options);
  try {
    const removed = index.removeNames(names);
    let tally = addTally(emptyTally(), { entries: removed.length });
    const referenced = index.referencedContent();
    const seen = new Set<string>();
    for (const row of removed) {
      if (row.storage === "inline") {
        tally = addTally(tally, { bytes: row.size });
        continue;
      }
      const stillUsed = (row.storage === "tree" ? referenced.trees : referenced.blobs).has(row.digest);
      if (seen.has(row.digest) || stillUsed) continue;
      seen.add(row.digest);
      if (row.storage === "tree") {
        tally = addTally(tally, await walk.remove(layout.tree(row.digest)));
        tally = addTally(tally, await walk.remove(treeManifestPath(layout, row.digest)));
      } else tally = addTally(tally, await walk.remove(layout.blob(row.digest)));
    }
    return tally;
  } finally {
    index.close();
  }
}
