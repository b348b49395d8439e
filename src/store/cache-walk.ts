import { lstat, readdir, rm, rmdir, unlink } from "node:fs/promises";
import type { Stats } from "node:fs";
import { join } from "node:path";
import { addTally, emptyTally, type Reporter, type Tally } from "./tally.js";

/** Entries handled at once per directory: walking is latency-bound (a syscall or two per entry). */
const BATCH = 64;

/** Options of a {@link CacheWalk}. */
export interface CacheWalkOptions {
  /** Removals only count what they would remove. */
  dryRun?: boolean | undefined;
  /** Told of each file as it is counted. */
  reporter?: Reporter | undefined;
}

/** `measure` reads what it can; `remove` and `count` (a dry-run removal) fail on what they cannot read. */
type Mode = "measure" | "remove" | "count";

/**
 * The one walk over files under a cache root, serving `size`, `clean` and `prune`: it counts each directory and
 * each file's apparent size (each inode once over the whole walk, so hard-linked trees are not counted twice),
 * and removes bottom-up when asked. Every call returns what it counted; callers add the tallies up.
 */
export class CacheWalk {
  private readonly seen = new Set<string>();
  /** Everything counted so far, for the reporter. */
  private progress = emptyTally();

  constructor(private readonly options: CacheWalkOptions = {}) {}

  /** Removes a file or a directory tree (with `dryRun`, only counts it). A path that does not exist counts nothing. */
  remove(path: string): Promise<Tally> {
    return this.visit(path, this.options.dryRun ? "count" : "remove");
  }

  /** Counts a file or a directory tree, skipping what cannot be read. A path that does not exist counts nothing. */
  measure(path: string): Promise<Tally> {
    return this.visit(path, "measure");
  }

  private async visit(path: string, mode: Mode): Promise<Tally> {
    let stats: Stats;
    try {
      stats = await lstat(path);
    } catch (error) {
      if (mode === "measure" || errorCode(error) === "ENOENT") return emptyTally();
      throw error;
    }
    return stats.isDirectory() ? this.visitDirectory(path, mode) : this.visitFile(path, stats, mode);
  }

  private async visitDirectory(path: string, mode: Mode): Promise<Tally> {
    let names: string[] = [];
    try {
      names = await readdir(path);
    } catch (error) {
      if (mode !== "measure") throw error;
    }
    let tally = addTally(emptyTally(), { directories: 1 });
    for (let start = 0; start < names.length; start += BATCH) {
      const parts = await Promise.all(names.slice(start, start + BATCH).map((name) => this.visit(join(path, name), mode)));
      for (const part of parts) tally = addTally(tally, part);
    }
    if (mode === "remove") {
      try {
        await rmdir(path);
      } catch (error) {
        if (errorCode(error) !== "ENOENT") await rm(path, { recursive: true, force: true });
      }
    }
    return tally;
  }

  private async visitFile(path: string, stats: Stats, mode: Mode): Promise<Tally> {
    const first = this.firstSight(stats);
    if (mode === "remove") {
      try {
        await unlink(path);
      } catch (error) {
        if (errorCode(error) !== "ENOENT") throw error;
      }
    }
    const tally = addTally(emptyTally(), first ? { files: 1, bytes: stats.size } : {});
    this.progress = addTally(this.progress, tally);
    this.options.reporter?.item?.({ path, bytes: tally.bytes, tally: this.progress });
    return tally;
  }

  /** False for a further link to an inode this walk has counted already. */
  private firstSight(stats: Stats): boolean {
    if (stats.nlink <= 1) return true;
    const inode = `${stats.dev}:${stats.ino}`;
    if (this.seen.has(inode)) return false;
    this.seen.add(inode);
    return true;
  }
}

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | null)?.code;
}
