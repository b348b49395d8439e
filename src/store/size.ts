import { lstat } from "node:fs/promises";
import { resolveCacheDir, type CacheDirRequest } from "./cache-dir.js";
import { CacheWalk } from "./cache-walk.js";
import { CacheRootError } from "./errors.js";
import type { Reporter, Tally } from "./tally.js";

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
  const tally = await new CacheWalk({ reporter: options.reporter }).measure(resolved.path);
  options.reporter?.end?.(tally);
  return { root: resolved.path, found: root !== undefined, tally };
}
