// Reading `.zip` with yauzl (central directory, zip64, deflate), entry by entry into a staging tree. Names are
// decoded and checked here, not by yauzl, so a refusal names the entry; sizes and CRC-32 are checked here too
// (yauzl does not check the CRC), while the data streams through.
import { fstatSync, openSync } from "node:fs";
import { crc32, inflateRawSync } from "node:zlib";
import yauzl, { type Entry, type ZipFile } from "yauzl";
import { isCachetError } from "../errors.js";
import { CorruptArchiveError, UnsafeArchiveEntryError, UnsupportedArchiveEntryError } from "./archive-errors.js";
import type { StagingTree } from "./archive-tree.js";
import { FileReader } from "./archive-zip-reader.js";

/** The "version made by" hosts whose external attributes carry a Unix mode: Unix and macOS. */
const UNIX_HOSTS = new Set([3, 19]);
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const SPECIAL: Record<number, string> = { 0o020000: "a character device", 0o060000: "a block device", 0o010000: "a FIFO", 0o140000: "a socket" };
const MSDOS_DIRECTORY = 0x10;
/** Entries read in one piece (`readSmall`) rather than streamed: compressed and unpacked size limits. */
const SMALL_COMPRESSED = 256 * 1024;
const SMALL_FILE = 1024 * 1024;
/** The longest symlink target read (PATH_MAX on Linux). */
const MAX_LINK_TARGET = 4096;

/** Unpacks the zip at `archivePath` into `tree`. */
export async function readZip(archivePath: string, tree: StagingTree, archive: string): Promise<void> {
  const fd = openSync(archivePath, "r");
  const reader = new FileReader(fd);
  let current: string | undefined;
  try {
    let zip: ZipFile;
    try {
      zip = await yauzl.fromRandomAccessReaderPromise(reader, fstatSync(fd).size, {
        lazyEntries: true,
        autoClose: false,
        decodeStrings: false,
        validateEntrySizes: false,
      });
    } catch (error) {
      throw new CorruptArchiveError(archive, undefined, (error as Error).message, { cause: error });
    }
    try {
      const extents = new Extents();
      await new Promise<void>((resolve, reject) => {
        zip.on("entry", (entry: Entry) => {
          current = entryName(entry);
          unpackEntry(zip, reader, entry, current, tree, archive, extents).then(() => zip.readEntry(), reject);
        });
        zip.on("end", () => resolve());
        zip.on("error", (error: Error) => reject(error));
        zip.readEntry();
      });
    } finally {
      zip.close();
    }
  } catch (error) {
    if (isCachetError(error) || isErrno(error)) throw error;
    throw new CorruptArchiveError(archive, current, (error as Error).message, { cause: error });
  } finally {
    reader.close();
  }
}

/** The entry's name: the Info-ZIP Unicode path if present, else UTF-8 or CP437 by its flag; `\` read as `/`. */
function entryName(entry: Entry): string {
  return yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, entry.fileNameRaw, entry.extraFields, true).replace(/\\/g, "/");
}

async function unpackEntry(zip: ZipFile, reader: FileReader, entry: Entry, name: string, tree: StagingTree, archive: string, extents: Extents): Promise<void> {
  // The central directory is what is read; a streaming reader reads the local headers instead. Both must name the
  // same entry (as Python's zipfile also insists), and no two entries may share bytes: overlapping entries are how
  // a small zip expands to far more than its size ("a better zip bomb").
  const local = readLocalHeader(reader, entry);
  if (!local.fileName.equals(entry.fileNameRaw)) {
    throw new CorruptArchiveError(archive, name, `its local header names it ${JSON.stringify(local.fileName.toString("utf8"))}`);
  }
  const overlapped = extents.add(entry.relativeOffsetOfLocalHeader, local.fileDataStart + entry.compressedSize, name);
  if (overlapped !== undefined) throw new CorruptArchiveError(archive, name, `its data overlaps entry ${JSON.stringify(overlapped)}`);
  const unixMode = UNIX_HOSTS.has(entry.versionMadeBy >> 8) ? (entry.externalFileAttributes >>> 16) & 0xffff : 0;
  const type = unixMode & S_IFMT;
  const mode = unixMode === 0 ? undefined : unixMode & 0o7777;
  if (type in SPECIAL) throw new UnsafeArchiveEntryError(archive, name, `is ${SPECIAL[type]}; only files, directories and symlinks are unpacked`);
  if (type !== 0 && type !== S_IFREG && type !== S_IFDIR && type !== S_IFLNK) {
    throw new UnsupportedArchiveEntryError(archive, name, `has the unknown file type 0o${type.toString(8)} in its attributes`);
  }
  if (type !== S_IFLNK && (name.endsWith("/") || type === S_IFDIR || (unixMode === 0 && entry.externalFileAttributes & MSDOS_DIRECTORY))) {
    tree.directory(name, mode);
    return;
  }
  if (entry.isEncrypted()) throw new UnsupportedArchiveEntryError(archive, name, "is encrypted");
  if (entry.compressionMethod !== 0 && entry.compressionMethod !== 8) {
    throw new UnsupportedArchiveEntryError(archive, name, `uses compression method ${entry.compressionMethod}; only stored and deflate are read`);
  }
  if (entry.compressionMethod === 0 && entry.compressedSize !== entry.uncompressedSize) {
    throw new CorruptArchiveError(archive, name, `it is stored uncompressed, but its sizes differ (${entry.compressedSize} and ${entry.uncompressedSize})`);
  }
  if (type === S_IFLNK) {
    if (entry.uncompressedSize > MAX_LINK_TARGET) throw new UnsafeArchiveEntryError(archive, name, `is a symlink whose target is ${entry.uncompressedSize} bytes long`);
    const chunks: Buffer[] = [];
    let length = 0;
    await readData(zip, entry, name, archive, (chunk) => {
      length += chunk.byteLength;
      if (length > entry.uncompressedSize) throw new CorruptArchiveError(archive, name, `its data runs past the ${entry.uncompressedSize} bytes its header declares`);
      chunks.push(chunk);
    });
    tree.symlink(name, Buffer.concat(chunks).toString("utf8"));
    return;
  }
  const sink = tree.file(name, mode, entry.uncompressedSize);
  if (entry.compressedSize <= SMALL_COMPRESSED && entry.uncompressedSize <= SMALL_FILE) {
    sink.write(readSmall(reader, entry, local.fileDataStart, name, archive));
  } else {
    await readData(zip, entry, name, archive, (chunk) => sink.write(chunk));
  }
  sink.end();
}

