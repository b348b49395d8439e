import { lstat, readdir, rm, rmdir, unlink } from "node:fs/promises";
import { join } from "node:path";

/** What a long operation removed or measured. */
export interface Tally {
  entries: number;
  files: number;
  directories: number;
  bytes: number;
}

/** Progress of a long operation: called per item and once at the end. The library never prints. */
export interface Reporter {
  item?(event: { path: string; bytes: number; tally: Readonly<Tally> }): void;
  end?(tally: Readonly<Tally>): void;
}

const REMOVE_BATCH = 64;

export function emptyTally(): Tally {
  return { entries: 0, files: 0, directories: 0, bytes: 0 };
}

/**
 * Removes a file or directory tree bottom-up, counting each file and its bytes into `tally` (each inode
 * once, so hard links are not double-counted). With `dryRun` it only counts.
 */
export async function removeCounted(
  path: string,
  tally: Tally,
  options: { dryRun?: boolean; reporter?: Reporter | undefined; seen?: Set<string> } = {},
): Promise<void> {
  let stats;
  try {
    stats = await lstat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  const seen = options.seen ?? new Set<string>();
  if (stats.isDirectory()) {
    const children = await readdir(path);
    const childOptions = { ...options, seen };
    // Removing is latency-bound (a syscall or two per file): keep a batch in flight per directory.
    for (let start = 0; start < children.length; start += REMOVE_BATCH) {
      await Promise.all(children.slice(start, start + REMOVE_BATCH).map((name) => removeCounted(join(path, name), tally, childOptions)));
    }
    tally.directories++;
    if (!options.dryRun) {
      try {
        await rmdir(path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") await rm(path, { recursive: true, force: true });
      }
    }
    return;
  }
  const inode = `${stats.dev}:${stats.ino}`;
  const counted = stats.nlink > 1 && seen.has(inode);
  if (stats.nlink > 1) seen.add(inode);
  if (!counted) {
    tally.files++;
    tally.bytes += stats.size;
  }
  if (!options.dryRun) {
    try {
      await unlink(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
  }
  options.reporter?.item?.({ path, bytes: counted ? 0 : stats.size, tally });
}
