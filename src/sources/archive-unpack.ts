// Unpacking a downloaded archive into a staging directory, whole or not at all, under the hostile-archive rules
// (docs/archives.md). The caller publishes the result as an immutable tree.
import { mkdir, readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { ArchiveDestinationError, UnsupportedArchiveFormatError } from "./archive-errors.js";
import { archiveFormatOf, isArchiveFormat, SUPPORTED_EXTENSION_LIST, type ArchiveFormat } from "./archive-formats.js";
import { readTar } from "./archive-tar.js";
import { StagingTree, type UnpackedTally } from "./archive-tree.js";
import { readZip } from "./archive-zip.js";

export {
  ArchiveDestinationError,
  ArchiveTooLargeError,
  CorruptArchiveError,
  UnsafeArchiveEntryError,
  UnsupportedArchiveEntryError,
  UnsupportedArchiveFormatError,
} from "./archive-errors.js";
export { archiveFormatOf, SUPPORTED_ARCHIVE_FORMATS, type ArchiveFormat, type SupportedArchiveFormat } from "./archive-formats.js";
export type { UnpackedTally } from "./archive-tree.js";

/** The default `maxUnpackedBytes`: 20 GiB. */
export const DEFAULT_MAX_UNPACKED_BYTES = 20 * 1024 ** 3;

/** Options of {@link unpackArchive}. */
export interface UnpackOptions {
  /** The archive's file name (a URL's last path segment): it picks the format and names the archive in errors. */
  archiveName: string;
  /** The most bytes the archive may expand to, by its declared sizes and by what is written (default 20 GiB). */
  maxUnpackedBytes?: number;
  /** The format, when the name does not say it. */
  format?: ArchiveFormat;
}

/**
 * Unpacks the `.tar`, `.tar.gz`/`.tgz` or `.zip` file at `archivePath` into `destination`, an empty or absent
 * directory, and returns what it holds. Entries stream to disk one at a time (constant memory). The tree is
 * exactly the archive's: a single top-level directory stays; files keep their permission bits (exec bits
 * included) less set-uid, set-gid and sticky; symlinks stay symlinks; hardlinks inside the tree are linked.
 *
 * Refused, with an error naming the archive and the entry: an unsupported format
 * ({@link UnsupportedArchiveFormatError}); a `..` segment, an absolute path or drive letter, a symlink or hardlink
 * pointing outside the tree, a path through a symlink the archive made, a device, FIFO or socket, a path listed
 * twice other than a directory ({@link UnsafeArchiveEntryError}); more than `maxUnpackedBytes`
 * ({@link ArchiveTooLargeError}); a damaged or truncated archive ({@link CorruptArchiveError}); an entry that cannot
 * be reproduced exactly, such as an encrypted zip entry or a GNU sparse file ({@link UnsupportedArchiveEntryError}).
 * On any failure everything written is removed (an absent `destination` is absent again) before the error is
 * thrown; errors reading the archive file or writing the destination are Node's own.
 */
export async function unpackArchive(archivePath: string, destination: string, options: UnpackOptions): Promise<UnpackedTally> {
  const { archiveName } = options;
  const format = options.format ?? archiveFormatOf(archiveName);
  if (!isArchiveFormat(format)) throw new UnsupportedArchiveFormatError(archiveName, SUPPORTED_EXTENSION_LIST);
  const maxBytes = options.maxUnpackedBytes ?? DEFAULT_MAX_UNPACKED_BYTES;
  if (typeof maxBytes !== "number" || !(maxBytes >= 0)) {
    throw new RangeError(`maxUnpackedBytes must be a number of bytes, 0 or more (got ${String(maxBytes)})`);
  }
  const created = await claimDestination(destination);
  const tree = new StagingTree(destination, archiveName, maxBytes);
  try {
    await (format === "zip" ? readZip(archivePath, tree, archiveName) : readTar(archivePath, tree, archiveName));
    return tree.finish();
  } catch (error) {
    tree.discard();
    if (created) {
      await rm(destination, { recursive: true, force: true });
    } else {
      const names = await readdir(destination);
      await Promise.all(names.map((name) => rm(join(destination, name), { recursive: true, force: true })));
    }
    throw error;
  }
}

/** Makes `destination` if absent (returns true) or checks that it is an empty directory. */
async function claimDestination(destination: string): Promise<boolean> {
  try {
    await mkdir(destination);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
  const stats = await stat(destination);
  if (!stats.isDirectory()) throw new ArchiveDestinationError(destination, "it exists and is not a directory");
  if ((await readdir(destination)).length > 0) throw new ArchiveDestinationError(destination, "it is not empty");
  return false;
}
