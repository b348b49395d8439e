import { createHash } from "node:crypto";
import { closeSync, lstatSync, openSync, readFileSync, readSync, readdirSync, renameSync, rmSync, writeFileSync, type Stats } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { ensureDirectory } from "./directories.js";
import type { CacheLayout } from "./layout.js";
import { stagingPath } from "./staging.js";

/**
 * Restore stamps: what a restored (or published) tree's target looked like, one `lstat` per entry, so the next
 * restore of the same tree into it can see, by a `stat` each, that the target still is that tree and leave it
 * alone. A stamp lives in `stamps-v1/<sha256 of the target's absolute path>.stamp`, written by rename.
 *
 * A stamp is read on every hit, so it is laid out to be read in one go: a JSON header line (format, target,
 * digest, entry count, byte length of the paths), the relative paths joined by NUL (a byte no path holds), zero
 * padding to a multiple of 8 bytes, then five float64s per entry (inode, mode, size, mtime and ctime in ms) in
 * the machine's byte order. Decoding is one UTF-8 decode and a typed-array view, not a parse of 10 000 arrays.
 *
 * An entry counts as unchanged when its inode, mode, size, mtime and ctime are the same. Writing a
 * file, replacing it, `chmod`, `touch` and renaming all move the ctime, which only the kernel sets; a directory's
 * mtime moves when an entry is added to it, removed or renamed, so files added anywhere in the tree are seen
 * without reading a directory.
 */

const STAMP_FORMAT = "cachet-restore-stamp/2";
/** The numbers stored per entry: inode, mode, size, mtime, ctime. */
const FIELDS = 5;
const PARENT_STEP = /(^|\/)\.\.(\/|$)/;

/**
 * One entry: relative POSIX path ("" for the target itself), then inode, mode, size, and mtime and ctime in ms
 * (with their sub-millisecond fraction: a double holds today's times to a fraction of a microsecond).
 */
type StampEntry = [path: string, ino: number, mode: number, size: number, mtimeMs: number, ctimeMs: number];

interface StampHeader {
  format: typeof STAMP_FORMAT;
  target: string;
  digest: string;
  count: number;
  pathBytes: number;
}

/** A decoded stamp: `paths[i]` was stamped with `fields[i * FIELDS …]`. */
interface Stamp {
  header: StampHeader;
  paths: string[];
  fields: Float64Array;
}

/** The stamp file of `target`. */
export function stampPath(layout: CacheLayout, target: string): string {
  const id = createHash("sha256").update(resolve(target)).digest("hex");
  return join(layout.bucket("stamps"), `${id}.stamp`);
}

/** Where cachet 0.1's first stamp format (JSON) kept the stamp of `target`: removed with the current one. */
function legacyStampPath(layout: CacheLayout, target: string): string {
  return stampPath(layout, target).replace(/\.stamp$/, ".json");
}

function entryOf(path: string, stats: Stats): StampEntry {
  return [path, stats.ino, stats.mode, stats.size, stats.mtimeMs, stats.ctimeMs];
}

const NO_THROW = { throwIfNoEntry: false } as const;

function lstatOrUndefined(path: string): Stats | undefined {
  return lstatSync(path, NO_THROW);
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
  const path = stampPath(layout, target);
  const staged = stagingPath(layout.tmp, "stamp");
  try {
    ensureDirectory(dirname(path));
    writeFileSync(staged, encodeStamp(resolve(target), digest, entries), { flag: "wx" });
    renameSync(staged, path);
  } catch {
    rmSync(staged, { force: true });
  }
}

/** Forgets what `target` held (before a restore replaces it, so a failed restore leaves no stale stamp). */
export function removeStamp(layout: CacheLayout, target: string): void {
  removeIfThere(stampPath(layout, target));
  removeIfThere(legacyStampPath(layout, target));
}

/**
 * Removes a stamp, whatever is at its path (a directory there would keep every restore from stamping, or from
 * running at all); none can be there when the stamps bucket is not a directory (ENOTDIR), which is no error.
 */
