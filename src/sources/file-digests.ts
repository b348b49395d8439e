import type { Stats } from "node:fs";
import { hashFile, hashFileSyncChecked, isExecutable, sha256Hex } from "../hash/index.js";
import type { CacheStore } from "../store/index.js";
import { FILE_DIGEST_MEMO_NAME } from "../store/machine-local.js";
import { CacheKeyReadError } from "./cache-key-errors.js";
import { statIfPresent } from "./key-files.js";

/** The store entry name of the digest memos (one entry per base directory, keyed by its absolute path's sha256). */
export { FILE_DIGEST_MEMO_NAME };
/**
 * The memo's bytes: a little-endian u32 length, that many bytes of a JSON array of paths, zero padding to a
 * multiple of 8, four float64 per path in the machine's byte order (size, mtimeMs, ctimeMs,
 * inode; a machine of the other order sees stats that match no file, so no memo), then the 32-byte sha256 of
 * each path. Binary rows keep loading 10 000 of them to a few milliseconds.
 */
export const FILE_DIGEST_MEMO_FORMAT = "cachet-file-digests/2";

/** Files at most this large are read synchronously in the walk's time slices; larger ones on the thread pool. */
const SYNC_READ_LIMIT = 1024 * 1024;

/**
 * A file changed within this long before the computation started may change again without its timestamps moving
 * (they advance in clock ticks), so its digest is not memoized: the next computation reads it again. File systems
 * whose timestamps are whole seconds get two seconds. Times in the future (clock skew) are never memoized.
 */
const RACY_MS = 20;
const RACY_COARSE_MS = 2000;

let warned = false;

/** How many files a computation read, and how many digests it took from the memo. */
export interface DigestCounts {
  read: number;
  memoized: number;
}

type StatTuple = [size: number, mtimeMs: number, ctimeMs: number, ino: number];

/**
 * The content digests of the files under one base directory, memoized by `stat` (size, mtime, ctime, inode) in
 * one store entry, so an unchanged file costs one `stat`. The memo only ever saves work: a store that cannot be
 * read or written means reading every file (with one warning per process), never a different digest.
 */
export class FileDigests {
  readonly counts: DigestCounts = { read: 0, memoized: 0 };
  private readonly updates = new Map<string, { stat: StatTuple; digest: string }>();
  private readonly removed = new Set<string>();

  private constructor(
    private readonly baseDir: string,
    private readonly store: CacheStore | undefined,
    private readonly memoKey: string,
    private readonly loaded: LoadedMemo,
    private readonly startedAt: number,
  ) {}

  static async load(baseDir: string, configured: CacheStore | undefined): Promise<FileDigests> {
    const startedAt = Date.now();
    // Stats name inodes and times of this machine's files: the memo never goes to, or comes from, a shared tier.
    const store = configured?.local ?? configured;
    const memoKey = sha256Hex(baseDir);
    let loaded = EMPTY_MEMO;
    if (store) {
      try {
        const stored = await store.getValue(FILE_DIGEST_MEMO_NAME, memoKey);
        if (stored?.format === FILE_DIGEST_MEMO_FORMAT) loaded = decodeMemo(stored.data) ?? EMPTY_MEMO;
      } catch (error) {
        warnOnce("read", store, error);
      }
    }
    return new FileDigests(baseDir, store, memoKey, loaded, startedAt);
  }

  /**
   * The memoized digest of the file at `path` if its `stat` (taken here unless given) is the memo's, without
   * reading it; else undefined, and {@link digest} reads it. Synchronous: the warm path costs one `stat` a file.
   */
  memoized(path: string, stats?: Stats): string | undefined {
    const row = this.loaded.rows.get(path);
    if (row === undefined) return undefined;
    this.loaded.seen[row] = 1;
    stats ??= statIfPresent(`${this.baseDir}/${path}`, path);
    if (!stats?.isFile()) return undefined;
    const at = row * 4;
    const known = this.loaded.stats;
    if (known[at] !== stats.size || known[at + 1] !== stats.mtimeMs || known[at + 2] !== stats.ctimeMs || known[at + 3] !== stats.ino) return undefined;
    this.counts.memoized++;
    return this.loaded.digests.substring(row * 64, row * 64 + 64) + (isExecutable(stats.mode) ? ":x" : "");
  }

