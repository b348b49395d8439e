import { CachetError } from "../errors.js";

/** The archive's name as a message shows it. */
const quoted = (text: string): string => JSON.stringify(text);

/**
 * An archive whose format cannot be unpacked: its name ends in none of the supported extensions, or a format was
 * asked for that does not exist. The message lists the supported ones.
 */
export class UnsupportedArchiveFormatError extends CachetError {
  readonly code = "CACHET_ARCHIVE_FORMAT";
  constructor(
    readonly archive: string,
    supported: readonly string[],
  ) {
    super(`cannot unpack ${quoted(archive)}: not a supported archive format (supported: ${supported.join(", ")})`);
  }
}

/**
 * An entry that would write outside the unpacked tree, through a link, or something other than a file, directory
 * or symlink: a `..` segment, an absolute path or drive letter, a symlink or hardlink pointing outside the tree, a
 * path through a symlink the archive made, a device, FIFO or socket, the same path twice. Nothing is unpacked.
 */
export class UnsafeArchiveEntryError extends CachetError {
  readonly code = "CACHET_ARCHIVE_UNSAFE_ENTRY";
  constructor(
    readonly archive: string,
    readonly entry: string,
    reason: string,
  ) {
    super(`refusing to unpack ${quoted(archive)}: entry ${quoted(entry)} ${reason}`);
  }
}

/**
 * An archive that expands past the limit (`maxUnpackedBytes`), counted on the sizes its headers declare and on
 * the bytes actually written. Nothing is unpacked.
 */
export class ArchiveTooLargeError extends CachetError {
  readonly code = "CACHET_ARCHIVE_TOO_LARGE";
  constructor(
    readonly archive: string,
    readonly entry: string,
    readonly limit: number,
  ) {
    super(`refusing to unpack ${quoted(archive)}: it expands past the limit of ${limit} bytes at entry ${quoted(entry)} (maxUnpackedBytes)`);
  }
}

/**
 * An archive that cannot be read whole: truncated, a bad checksum or CRC, a compressed stream that does not
 * decompress, an entry whose data is not the size its header declares. Nothing is unpacked.
 */
export class CorruptArchiveError extends CachetError {
  readonly code = "CACHET_ARCHIVE_CORRUPT";
  constructor(
    readonly archive: string,
    /** The entry being read when the damage showed, when there was one. */
    readonly entry: string | undefined,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot unpack ${quoted(archive)}: the archive is damaged${entry === undefined ? "" : ` at entry ${quoted(entry)}`}: ${reason}`, options);
  }
}

/**
 * A well-formed entry this unpacker cannot reproduce exactly: an encrypted zip entry, a compression method other
 * than stored or deflate, a GNU sparse file, a tar entry type that is neither file, directory, link nor metadata.
 * Refused rather than unpacked wrongly.
 */
export class UnsupportedArchiveEntryError extends CachetError {
  readonly code = "CACHET_ARCHIVE_UNSUPPORTED_ENTRY";
  constructor(
    readonly archive: string,
    readonly entry: string,
    reason: string,
  ) {
    super(`cannot unpack ${quoted(archive)}: entry ${quoted(entry)} ${reason}`);
  }
}

/** The directory to unpack into exists and is not an empty directory. */
export class ArchiveDestinationError extends CachetError {
  readonly code = "CACHET_ARCHIVE_DESTINATION";
  constructor(
    readonly destination: string,
    reason: string,
  ) {
    super(`cannot unpack into ${destination}: ${reason}`);
  }
}
