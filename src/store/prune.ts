import { existsSync, statSync, type Dirent } from "node:fs";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { CacheWalk } from "./cache-walk.js";
import type { DropCount, DroppedRow, Origin } from "./entry-index.js";
import { gitDatabasesDir } from "./git-databases.js";
import { stampStillUseful } from "./restore-stamps.js";
import { keptDamagedIndexes, readableRows } from "./index-salvage.js";
import { BUCKETS, BUCKET_NAME, TMP_DIR, type CacheLayout } from "./layout.js";
import { openMaintenanceIndex, withExclusiveRoot, type MaintenanceOptions } from "./maintenance-lock.js";
import { addTally, emptyTally, type Tally } from "./tally.js";
import { isManifestName, treeIdOfBucketName } from "./tree-manifest.js";

/** Options of {@link pruneCache}. */
export interface PruneOptions extends MaintenanceOptions {
  /**
   * Drop entries of origin `downloaded` (HTTP bodies, artifacts, unpacked archives, git checkouts; and with them
   * the trees and git databases nothing else uses); keep `computed` ones.
   */
  ci?: boolean | undefined;
  /** Drop entries not used within this many milliseconds. */
  maxAgeMs?: number | undefined;
  /** Drop least-recently-used entries until the entries' content fits in this many bytes. */
  maxSizeBytes?: number | undefined;
  /** Count what would go, remove nothing. */
  dryRun?: boolean | undefined;
  /** Clock for `maxAgeMs` (tests). */
  now?: number | undefined;
  /** Hears of each entry and each piece of content as it is removed (or, with `dryRun`, would be). */
  onItem?: ((item: PruneItem) => void) | undefined;
}

/** Why prune drops an entry: the option that asked for it. */
export type PruneReason = "ci" | "max-age" | "max-size";

/** One thing prune removes: an entry, or content on disk that nothing uses. */
export type PruneItem =
  | { kind: "entry"; name: string; key: string; size: number; origin: Origin; reason: PruneReason }
  | {
      /**
       * `bucket`: a bucket of a version this build does not know; `staging`: a file left in `tmp/` by an
       * interrupted write; `lock`: a folder of per-key lock files; `blob`/`tree`: content no entry refers to;
       * `git`: a git repository database no entry was checked out from; `stamp`: a restore stamp whose target
       * is gone or whose tree no entry holds.
       */
      kind: "bucket" | "staging" | "lock" | "blob" | "tree" | "git" | "stamp";
      path: string;
      bytes: number;
    };

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
 * Removes what is unused: buckets of unknown versions, stale staging files, key-lock files, blobs, trees and git
 * repository databases no entry refers to; and, when asked, downloaded entries (`ci`), entries unused for `maxAgeMs`, and
 * least-recently-used entries beyond `maxSizeBytes`. Holds the root exclusively (see `cleanCache`).
 */
export async function pruneCache(options: PruneOptions = {}): Promise<PruneResult> {
  const dryRun = options.dryRun ?? false;
  const unknownBuckets: string[] = [];
  const { resolved, result } = await withExclusiveRoot(options, async (layout) => {
    const remover = new Remover(new CacheWalk({ dryRun, reporter: options.reporter }), options.onItem);
    let tally = emptyTally();
    for (const name of await readdir(layout.root)) {
      if (BUCKET_NAME.test(name) && !KNOWN_BUCKETS.has(name)) {
        unknownBuckets.push(name);
        tally = addTally(tally, await remover.remove("bucket", join(layout.root, name)));
      }
    }
    tally = addTally(tally, await removeChildren("staging", join(layout.root, TMP_DIR), remover));
    tally = addTally(tally, await removeChildren("lock", layout.bucket("locks"), remover));
    if (existsSync(layout.indexDir)) tally = addTally(tally, await pruneEntries(layout, options, remover));
    return tally;
  });
  const tally = result ?? emptyTally();
  options.reporter?.end?.(tally);
  return { root: resolved.path, found: result !== undefined, dryRun, tally, unknownBuckets };
}