  /**
   * The digest of the file at `path` (relative to the base), read now: `<sha256>` or `<sha256>:x` when its owner may
   * execute it, or undefined if it is gone. `stats`, when the caller has it, saves a `stat`. A file whose `stat`
   * changes while it is read is read again.
   */
  async digest(path: string, stats?: Stats): Promise<string | undefined> {
    const absolute = `${this.baseDir}/${path}`;
    for (let attempt = 1; ; attempt++) {
      let digest: string;
      let after: Stats;
      let changed: boolean;
      try {
        const small = stats !== undefined && stats.size > SYNC_READ_LIMIT ? undefined : hashFileSyncChecked(absolute, SYNC_READ_LIMIT);
        if (small) ({ digest, stats: after, changed } = small);
        else {
          // A large file is read on the thread pool, between two stats by path.
          const before = stats ?? statIfPresent(absolute, path);
          if (!before?.isFile()) return this.forget(path);
          digest = (await hashFile(absolute)).digest;
          const now = statIfPresent(absolute, path);
          if (!now?.isFile()) return this.forget(path);
          after = now;
          changed = !sameStat(before, after);
        }
      } catch (error) {
        if (error instanceof CacheKeyReadError) throw error;
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "ENOENT" || code === "ENOTDIR") return this.forget(path);
        throw new CacheKeyReadError(absolute, `cannot read it (${code ?? (error as Error).message})`, { cause: error });
      }
      this.counts.read++;
      const result = digest + (isExecutable(after.mode) ? ":x" : "");
      if (!changed && !this.racy(after)) {
        this.updates.set(path, { stat: [after.size, after.mtimeMs, after.ctimeMs, after.ino], digest });
        this.removed.delete(path);
        return result;
      }
      // Changed while it was read (the digest may mix two versions): read it again; after a few tries, or when it
      // changed just now, give the reading without memoizing it, so a later computation reads it again.
      if (!changed || attempt >= 3) {
        this.forget(path);
        return result;
      }
      stats = after;
    }
  }

  /** Drops what is known of a file found absent (or not safely memoizable). */
  forget(path: string): undefined {
    this.updates.delete(path);
    if (this.loaded.rows.has(path)) this.removed.add(path);
    return undefined;
  }

  /** Writes the memo back if anything changed (a failure is one warning per process). */
  async save(): Promise<void> {
    if (!this.store || (this.updates.size === 0 && this.removed.size === 0)) return;
    try {
      await this.store.put(FILE_DIGEST_MEMO_NAME, this.memoKey, this.encode(), { origin: "computed", format: FILE_DIGEST_MEMO_FORMAT });
    } catch (error) {
      warnOnce("write", this.store, error);
    }
  }

  private encode(): Uint8Array {
    const paths: string[] = [];
    const digests: string[] = [];
    const stats: number[] = [];
    // Rows of files this computation did not look at are kept: another set of keys on the same directory uses
    // them. Once they outnumber the rest, each is checked by a `stat` and dropped if its file is gone or changed,
    // so the memo of a directory whose files come and go (generated names) does not grow forever.
    const seen = this.loaded.seen.reduce((sum, flag) => sum + flag, 0) + this.updates.size;
    const checkUnseen = this.loaded.rows.size - seen > 2 * seen + 1000;
    for (const [path, row] of this.loaded.rows) {
      if (this.removed.has(path) || this.updates.has(path)) continue;
      if (checkUnseen && this.loaded.seen[row] === 0 && !this.stillValid(path, row)) continue;
      paths.push(path);
      digests.push(this.loaded.digests.substring(row * 64, row * 64 + 64));
      for (let field = 0; field < 4; field++) stats.push(this.loaded.stats[row * 4 + field]!);
    }
    for (const [path, update] of this.updates) {
      paths.push(path);
      digests.push(update.digest);
      stats.push(...update.stat);
    }
    return encodeMemo(paths, digests.join(""), Float64Array.from(stats));
  }

  private stillValid(path: string, row: number): boolean {
    let stats: Stats | undefined;
    try {
      stats = statIfPresent(`${this.baseDir}/${path}`, path);
    } catch {
      return false;
    }
    const known = this.loaded.stats;
    const at = row * 4;
    return stats !== undefined && known[at] === stats.size && known[at + 1] === stats.mtimeMs && known[at + 2] === stats.ctimeMs && known[at + 3] === stats.ino;
  }

  private racy(stats: Stats): boolean {
    const coarse = stats.mtimeMs % 1000 === 0 && stats.ctimeMs % 1000 === 0;
    return Math.max(stats.mtimeMs, stats.ctimeMs) >= this.startedAt - (coarse ? RACY_COARSE_MS : RACY_MS);
  }
}

interface LoadedMemo {
  rows: Map<string, number>;
  digests: string;
  stats: Float64Array;
  /** 1 for each row this computation looked up. */
  seen: Uint8Array;
}

const EMPTY_MEMO: LoadedMemo = { rows: new Map(), digests: "", stats: new Float64Array(0), seen: new Uint8Array(0) };

function encodeMemo(paths: string[], digests: string, stats: Float64Array): Uint8Array {
  const json = Buffer.from(JSON.stringify(paths), "utf8");
  const statsAt = Math.ceil((4 + json.length) / 8) * 8;
  const digestsAt = statsAt + stats.byteLength;
  const bytes = Buffer.alloc(digestsAt + digests.length / 2);
  bytes.writeUInt32LE(json.length, 0);
  json.copy(bytes, 4);
  Buffer.from(stats.buffer, stats.byteOffset, stats.byteLength).copy(bytes, statsAt);
  bytes.write(digests, digestsAt, "hex");
  return bytes;
}

/** The memo's rows, or undefined for bytes that are not a memo of this format (then there is no memo). */
function decodeMemo(data: Uint8Array): LoadedMemo | undefined {
  try {
    const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const length = bytes.readUInt32LE(0);
    const paths = JSON.parse(bytes.toString("utf8", 4, 4 + length)) as unknown;
    if (!Array.isArray(paths)) return undefined;
    const statsAt = Math.ceil((4 + length) / 8) * 8;
    const digestsAt = statsAt + paths.length * 32;
    if (bytes.length !== digestsAt + paths.length * 32) return undefined;
    const stats = new Float64Array(paths.length * 4);
    Buffer.from(stats.buffer).set(bytes.subarray(statsAt, digestsAt));
    const rows = new Map<string, number>();
    paths.forEach((path, row) => {
      if (typeof path === "string") rows.set(path, row);
    });
    return { rows, digests: bytes.toString("hex", digestsAt), stats, seen: new Uint8Array(paths.length) };
  } catch {
    return undefined;
  }
}

function sameStat(a: Stats, b: Stats): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && a.ino === b.ino && a.mode === b.mode;
}

function warnOnce(what: "read" | "write", store: CacheStore, error: unknown): void {
  if (warned) return;
  warned = true;
  const reason = error instanceof Error ? error.message : String(error);
  process.emitWarning(`cachet: cannot ${what} the file digest memo in ${store.root}, so cache keys read every file: ${reason.slice(0, 300)}`, {
    code: what === "read" ? "CACHET_CACHE_READ_FAILED" : "CACHET_CACHE_WRITE_FAILED",
  });
}
