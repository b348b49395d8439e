import { existsSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { CacheWalk } from "./cache-walk.js";
import { assertValidName } from "./entry-name.js";
import { EntryIndex } from "./entry-index.js";
import { gitDatabaseDir } from "./git-databases.js";
import { CURRENT_FILE, INITIAL_INDEX } from "./index-file.js";
import { LOCK_FILE, QUEUE_LOCK_FILE, type CacheLayout } from "./layout.js";
import { openMaintenanceIndex, withExclusiveRoot, type MaintenanceOptions } from "./maintenance-lock.js";
import { addTally, emptyTally, type Tally } from "./tally.js";
import { treeManifestPath } from "./tree-manifest.js";

/** What `cleanCache` did. `found` is false when there was no cache at `root`. */
export interface CleanResult {
  root: string;
  found: boolean;
  tally: Tally;
  /** For a clean of named entries: how many entries each name had (0 for a name with none). */
  entriesByName?: Record<string, number>;
}

/** Files a clean keeps: processes blocked on them must find the same lock once the clean releases it. */
const KEPT = new Set([LOCK_FILE, QUEUE_LOCK_FILE]);

/**
 * Removes the whole cache (everything under the root but its two lock files), or with `names` only those
 * names' entries and the content (blobs, trees, git repository databases) no other entry uses. Waits (holding the root exclusively, new users queued
 * behind it) until no other process has the cache open, unless `force`. Needs no readable index to remove
 * everything.
 */
export async function cleanCache(options: MaintenanceOptions & { names?: readonly string[] } = {}): Promise<CleanResult> {
  const names = options.names ?? [];
  for (const name of names) assertValidName(name);
  const { resolved, result } = await withExclusiveRoot(options, async (layout): Promise<Omit<CleanResult, "root" | "found">> => {
    const walk = new CacheWalk({ reporter: options.reporter });
    return names.length === 0 ? { tally: await removeEverything(layout, walk) } : removeNames(layout, names, walk, options);
  });
  const tally = result?.tally ?? emptyTally();
  options.reporter?.end?.(tally);
  const entriesByName = names.length === 0 ? undefined : (result?.entriesByName ?? Object.fromEntries(names.map((name) => [name, 0])));
  return { root: resolved.path, found: result !== undefined, tally, ...(entriesByName && { entriesByName }) };
}

async function removeEverything(layout: CacheLayout, walk: CacheWalk): Promise<Tally> {
  let tally = addTally(emptyTally(), { entries: countQuietly(layout) });
  for (const name of await readdir(layout.root)) {
    if (!KEPT.has(name)) tally = addTally(tally, await walk.remove(join(layout.root, name)));
  }
  return tally;
}

/** The number of entries, or 0 when there is no index or it cannot be read (a clean removes it either way). */
function countQuietly(layout: CacheLayout): number {
  if (!hasIndex(layout)) return 0;
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

/** Whether an index was ever started here (opening one would create it). */
function hasIndex(layout: CacheLayout): boolean {
  return existsSync(join(layout.indexDir, CURRENT_FILE)) || existsSync(join(layout.indexDir, INITIAL_INDEX));
}

async function removeNames(
  layout: CacheLayout,
  names: readonly string[],
  walk: CacheWalk,
  options: MaintenanceOptions,
): Promise<{ tally: Tally; entriesByName: Record<string, number> }> {
  const index = openMaintenanceIndex(layout, options);
  try {
    const removed = index.removeNames(names);
    let tally = addTally(emptyTally(), { entries: removed.length });
    const entriesByName: Record<string, number> = Object.fromEntries(names.map((name) => [name, 0]));
    for (const row of removed) entriesByName[row.name] = (entriesByName[row.name] ?? 0) + 1;
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
    for (const id of new Set(removed.map((row) => row.gitDatabase))) {
      if (id !== undefined && !referenced.gitDatabases.has(id)) tally = addTally(tally, await walk.remove(gitDatabaseDir(layout.root, id)));
    }
    return { tally, entriesByName };
  } finally {
    index.close();
  }
}