async function pruneEntries(layout: CacheLayout, options: PruneOptions, remover: Remover): Promise<Tally> {
  const index = openMaintenanceIndex(layout, options);
  const now = options.now ?? Date.now();
  let tally = emptyTally();
  const count = (dropped: DropCount): void => {
    tally = addTally(tally, { entries: dropped.entries, bytes: dropped.inlineBytes });
  };
  const onItem = options.onItem;
  const report = (reason: PruneReason) => (onItem ? (row: DroppedRow) => onItem({ kind: "entry", ...row, reason }) : undefined);
  try {
    await index.maintain(!options.dryRun, async (entries) => {
      if (options.ci) count(entries.dropDownloaded(report("ci")));
      if (options.maxAgeMs !== undefined) count(entries.dropUnusedSince(now - options.maxAgeMs, now, report("max-age")));
      if (options.maxSizeBytes !== undefined) count(entries.dropBeyondSize(options.maxSizeBytes, now, report("max-size")));
      const referenced = entries.referencedContent();
      // Content the rows of a kept damaged index refer to stays until `verify --repair` has had its chance.
      const damaged = keptDamagedIndexes(layout.indexDir);
      for (const file of damaged) {
        for (const row of readableRows(file)) {
          if (row.storage === "tree") referenced.trees.add(row.digest);
          else if (row.storage === "blob") referenced.blobs.add(row.digest);
        }
      }
      tally = addTally(tally, await removeUnreferenced(layout.bucket("blobs"), 2, referenced.blobs, remover));
      tally = addTally(tally, await removeUnreferencedTrees(layout.bucket("trees"), referenced.trees, remover));
      tally = addTally(tally, await removeStaleStamps(layout.bucket("stamps"), referenced.trees, remover));
      // Salvaged rows carry no components, so with a damaged index kept no database is known to be unused.
      if (damaged.length === 0) tally = addTally(tally, await removeUnreferencedGitDatabases(layout, referenced.gitDatabases, remover));
    });
    return tally;
  } finally {
    index.close();
  }
}

type ContentKind = Exclude<PruneItem["kind"], "entry">;

/** Removes pieces of content (a file or a whole folder) through the walk and reports each with the bytes it held. */
class Remover {
  constructor(
    private readonly walk: CacheWalk,
    private readonly onItem: PruneOptions["onItem"],
  ) {}

  async remove(kind: ContentKind, path: string): Promise<Tally> {
    const removed = await this.walk.remove(path);
    this.onItem?.({ kind, path, bytes: removed.bytes });
    return removed;
  }
}

/** Walks `depth` levels of fan-out directories and removes content whose name is not in `keep`. */
async function removeUnreferenced(dir: string, depth: number, keep: Set<string>, remover: Remover): Promise<Tally> {
  let tally = emptyTally();
  for (const entry of await entriesIn(dir)) {
    const path = join(dir, entry.name);
    // Anything that is not a fan-out directory at a fan-out level (a stray `.DS_Store`, say) is garbage too.
    if (depth > 0 && entry.isDirectory()) tally = addTally(tally, await removeUnreferenced(path, depth - 1, keep, remover));
    else if (depth > 0 || !keep.has(entry.name)) tally = addTally(tally, await remover.remove("blob", path));
  }
  return tally;
}

/**
 * Removes trees no entry refers to, each with its manifest (`<id>.manifest`). Trees go before manifests: a prune
 * killed half-way leaves a partial tree with the manifest that shows it is partial, never a partial tree without.
 */
async function removeUnreferencedTrees(dir: string, keep: Set<string>, remover: Remover): Promise<Tally> {
  const unreferenced = (await entriesIn(dir)).map((entry) => entry.name).filter((name) => !keep.has(treeIdOfBucketName(name)));
  unreferenced.sort((a, b) => Number(isManifestName(a)) - Number(isManifestName(b)));
  let tally = emptyTally();
  for (const name of unreferenced) tally = addTally(tally, await remover.remove("tree", join(dir, name)));
  return tally;
}

/** Removes the restore stamps that can no longer serve a restore (see `stampStillUseful`). */
async function removeStaleStamps(dir: string, trees: ReadonlySet<string>, remover: Remover): Promise<Tally> {
  // A file where the bucket should be holds no stamp and keeps every restore from writing one.
  if (statSync(dir, { throwIfNoEntry: false })?.isDirectory() === false) return remover.remove("stamp", dir);
  let tally = emptyTally();
  for (const entry of await entriesIn(dir)) {
    const path = join(dir, entry.name);
    if (!entry.isFile() || !stampStillUseful(path, trees)) tally = addTally(tally, await remover.remove("stamp", path));
  }
  return tally;
}

/** Removes the git repository databases (`git-v1/db/<id>`) that no entry names in its components. */
async function removeUnreferencedGitDatabases(layout: CacheLayout, keep: Set<string>, remover: Remover): Promise<Tally> {
  const dir = gitDatabasesDir(layout.root);
  let tally = emptyTally();
  for (const entry of await entriesIn(dir)) {
    if (!keep.has(entry.name)) tally = addTally(tally, await remover.remove("git", join(dir, entry.name)));
  }
  return tally;
}

/** Removes everything in `dir` but `dir` itself; nothing when `dir` cannot be read. */
async function removeChildren(kind: ContentKind, dir: string, remover: Remover): Promise<Tally> {
  let tally = emptyTally();
  const entries = await entriesIn(dir).catch((): Dirent[] => []);
  for (const entry of entries) tally = addTally(tally, await remover.remove(kind, join(dir, entry.name)));
  return tally;
}

/** The entries of a bucket directory; none when it does not exist (yet). */
async function entriesIn(dir: string): Promise<Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
}
