import { createHash, type Hash } from "node:crypto";
import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import type { Stats } from "node:fs";
import { UnsupportedFileTypeError } from "./errors.js";

/** The content digest of one regular file. */
export interface FileDigest {
  /** sha256 of the file's bytes, 64 lowercase hex digits. */
  digest: string;
  /** Number of bytes hashed. */
  size: number;
  /** Whether the owner may execute it (mode bit 0o100); other mode bits are not recorded. */
  executable: boolean;
}

/**
 * The one executable rule of every file and tree digest: the owner-execute bit (`0o100`). Group and other bits
 * differ with the umask of whoever checked the files out; the owner bit is what `git` and `chmod +x` set.
 */
export function isExecutable(mode: number): boolean {
  return (mode & 0o100) !== 0;
}

const CHUNK_SIZE = 64 * 1024;
const POOLED_CHUNKS = 16;
const freeChunks: Buffer[] = [];

// O_NONBLOCK: opening a FIFO for reading must not wait for a writer before we can see it is a FIFO.
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);

/**
 * Hashes the regular file at `path` (following symlinks) in 64 KiB chunks, so memory stays constant whatever
 * its size. A directory, socket, FIFO or device throws UnsupportedFileTypeError naming the path.
 */
export async function hashFile(path: string): Promise<FileDigest> {
  const handle = await open(path, OPEN_FLAGS);
  try {
    const stats = await handle.stat();
    checkRegularFile(path, stats);
    return await digestHandle(handle, stats);
  } finally {
    await handle.close();
  }
}

/**
 * `hashFile` with synchronous I/O, for callers that must answer synchronously (an `ImageSpec`'s tag): the same
 * digest, size and executable bit, the same refusals.
 */
export function hashFileSync(path: string): FileDigest {
  const fd = openSync(path, OPEN_FLAGS);
  try {
    const stats = fstatSync(fd);
    checkRegularFile(path, stats);
    const reader = new ChunkedDigest(stats);
    try {
      while (reader.add(readSync(fd, reader.chunk, 0, CHUNK_SIZE, null)));
    } finally {
      reader.release();
    }
    return reader.result();
  } finally {
    closeSync(fd);
  }
}

/** A file's digest with the `fstat` of the file after it was read, and whether that moved while it was read. */
export interface CheckedFileDigest extends FileDigest {
  /** The file's `fstat` after reading it. */
  stats: Stats;
  /** True when size, mtime, ctime, inode or mode changed while it was read (the digest may mix two versions). */
  changed: boolean;
}

/**
 * `hashFileSync` that also says whether the file changed while it was read, by `fstat` on the open file before and
 * after: what a digest memoized by `stat` needs to know before it may be memoized. A file larger than
 * `maxBytes` is not read (undefined): the caller hashes it with {@link hashFile} instead of blocking on it.
 */
export function hashFileSyncChecked(path: string, maxBytes = Infinity): CheckedFileDigest | undefined {
  const fd = openSync(path, OPEN_FLAGS);
  try {
    const before = fstatSync(fd);
    checkRegularFile(path, before);
    if (before.size > maxBytes) return undefined;
    // The chunk loop of ChunkedDigest, written out: this runs once per file of a cold cache key (10 000 files),
    // where an object and a spread per file show.
    const hash = createHash("sha256");
    const chunk = freeChunks.pop() ?? Buffer.allocUnsafeSlow(CHUNK_SIZE);
    let size = 0;
    try {
      for (;;) {
        const bytesRead = readSync(fd, chunk, 0, CHUNK_SIZE, null);
        if (bytesRead === 0) break;
        hash.update(bytesRead === CHUNK_SIZE ? chunk : chunk.subarray(0, bytesRead));
        size += bytesRead;
        if (bytesRead < CHUNK_SIZE && before.size > 0 && size >= before.size) break;
      }
    } finally {
      if (freeChunks.length < POOLED_CHUNKS) freeChunks.push(chunk);
    }
    const after = fstatSync(fd);
    const changed =
      before.size !== after.size || before.mtimeMs !== after.mtimeMs || before.ctimeMs !== after.ctimeMs || before.ino !== after.ino || before.mode !== after.mode;
    return { digest: hash.digest("hex"), size, executable: isExecutable(after.mode), stats: after, changed };
  } finally {
    closeSync(fd);
  }
}

function checkRegularFile(path: string, stats: Stats): void {
  if (!stats.isFile()) {
    throw new UnsupportedFileTypeError(`cannot hash "${path}": it is ${describeFileType(stats)}, not a regular file`, path);
  }
}

async function digestHandle(handle: FileHandle, stats: Stats): Promise<FileDigest> {
  const reader = new ChunkedDigest(stats);
  try {
    while (reader.add((await handle.read(reader.chunk, 0, CHUNK_SIZE, null)).bytesRead));
  } finally {
    reader.release();
  }
  return reader.result();
}

/** The digest of a file read chunk by chunk into a pooled buffer; shared by the async and the sync reader. */
class ChunkedDigest {
  readonly chunk: Buffer = freeChunks.pop() ?? Buffer.allocUnsafeSlow(CHUNK_SIZE);
  private readonly hash: Hash = createHash("sha256");
  private size = 0;

  constructor(private readonly stats: Stats) {}

  /** Takes the next `bytesRead` bytes of `chunk`; false once the file has ended. */
  add(bytesRead: number): boolean {
    if (bytesRead === 0) return false;
    this.hash.update(this.chunk.subarray(0, bytesRead));
    this.size += bytesRead;
    // A short read once the stat size is reached is the end: skip the extra read that would return 0.
    // (Files that report size 0, like those in /proc, are read until a read returns nothing.)
    return !(bytesRead < CHUNK_SIZE && this.stats.size > 0 && this.size >= this.stats.size);
  }

  release(): void {
    if (freeChunks.length < POOLED_CHUNKS) freeChunks.push(this.chunk);
  }

  result(): FileDigest {
    return { digest: this.hash.digest("hex"), size: this.size, executable: isExecutable(this.stats.mode) };
  }
}

/** "a directory", "a socket", "a FIFO", … — for messages about entries that cannot be hashed. */
export function describeFileType(stats: {
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
  isSocket(): boolean;
  isFIFO(): boolean;
  isCharacterDevice(): boolean;
  isBlockDevice(): boolean;
}): string {
  if (stats.isFile()) return "a regular file";
  if (stats.isDirectory()) return "a directory";
  if (stats.isSymbolicLink()) return "a symlink";
  if (stats.isSocket()) return "a socket";
  if (stats.isFIFO()) return "a FIFO (named pipe)";
  if (stats.isCharacterDevice()) return "a character device";
  if (stats.isBlockDevice()) return "a block device";
  return "a file of unknown type";
}
