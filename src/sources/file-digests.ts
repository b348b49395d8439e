import type { Stats } from "node:fs";
import { join } from "node:path";
import { hashFile, hashFileSync, isExecutable, sha256Hex } from "../hash/index.js";
import type { CacheStore } from "../store/index.js";
import { CacheKeyReadError } from "./errors.js";
import { statIfPresent } from "./key-files.js";

/** The store entry name of the digest memos (one entry per base directory, keyed by its absolute path's sha256). */
export const FILE_DIGEST_MEMO_NAME = "cachet-file-digests";
const MEMO_FORMAT = "cachet-file-digests/1";

/** `[size, mtimeMs, ctimeMs, ino, digest]`: a digest is reused only while all four stat fields are unchanged. */
type MemoRow = [number, number, number, number, string];

/** Files at most this large are read synchronously in the walk's time slices; larger ones on the thread pool. */
const SYNC_READ_LIMIT = 1024 * 1024;

/**
 * A file changed within this long before the computation started may change again without its timestamps moving
 * (they advance in clock ticks), so its digest is not memoized: the next computation reads it again. File systems
 * whose timestamps are whole seconds get two seconds.
 */
const RACY_MS = 20;
const RACY_COARSE_MS = 2000;

let warned = false;

/** How many files a computation read, and how many it took from the memo. */
export interface DigestCounts {
  read: number;
  memoized: number;
}

/**
 * The content digests of the files under one base directory, memoized by `stat` (size, mtime, ctime, inode) in
 * one store entry, so an unchanged file costs one `stat`. The memo only ever saves work: a store that cannot be
 * read or written means reading every file (with one warning per process), never a different digest.
 */
export class FileDigests {
  readonly counts: DigestCounts = { read: 0, memoized: 0 };
  private changed = false;

  private constructor(
    private readonly baseDir: string,
    private readonly store: CacheStore | undefined,
    private readonly memoKey: string,
    private readonly rows: Map<string, MemoRow>,
    private readonly startedAt: number,
  ) {}

  static async load(baseDir: string, store: CacheStore | undefined): Promise<FileDigests> {
    const startedAt = Date.now();
    const memoKey = sha256Hex(baseDir);
    const rows = new Map<string, MemoRow>();
    if (store) {
      try {
        const stored = await store.getValue(FILE_DIGEST_MEMO_NAME, memoKey);
        if (stored?.format === MEMO_FORMAT) {
          const parsed = JSON.parse(Buffer.from(stored.data.buffer, stored.data.byteOffset, stored.data.byteLength).toString("utf8")) as {
            files?: Record<string, MemoRow>;
          };
          for (const [path, row] of Object.entries(parsed.files ?? {})) if (isMemoRow(row)) rows.set(path, row);
        }
      } catch (error) {
        warnOnce("read", store, error);
      }
    }
    return new FileDigests(baseDir, store, memoKey, rows, startedAt);
  }

  /**
   * The digest of the file at `path` (relative to the base), `<sha256>` or `<sha256>:x` when its owner may
   * execute it, or undefined if it vanished meanwhile. `stats` is the `stat` taken when it was found. A file
   * whose `stat` changes while it is read is read again.
   */
  async digest(path: string, stats: Stats): Promise<string | undefined> {
    const suffix = isExecutable(stats.mode) ? ":x" : "";
    const row = this.rows.get(path);
    if (row && sameStat(row, stats)) {
      this.counts.memoized++;
      return row[4] + suffix;
    }
    const absolute = join(this.baseDir, path);
    let before = stats;
    for (let attempt = 1; ; attempt++) {
      let digest: string;
      try {
        digest = (before.size > SYNC_READ_LIMIT ? await hashFile(absolute) : hashFileSync(absolute)).digest;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "ENOENT" || code === "ENOTDIR") return this.forget(path);
        throw new CacheKeyReadError(absolute, `cannot read it (${code ?? (error as Error).message})`, { cause: error });
      }
      this.counts.read++;
      const after = statIfPresent(absolute, path);
      if (!after?.isFile()) return this.forget(path);
      const suffixAfter = isExecutable(after.mode) ? ":x" : "";
      if (sameStats(before, after)) {
        if (!this.racy(after)) {
          this.rows.set(path, [after.size, after.mtimeMs, after.ctimeMs, after.ino, digest]);
          this.changed = true;
        } else if (this.rows.delete(path)) this.changed = true;
        return digest + suffixAfter;
      }
      // Changed while it was read: the digest may mix two versions. Read it again, and after a few tries give the
      // last reading without memoizing it (a later computation reads it again).
      if (attempt >= 3) {
        if (this.rows.delete(path)) this.changed = true;
        return digest + suffixAfter;
      }
      before = after;
    }
  }

  /** Drops what is known of a file found absent. */
  forget(path: string): undefined {
    if (this.rows.delete(path)) this.changed = true;
    return undefined;
  }

  /** Writes the memo back if anything changed (failures are one warning per process). */
  async save(): Promise<void> {
    if (!this.store || !this.changed) return;
    const files: Record<string, MemoRow> = {};
    for (const [path, row] of this.rows) files[path] = row;
    try {
      await this.store.put(FILE_DIGEST_MEMO_NAME, this.memoKey, JSON.stringify({ baseDir: this.baseDir, files }), {
        origin: "computed",
        format: MEMO_FORMAT,
      });
      this.changed = false;
    } catch (error) {
      warnOnce("write", this.store, error);
    }
  }

  private racy(stats: Stats): boolean {
    const coarse = stats.mtimeMs % 1000 === 0 && stats.ctimeMs % 1000 === 0;
    return Math.max(stats.mtimeMs, stats.ctimeMs) >= this.startedAt - (coarse ? RACY_COARSE_MS : RACY_MS);
  }
}

function sameStat(row: MemoRow, stats: Stats): boolean {
  return row[0] === stats.size && row[1] === stats.mtimeMs && row[2] === stats.ctimeMs && row[3] === stats.ino;
}

function sameStats(a: Stats, b: Stats): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && a.ino === b.ino && a.mode === b.mode;
}

function isMemoRow(row: unknown): row is MemoRow {
  return (
    Array.isArray(row) &&
    row.length === 5 &&
    row.slice(0, 4).every((field) => typeof field === "number") &&
    typeof row[4] === "string" &&
    /^[0-9a-f]{64}$/.test(row[4])
  );
}

function warnOnce(what: "read" | "write", store: CacheStore, error: unknown): void {
  if (warned) return;
  warned = true;
  const reason = error instanceof Error ? error.message : String(error);
  process.emitWarning(
    `cachet: cannot ${what} the file digest memo in ${store.root}, so cache keys read every file: ${reason.slice(0, 300)}`,
    { code: what === "read" ? "CACHET_CACHE_READ_FAILED" : "CACHET_CACHE_WRITE_FAILED" },
  );
}
