import { createHash } from "node:crypto";
import { lstatSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync, type Stats } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { ensureDirectory } from "./directories.js";
import type { CacheLayout } from "./layout.js";
import { stagingPath } from "./staging.js";

/**
 * Restore stamps: what a restored (or published) tree's target looked like, one `lstat` per entry, so the next
 * restore of the same tree into it can see, by a `stat` each, that the target still is that tree and leave it
 * alone. A stamp lives in `stamps-v1/<sha256 of the target's absolute path>.json`, written by rename.
 *
 * An entry counts as unchanged when its inode, mode, size, mtime and ctime are the same. Writing a
 * file, replacing it, `chmod`, `touch` and renaming all move the ctime, which only the kernel sets; a directory's
 * mtime moves when an entry is added to it, removed or renamed, so files added anywhere in the tree are seen
 * without reading a directory.
 */

const STAMP_FORMAT = "cachet-restore-stamp/1";
const PARENT_STEP = /(^|\/)\.\.(\/|$)/;

/**
 * One entry: relative POSIX path ("" for the target itself), then inode, mode, size, and mtime and ctime in ms
 * (with their sub-millisecond fraction: a double holds today's times to a fraction of a microsecond).
 */
type StampEntry = [path: string, ino: number, mode: number, size: number, mtimeMs: number, ctimeMs: number];

interface Stamp {
  format: typeof STAMP_FORMAT;
  target: string;
  digest: string;
  entries: StampEntry[];
}

/** The stamp file of `target`. */
export function stampPath(layout: CacheLayout, target: string): string {
  const id = createHash("sha256").update(resolve(target)).digest("hex");
  return join(layout.bucket("stamps"), `${id}.json`);
}

function entryOf(path: string, stats: Stats): StampEntry {
  return [path, stats.ino, stats.mode, stats.size, stats.mtimeMs, stats.ctimeMs];
}

function lstatOrUndefined(path: string): Stats | undefined {
  return lstatSync(path, { throwIfNoEntry: false });
}

/** The stamp entries of `paths` (relative, "" first) under `target`, or undefined if one is missing. */
export function statPaths(target: string, paths: readonly string[]): StampEntry[] | undefined {
  const entries: StampEntry[] = [];
  const prefix = `${target}/`;
  for (const path of paths) {
    const stats = lstatOrUndefined(path === "" ? target : prefix + path);
    if (stats === undefined) return undefined;
    entries.push(entryOf(path, stats));
  }
  return entries;
}

/** Every entry under the directory `dir` (itself first, then pre-order), as stamp entries. */
export function statWalk(dir: string): StampEntry[] | undefined {
  const root = lstatOrUndefined(dir);
  if (root === undefined || !root.isDirectory()) return undefined;
  const entries: StampEntry[] = [entryOf("", root)];
  const visit = (relative: string): void => {
    for (const name of readdirSync(relative === "" ? dir : join(dir, relative))) {
      const path = relative === "" ? name : `${relative}/${name}`;
      const stats = lstatSync(join(dir, path));
      entries.push(entryOf(path, stats));
      if (stats.isDirectory()) visit(path);
    }
  };
  try {
    visit("");
  } catch {
    return undefined;
  }
  return entries;
}

/** True when both lists name the same paths (in any order). */
export function samePaths(entries: readonly StampEntry[], paths: readonly string[]): boolean {
  if (entries.length !== paths.length) return false;
  const named = new Set(paths);
  return entries.every(([path]) => named.has(path));
}

/** Records that `target` now holds the tree `digest`, as `entries` describe it. Never throws: a stamp is a hint. */
export function writeStamp(layout: CacheLayout, target: string, digest: string, entries: StampEntry[]): void {
  const stamp: Stamp = { format: STAMP_FORMAT, target: resolve(target), digest, entries };
  const path = stampPath(layout, target);
  const staged = stagingPath(layout.tmp, "stamp");
  try {
    ensureDirectory(dirname(path));
    writeFileSync(staged, JSON.stringify(stamp), { flag: "wx" });
    renameSync(staged, path);
  } catch {
    rmSync(staged, { force: true });
  }
}

/** Forgets what `target` held (before a restore replaces it, so a failed restore leaves no stale stamp). */
export function removeStamp(layout: CacheLayout, target: string): void {
  rmSync(stampPath(layout, target), { force: true });
}

/**
 * True when the stamp of `target` says it holds the tree `digest` and every stamped entry is still the same
 * (one `lstat` each). Anything unreadable or odd in the stamp is "changed", so the caller restores.
 */
export function targetHoldsTree(layout: CacheLayout, target: string, digest: string): boolean {
  let stamp: Stamp;
  try {
    stamp = JSON.parse(readFileSync(stampPath(layout, target), "utf8")) as Stamp;
  } catch {
    return false;
  }
  if (stamp?.format !== STAMP_FORMAT || stamp.digest !== digest || stamp.target !== resolve(target)) return false;
  if (!Array.isArray(stamp.entries) || stamp.entries.length === 0 || stamp.entries[0]?.[0] !== "") return false;
  // One lstat per entry, compared as it goes: no copy of the listing is made, and the first difference ends it.
  const prefix = `${target}/`;
  for (const entry of stamp.entries) {
    const path = entry[0];
    if (typeof path !== "string" || path.startsWith("/") || PARENT_STEP.test(path)) return false;
    const stats = lstatOrUndefined(path === "" ? target : prefix + path);
    if (
      stats === undefined ||
      stats.ino !== entry[1] ||
      stats.mode !== entry[2] ||
      stats.size !== entry[3] ||
      stats.mtimeMs !== entry[4] ||
      stats.ctimeMs !== entry[5]
    ) {
      return false;
    }
  }
  return true;
}
