import { existsSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { assertValidName } from "./entry-name.js";
import { EntryIndex } from "./entry-index.js";
import type { CacheLayout } from "./layout.js";
import { withExclusiveRoot, type MaintenanceOptions } from "./maintenance-lock.js";
import { emptyTally, removeCounted, type Tally } from "./tally.js";
import { treeManifestPath } from "./tree-manifest.js";

/** What `cleanCache` did. `found` is false when there was no cache at `root`. */
export interface CleanResult {
  root: string;
  found: boolean;
  tally: Tally;
}

/**
 * Removes the whole cache, or with `names` only those names' entries and the content no other entry uses.
 * Waits (holding the root exclusively) until no other process has the cache open, unless `force`.
 */
export async function cleanCache(options: MaintenanceOptions & { names?: readonly string[] } = {}): Promise<CleanResult> {
  const names = options.names ?? [];
  for (const name of names) assertValidName(name);
  const tally = emptyTally();
  const { resolved, result } = await withExclusiveRoot(options, async (layout) => {
    if (names.length === 0) await removeEverything(layout, tally, options);
    else await removeNames(layout, names, tally, options);
    return true;
  });
  options.reporter?.end?.(tally);
  return { root: resolved.path, found: result === true, tally };
}

async function removeEverything(layout: CacheLayout, tally: Tally, options: MaintenanceOptions): Promise<void> {
  const index = existsSync(layout.indexFile) ? new EntryIndex(layout.indexFile) : undefined;
  if (index) {
    tally.entries += (index.database.prepare("SELECT count(*) AS n FROM entries").get() as { n: number }).n;
    index.close();
  }
  const seen = new Set<string>();
  for (const name of await readdir(layout.root)) {
    await removeCounted(join(layout.root, name), tally, { reporter: options.reporter, seen });
  }
  await removeCounted(layout.root, tally, { seen });
}

async function removeNames(
  layout: CacheLayout,
  names: readonly string[],
  tally: Tally,
  options: MaintenanceOptions,
): Promise<void> {
  if (!existsSync(layout.indexFile)) return;
  const index = new EntryIndex(layout.indexFile);
  try {
    const db = index.database;
    const placeholders = names.map(() => "?").join(", ");
    const removed = index.transaction(() => {
      const rows = db
        .prepare(`SELECT bucket, digest, size FROM entries WHERE name IN (${placeholders})`)
        .all(...names) as Array<{ bucket: string; digest: string; size: number }>;
      db.prepare(`DELETE FROM entries WHERE name IN (${placeholders})`).run(...names);
      return rows;
    });
    tally.entries += removed.length;
    const referenced = index.referencedContent();
    const seen = new Set<string>();
    for (const row of removed) {
      if (row.bucket === "inline") {
        tally.bytes += row.size;
        continue;
      }
      const stillUsed = (row.bucket === "trees-v1" ? referenced.trees : referenced.blobs).has(row.digest);
      if (seen.has(row.digest) || stillUsed) continue;
      seen.add(row.digest);
      const path = row.bucket === "trees-v1" ? layout.tree(row.digest) : layout.blob(row.digest);
      await removeCounted(path, tally, { reporter: options.reporter });
      if (row.bucket === "trees-v1") await removeCounted(treeManifestPath(layout, row.digest), tally, { reporter: options.reporter });
    }
  } finally {
    index.close();
  }
}
