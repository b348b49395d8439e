import { createHash } from "node:crypto";
import { constants } from "node:fs";
import { open, rename, rm, stat, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import { Readable } from "node:stream";
import { HashWorkerGoneError, OFFLOAD_AFTER, StreamSha256, hashFile, releaseBatch, sha256Hex, takeBatch, type Batch } from "../hash/index.js";
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
 * the staging file only. A large stream is hashed on the process's hash worker (`StreamSha256`) beside the
 * writes; if that worker dies, the staged file is hashed here instead. Either way the digest is known before
 * the rename.
 */
export async function writeBlob(layout: CacheLayout, source: BlobSource): Promise<BlobRef> {
  const staged = stagingPath(layout.tmp, "blob");
  const hash = new StreamSha256();
  try {
    const handle = await open(staged, "wx", 0o444); // read-only in the cache; this handle may still write it
    let size: number;
    let digest: string | undefined;
    try {
      if (source instanceof Uint8Array && source.byteLength <= OFFLOAD_AFTER) {
        // Start the write on the thread pool, hash on this thread meanwhile: hashing and disk overlap.
        const written = writeFully(handle, source);
        digest = sha256Hex(source);
        size = source.byteLength;
        await written;
      } else size = await writeBatches(handle, source instanceof Uint8Array ? [source] : source, hash);
    } finally {
      await handle.close();
    }
    digest ??= await hash.digest().catch(async (error: unknown) => {
      if (!(error instanceof HashWorkerGoneError)) throw error;
      return (await hashFile(staged)).digest;
    });
    const target = layout.blob(digest);
    ensureDirectory(dirname(target));
    await rename(staged, target);
    return { digest, size };
  } catch (error) {
    hash.abandon();
    await rm(staged, { force: true });
    throw asWriteError(staged, error);
  }
}

/**
 * Copies the chunks into batches of the hash pool's slot size (`takeBatch`), writes each (one write in flight
 * while the next fills) and then hands it to `hash`: a few large writes instead of one per network chunk, and
 * bytes the hash worker can read where they are.
 */
async function writeBatches(handle: FileHandle, chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, hash: StreamSha256): Promise<number> {
  let batch: Batch | undefined;
  let filled = 0;
  let size = 0;
  let writing: Promise<void> = Promise.resolve();
  const flush = async () => {
    const full = batch!;
    const length = filled;
    batch = undefined;
    filled = 0;
    try {
      await writing;
    } catch (error) {
      releaseBatch(full); // an earlier write failed: this batch is never written, its slot goes back
      throw error;
    }
    writing = writeFully(handle, full.bytes.subarray(0, length)).then(
      () => hash.add(full, length),
      (error: unknown) => {
        releaseBatch(full);
        throw error;
      },
    );
    writing.catch(() => {}); // observed by the next flush or at the end
  };
  try {
    for await (const chunk of chunks as AsyncIterable<Uint8Array>) {
      size += chunk.byteLength;
      for (let offset = 0; offset < chunk.byteLength; ) {
        batch ??= takeBatch();
        const take = Math.min(batch.bytes.byteLength - filled, chunk.byteLength - offset);
        batch.bytes.set(chunk.subarray(offset, offset + take), filled);
        filled += take;
        offset += take;
        if (filled === batch.bytes.byteLength) await flush();
      }
    }
    if (filled > 0) await flush();
  } finally {
    if (batch !== undefined) releaseBatch(batch);
    await writing.catch(() => {}); // no write left running on a handle about to close; its error is thrown below
  }
  await writing;
  return size;
}

/** Largest single write: writes of 1 MiB and more into the page cache were measured to stall for up to a second. */
const WRITE_SIZE = 256 << 10;

async function writeFully(handle: FileHandle, chunk: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < chunk.byteLength) {
    const { bytesWritten } = await handle.write(chunk, offset, Math.min(WRITE_SIZE, chunk.byteLength - offset));
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