/**
 * A small entry's data in one piece: read and inflated by single synchronous calls, where a stream per entry costs
 * several trips through the thread pool. Memory stays bounded: at most SMALL_COMPRESSED read, SMALL_FILE out (the
 * inflater stops past the declared size).
 */
function readSmall(reader: FileReader, entry: Entry, fileDataStart: number, name: string, archive: string): Buffer {
  const raw = Buffer.allocUnsafe(entry.compressedSize);
  reader.readExactly(raw, 0, raw.length, fileDataStart);
  let data = raw;
  if (entry.compressionMethod === 8) {
    try {
      data = inflateRawSync(raw, { maxOutputLength: Math.max(1, entry.uncompressedSize) });
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE" ? `its data runs past the ${entry.uncompressedSize} bytes its header declares` : (error as Error).message;
      throw new CorruptArchiveError(archive, name, reason, { cause: error });
    }
  }
  if (crc32(data) !== entry.crc32) throw new CorruptArchiveError(archive, name, "its data fails its CRC-32 check");
  return data;
}

/** Streams an entry's data to `take`, then checks its CRC-32. */
async function readData(zip: ZipFile, entry: Entry, name: string, archive: string, take: (chunk: Buffer) => void): Promise<void> {
  const stream = await zip.openReadStreamPromise(entry);
  let crc = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      crc = crc32(chunk, crc);
      take(chunk);
    }
  } catch (error) {
    if (isCachetError(error)) throw error;
    throw new CorruptArchiveError(archive, name, (error as Error).message, { cause: error });
  }
  if (crc !== entry.crc32) throw new CorruptArchiveError(archive, name, "its data fails its CRC-32 check");
}

const isErrno = (error: unknown): boolean => typeof (error as NodeJS.ErrnoException | undefined)?.code === "string" && /^E[A-Z]+$/.test((error as NodeJS.ErrnoException).code!);

/** An entry's local header: its name and where its data starts (read synchronously: one entry at a time anyway). */
function readLocalHeader(reader: FileReader, entry: Entry): { fileName: Buffer; fileDataStart: number } {
  const at = entry.relativeOffsetOfLocalHeader;
  const fixed = Buffer.allocUnsafe(30);
  reader.readExactly(fixed, 0, fixed.length, at);
  if (fixed.readUInt32LE(0) !== 0x04034b50) throw new Error(`invalid local file header signature: 0x${fixed.readUInt32LE(0).toString(16)}`);
  const fileName = Buffer.allocUnsafe(fixed.readUInt16LE(26));
  reader.readExactly(fileName, 0, fileName.length, at + 30);
  return { fileName, fileDataStart: at + 30 + fileName.length + fixed.readUInt16LE(28) };
}

/** The byte ranges of the entries read so far (local header to end of data), sorted, to find two that overlap. */
class Extents {
  private readonly starts: number[] = [];
  private readonly ends: number[] = [];
  private readonly names: string[] = [];

  /** Adds `[start, end)`; returns the name of an entry it overlaps, if any. */
  add(start: number, end: number, name: string): string | undefined {
    let low = 0;
    let high = this.starts.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (this.starts[middle]! < start) low = middle + 1;
      else high = middle;
    }
    if (low > 0 && this.ends[low - 1]! > start) return this.names[low - 1];
    if (low < this.starts.length && this.starts[low]! < end) return this.names[low];
    this.starts.splice(low, 0, start);
    this.ends.splice(low, 0, end);
    this.names.splice(low, 0, name);
    return undefined;
  }
}
