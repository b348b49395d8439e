// Reading `.zip` with yauzl (central directory, zip64, deflate), entry by entry into a staging tree. Names are
// decoded and checked here, not by yauzl, so a refusal names the entry; sizes and CRC-32 are checked here too
// (yauzl does not check the CRC), while the data streams through.
import { crc32 } from "node:zlib";
import yauzl, { type Entry, type ZipFile } from "yauzl";
import { isCachetError } from "../errors.js";
import { CorruptArchiveError, UnsafeArchiveEntryError, UnsupportedArchiveEntryError } from "./archive-errors.js";
import type { StagingTree } from "./archive-tree.js";

/** The "version made by" hosts whose external attributes carry a Unix mode: Unix and macOS. */
const UNIX_HOSTS = new Set([3, 19]);
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const SPECIAL: Record<number, string> = { 0o020000: "a character device", 0o060000: "a block device", 0o010000: "a FIFO", 0o140000: "a socket" };
const MSDOS_DIRECTORY = 0x10;
/** The longest symlink target read (PATH_MAX on Linux). */
const MAX_LINK_TARGET = 4096;

/** Unpacks the zip at `archivePath` into `tree`. */
export async function readZip(archivePath: string, tree: StagingTree, archive: string): Promise<void> {
  let zip: ZipFile;
  try {
    zip = await yauzl.openPromise(archivePath, { lazyEntries: true, autoClose: false, decodeStrings: false, validateEntrySizes: false });
  } catch (error) {
    if (isErrno(error)) throw error;
    throw new CorruptArchiveError(archive, undefined, (error as Error).message, { cause: error });
  }
  let current: string | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      zip.on("entry", (entry: Entry) => {
        current = entryName(entry);
        unpackEntry(zip, entry, current, tree, archive).then(() => zip.readEntry(), reject);
      });
      zip.on("end", () => resolve());
      zip.on("error", (error: Error) => reject(error));
      zip.readEntry();
    });
  } catch (error) {
    if (isCachetError(error) || isErrno(error)) throw error;
    throw new CorruptArchiveError(archive, current, (error as Error).message, { cause: error });
  } finally {
    zip.close();
  }
}

/** The entry's name: the Info-ZIP Unicode path if present, else UTF-8 or CP437 by its flag; `\` read as `/`. */
function entryName(entry: Entry): string {
  return yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, entry.fileNameRaw, entry.extraFields, true).replace(/\\/g, "/");
}

async function unpackEntry(zip: ZipFile, entry: Entry, name: string, tree: StagingTree, archive: string): Promise<void> {
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
  await readData(zip, entry, name, archive, (chunk) => sink.write(chunk));
  sink.end();
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
