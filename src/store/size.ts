import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";
import { resolveCacheDir, type CacheDirRequest } from "./cache-dir.js";
import { CacheRootError } from "./errors.js";
import { emptyTally, type Reporter, type Tally } from "./tally.js";

/** What `measureCache` found. `found` is false when there is no cache at `root`. */
export interface SizeResult {
  root: string;
  found: boolean;
  tally: Tally;
}

/**
 * The cache's disk use: the apparent size of every file under the root, each inode counted once (trees and
 * their hard-linked files are not double-counted). Needs no lock: it only reads.
 */
export async function measureCache(options: CacheDirRequest & { reporter?: Reporter } = {}): Promise<SizeResult> {
  const resolved = resolveCacheDir(options);
  const root = await lstat(resolved.path).catch(() => undefined);
  if (root !== undefined && !root.isDirectory()) {
    throw new CacheRootError(resolved.path, `${resolved.path} is a file, not a directory`);
  }
  const tally = emptyTally();
  const found = await measure(resolved.path, tally, new Set(), options.reporter);
  options.reporter?.end?.(tally);
  return { root: resolved.path, found, tally };
}

async function measure(path: string, tally: Tally, seen: Set<string>, reporter: Reporter | undefined): Promise<boolean> {
  let stats;
  try {
    stats = await lstat(path);
  } catch {
    return false;
  }
  if (stats.isDirectory()) {
    tally.directories++;
    let names: string[] = [];
    try {
      names = await readdir(path);
    } catch {
      return true;
    }
    for (const name of names) await measure(join(path, name), tally, seen, reporter);
    return true;
  }
  if (stats.nlink > 1) {
    const inode = `${stats.dev}:${stats.ino}`;
    if (seen.has(inode)) return true;
    seen.add(inode);
  }
  tally.files++;
  tally.bytes += stats.size;
  reporter?.item?.({ path, bytes: stats.size, tally });
  return true;
}