function removeIfThere(path: string): void {
  try {
    rmSync(path, { force: true, recursive: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOTDIR") throw error;
  }
}

function encodeStamp(target: string, digest: string, entries: readonly StampEntry[]): Buffer {
  const paths = Buffer.from(entries.map((entry) => entry[0]).join("\0"), "utf8");
  const header: StampHeader = { format: STAMP_FORMAT, target, digest, count: entries.length, pathBytes: paths.length };
  const head = Buffer.from(`${JSON.stringify(header)}\n`, "utf8");
  const fieldsAt = alignTo8(head.length + paths.length);
  const fields = new Float64Array(entries.length * FIELDS);
  entries.forEach((entry, i) => fields.set(entry.slice(1) as number[], i * FIELDS));
  const out = Buffer.alloc(fieldsAt + fields.byteLength);
  head.copy(out, 0);
  paths.copy(out, head.length);
  Buffer.from(fields.buffer, fields.byteOffset, fields.byteLength).copy(out, fieldsAt);
  return out;
}

/** The stamp in `bytes`, or undefined when it is not one this version wrote in full. */
function decodeStamp(bytes: Buffer): Stamp | undefined {
  const newline = bytes.indexOf(10);
  if (newline < 0) return undefined;
  let header: StampHeader;
  try {
    header = JSON.parse(bytes.toString("utf8", 0, newline)) as StampHeader;
  } catch {
    return undefined;
  }
  if (header?.format !== STAMP_FORMAT || !Number.isSafeInteger(header.count) || !Number.isSafeInteger(header.pathBytes)) return undefined;
  if (header.count < 1 || header.pathBytes < 0) return undefined;
  const pathsAt = newline + 1;
  const fieldsAt = alignTo8(pathsAt + header.pathBytes);
  if (bytes.length !== fieldsAt + header.count * FIELDS * 8) return undefined;
  const paths = bytes.toString("utf8", pathsAt, pathsAt + header.pathBytes).split("\0");
  if (paths.length !== header.count) return undefined;
  // A typed array needs an aligned start; a file read into a pooled buffer may not have one, so copy then.
  const start = bytes.byteOffset + fieldsAt;
  const fields =
    start % 8 === 0
      ? new Float64Array(bytes.buffer, start, header.count * FIELDS)
      : new Float64Array(Uint8Array.prototype.slice.call(bytes, fieldsAt).buffer);
  return { header, paths, fields };
}

/** How much of a stamp file is read for its header: more than any target path a file system allows. */
const HEADER_READ_LIMIT = 64 * 1024;

/**
 * Whether the stamp file at `path` (an entry of the stamps bucket) can still serve a restore: a stamp of this
 * format whose target still exists and whose tree is one of `trees`. Prune removes the others: stamps of targets
 * deleted since (a CI workspace, a temporary folder), of trees no entry holds any more, and of older formats.
 */
export function stampStillUseful(path: string, trees: ReadonlySet<string>): boolean {
  if (!path.endsWith(".stamp")) return false;
  let head: Buffer;
  try {
    const fd = openSync(path, "r");
    try {
      head = Buffer.alloc(HEADER_READ_LIMIT);
      head = head.subarray(0, readSync(fd, head, 0, head.length, 0));
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
  const newline = head.indexOf(10);
  if (newline < 0) return false;
  try {
    const header = JSON.parse(head.toString("utf8", 0, newline)) as Partial<StampHeader>;
    return header.format === STAMP_FORMAT && typeof header.target === "string" && trees.has(String(header.digest)) && lstatOrUndefined(header.target) !== undefined;
  } catch {
    return false;
  }
}

function alignTo8(n: number): number {
  return Math.ceil(n / 8) * 8;
}

/**
 * True when the stamp of `target` says it holds the tree `digest` and every stamped entry is still the same
 * (one `lstat` each). Anything unreadable or odd in the stamp is "changed", so the caller restores.
 */
export function targetHoldsTree(layout: CacheLayout, target: string, digest: string): boolean {
  let stamp: Stamp | undefined;
  try {
    stamp = decodeStamp(readFileSync(stampPath(layout, target)));
  } catch {
    return false;
  }
  if (stamp === undefined || stamp.header.digest !== digest || stamp.header.target !== resolve(target)) return false;
  const { paths, fields } = stamp;
  if (paths[0] !== "") return false;
  // One lstat per entry, compared as it goes: the first difference ends it.
  const prefix = `${target}/`;
  for (let i = 0; i < paths.length; i++) {
    const path = paths[i]!;
    if (i > 0 && (path === "" || path.startsWith("/") || PARENT_STEP.test(path))) return false;
    const stats = lstatOrUndefined(i === 0 ? target : prefix + path);
    const at = i * FIELDS;
    if (
      stats === undefined ||
      stats.ino !== fields[at] ||
      stats.mode !== fields[at + 1] ||
      stats.size !== fields[at + 2] ||
      stats.mtimeMs !== fields[at + 3] ||
      stats.ctimeMs !== fields[at + 4]
    ) {
      return false;
    }
  }
  return true;
}
