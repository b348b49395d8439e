import { createHash } from "node:crypto";
import { constants } from "node:fs";
import { open, rename, rm, stat, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import { Readable } from "node:stream";
import { sha256Hex } from "../hash/index.js";
import { ensureDirectory } from "./directories.js";
import type { CacheLayout } from "./layout.js";
import { BlobIntegrityError, asWriteError } from "./errors.js";
import { stagingPath } from "./staging.js";

/** The address and size of a written blob. */
export interface BlobRef {
  digest: string;
  size: number;
}

/** Content sources a blob can be written from. */
export type BlobSource = Uint8Array | AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/**
 * Writes content into `blobs-v1/` under its sha256: streamed into `tmp/` while hashing, then renamed into
 * place, so a reader sees the whole blob or none. Writing content that is already there costs the write of
 * the staging file only.
 */
export async function writeBlob(layout: CacheLayout, source: BlobSource): Promise<BlobRef> {
  const staged = stagingPath(layout.tmp, "blob");
  const hash = createHash("sha256");
  let size = 0;
  try {
    const handle = await open(staged, "wx", 0o444); // read-only in the cache; this handle may still write it
    try {
      const chunks = source instanceof Uint8Array ? [source] : source;
      for await (const chunk of chunks as AsyncIterable<Uint8Array>) {
        // Start the write on the thread pool, hash on this thread meanwhile: hashing and disk overlap.
        const written = writeFully(handle, chunk);
        hash.update(chunk);
        size += chunk.byteLength;
        await written;
      }
    } finally {
      await handle.close();
    }
    const digest = hash.digest("hex");
    const target = layout.blob(digest);
    ensureDirectory(dirname(target));
    await rename(staged, target);
    return { digest, size };
  } catch (error) {
    await rm(staged, { force: true });
    throw asWriteError(staged, error);
  }
}

async function writeFully(handle: import("node:fs/promises").FileHandle, chunk: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < chunk.byteLength) {
    const { bytesWritten } = await handle.write(chunk, offset, chunk.byteLength - offset);
    offset += bytesWritten;
  }
}

/** Reads a whole blob and checks it against its digest; throws {@link BlobIntegrityError} on mismatch. */
export async function readBlob(layout: CacheLayout, digest: string): Promise<Uint8Array> {
  const path = layout.blob(digest);
  const handle = await openBlob(path, digest);
  let data: Buffer;
  try {
    data = await handle.readFile();
  } finally {
    await handle.close();
  }
  const actual = sha256Hex(data);
  if (actual !== digest) throw new BlobIntegrityError(path, digest, actual);
  return data;
}

/** Opening a blob never blocks or follows a link: something other than a regular file in its place is corrupt. */
const OPEN_BLOB = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

async function openBlob(path: string, digest: string): Promise<FileHandle> {
  let handle: FileHandle;
  try {
    handle = await open(path, OPEN_BLOB);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ELOOP") throw new BlobIntegrityError(path, digest, "a symbolic link");
    throw error;
  }
  if ((await handle.stat()).isFile()) return handle;
  await handle.close();
  throw new BlobIntegrityError(path, digest, "something that is not a regular file");
}

/** Chunk size of blob reads. */
const READ_CHUNK = 1 << 20;

/**
 * Streams a blob, hashing as it goes; the stream ends in an error ({@link BlobIntegrityError}) instead of
 * a clean end if the content does not match. Consumers that must not act on bad bytes should buffer or
 * stage what they read until the end.
 */
export function streamBlob(layout: CacheLayout, digest: string, onCorrupt?: (error: BlobIntegrityError) => void): Readable {
  return Readable.from(verifiedChunks(layout.blob(digest), digest, onCorrupt), { objectMode: false });
}

/**
 * The blob's chunks, with one read always ahead: the next chunk is read on the thread pool while this one is
 * hashed and handed on, so a read costs max(disk, sha256) per chunk rather than their sum.
 */
async function* verifiedChunks(
  path: string,
  digest: string,
  onCorrupt: ((error: BlobIntegrityError) => void) | undefined,
): AsyncGenerator<Buffer> {
  const handle = await openBlob(path, digest);
  const readAt = (position: number) => {
    const read = handle.read(Buffer.allocUnsafe(READ_CHUNK), 0, READ_CHUNK, position);
    read.catch(() => {}); // observed below; this only keeps an abandoned read-ahead from being "unhandled"
    return read;
  };
  let pending = readAt(0);
  try {
    const hash = createHash("sha256");
    let position = 0;
    for (;;) {
      const { bytesRead, buffer } = await pending;
      if (bytesRead === 0) break;
      position += bytesRead;
      pending = readAt(position);
      const chunk = bytesRead === READ_CHUNK ? buffer : buffer.subarray(0, bytesRead);
      hash.update(chunk);
      yield chunk;
    }
    const actual = hash.digest("hex");
    if (actual !== digest) {
      const error = new BlobIntegrityError(path, digest, actual);
      onCorrupt?.(error);
      throw error;
    }
  } finally {
    await pending.catch(() => {}); // let a read-ahead finish before its file is closed
    await handle.close();
  }
}

/** True when the blob file exists (without checking its content). */
export async function hasBlob(layout: CacheLayout, digest: string): Promise<boolean> {
  try {
    await stat(layout.blob(digest));
    return true;
  } catch {
    return false;
  }
}
