import { createHash } from "node:crypto";
import { constants } from "node:fs";
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
    if (!stats.isFile()) {
      throw new UnsupportedFileTypeError(`cannot hash "${path}": it is ${describeFileType(stats)}, not a regular file`, path);
    }
    return await digestHandle(handle, stats);
  } finally {
    await handle.close();
  }
}

async function digestHandle(handle: FileHandle, stats: Stats): Promise<FileDigest> {
  const hash = createHash("sha256");
  const chunk = freeChunks.pop() ?? Buffer.allocUnsafeSlow(CHUNK_SIZE);
  let size = 0;
  try {
    for (;;) {
      const { bytesRead } = await handle.read(chunk, 0, CHUNK_SIZE, null);
      if (bytesRead === 0) break;
      hash.update(chunk.subarray(0, bytesRead));
      size += bytesRead;
      // A short read once the stat size is reached is the end: skip the extra read that would return 0.
      // (Files that report size 0, like those in /proc, are read until a read returns nothing.)
      if (bytesRead < CHUNK_SIZE && stats.size > 0 && size >= stats.size) break;
    }
  } finally {
    if (freeChunks.length < POOLED_CHUNKS) freeChunks.push(chunk);
  }
  return { digest: hash.digest("hex"), size, executable: (stats.mode & 0o100) !== 0 };
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
