// Reading `.tar` and `.tar.gz` with node-tar's parser (headers, pax and GNU long names), entry by entry
// into a staging tree. node-tar's own extractor is not used: the rules are the tree's, the same for every format.
import { closeSync, createReadStream, openSync, readSync } from "node:fs";
import { createGunzip } from "node:zlib";
import { Parser, type ReadEntry } from "tar";
import { CorruptArchiveError, UnsafeArchiveEntryError, UnsupportedArchiveEntryError } from "./archive-errors.js";
import type { StagingTree } from "./archive-tree.js";

/** Entry types that are files; `OldFile` is a V7 file, which is a directory when its name ends in a slash. */
const FILE_TYPES = new Set(["File", "OldFile", "ContiguousFile"]);
const SPECIAL_TYPES: Record<string, string> = {
  CharacterDevice: "a character device",
  BlockDevice: "a block device",
  FIFO: "a FIFO",
};

/**
 * Unpacks the tar at `archivePath` into `tree`, gunzipping it first when it starts with gzip's magic bytes
 * (whatever its name says). Node's gunzip, not the parser's, so a cut or damaged gzip stream (its CRC and length
 * are checked) is an error; and the tar must end with its end-of-archive blocks, so a tar cut between two entries
 * is one too.
 */
export function readTar(archivePath: string, tree: StagingTree, archive: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let failed = false;
    let current: string | undefined;
    let entries = 0;
    let sawEnd = false;
    const gzipped = startsWithGzip(archivePath); // first: a missing file throws here, before any stream is open
    const source = createReadStream(archivePath, { highWaterMark: 256 * 1024 });
    const gunzip = gzipped ? createGunzip({ chunkSize: 64 * 1024 }) : undefined;
    const parser = new Parser({ strict: true, maxDecompressionRatio: Number.POSITIVE_INFINITY });
    const input = (gunzip ?? source) as NodeJS.ReadableStream;

    const fail = (error: unknown) => {
      if (failed) return;
      failed = true;
      input.unpipe(parser as unknown as NodeJS.WritableStream);
      source.destroy();
      gunzip?.destroy();
      reject(error);
    };
    /** Runs one step of an entry; a throw fails the whole unpack. */
    const step = (action: () => void) => {
      if (failed) return;
      try {
        action();
      } catch (error) {
        fail(error);
      }
    };

    // node-tar keeps only the pax keys it knows, so GNU sparse keys (which make the next entry's data a condensed
    // form of the file) are looked for in each extended header's raw text, which it emits just before the entry.
    let sparseHeader = false;
    // Every name the extended headers before an entry give it (pax `path`/`linkpath`, GNU long names). Tools
    // disagree on which wins when there are several (GNU tar takes the pax path over a later GNU long name, Python
    // the first of two), and on a global header's `path` (node-tar ignores it): an entry whose extended headers
    // name something it does not end up with means different trees to different tools, and is refused.
    let names: string[] = [];
    parser.on("meta", (text: string) => {
      if (/^\d+ GNU\.sparse\./m.test(text)) sparseHeader = true;
      if (/^\d+ [^=\n]+=/.test(text)) {
        for (const record of text.matchAll(/^\d+ (?:path|linkpath)=(.*)$/gm)) names.push(record[1]!);
      } else {
        names.push(text.replace(/\0.*/s, ""));
      }
    });
    const takeNames = () => {
      const given = names;
      names = [];
      return given;
    };
    // GNU tar and Python stop reading at a single zero block; node-tar reads on. What follows one is an archive
    // that means different trees to different tools, so it is refused (a zero block at the end is fine).
    let zeroBlock = false;
    parser.on("nullBlock", () => (zeroBlock = true));
    parser.on("entry", (entry: ReadEntry) => {
      current = entry.path;
      entries++;
      const sparse = sparseHeader;
      sparseHeader = false;
      if (failed) return entry.resume();
      const given = takeNames();
      step(() => {
        refuseAmbiguousHeader(entry, archive, zeroBlock, given);
        if (sparse) {
          entry.resume();
          throw new UnsupportedArchiveEntryError(archive, entry.path, "is a GNU sparse file (PAX format), which cannot be unpacked");
        }
        unpackEntry(entry, tree, archive, step);
      });
    });
    parser.on("ignoredEntry", (entry: ReadEntry) => {
      current = entry.path;
      entries++;
      entry.resume();
      const given = takeNames();
      step(() => {
        refuseAmbiguousHeader(entry, archive, zeroBlock, given);
        refuseIgnored(entry, archive);
      });
    });
    parser.on("eof", () => (sawEnd = true));
    parser.on("error", (error: Error & { tarCode?: string }) => {
      // An archive of no entries (only its end blocks) is valid, though node-tar calls it unrecognized.
      if (sawEnd && entries === 0 && error.tarCode === "TAR_BAD_ARCHIVE") return;
      fail(new CorruptArchiveError(archive, current, error.message, { cause: error }));
    });
    parser.on("end", () => {
      if (failed) return;
      if (!sawEnd) fail(new CorruptArchiveError(archive, current, "it ends without the end-of-archive blocks of a tar (cut short?)"));
      else resolve();
    });
    source.on("error", (error) => fail(error));
    gunzip?.on("error", (error) => fail(new CorruptArchiveError(archive, current, `gzip: ${error.message}`, { cause: error })));
    if (gunzip) source.pipe(gunzip);
    input.pipe(parser as unknown as NodeJS.WritableStream);
  });
}

function startsWithGzip(path: string): boolean {
  const fd = openSync(path, "r");
  try {
    const magic = Buffer.alloc(2);
    return readSync(fd, magic, 0, 2, 0) === 2 && magic[0] === 0x1f && magic[1] === 0x8b;
  } finally {
    closeSync(fd);
  }
}

function unpackEntry(entry: ReadEntry, tree: StagingTree, archive: string, step: (action: () => void) => void): void {
  const { type, path } = entry;
  if (type === "Directory" || type === "GNUDumpDir" || (type === "OldFile" && path.endsWith("/"))) {
    entry.resume();
    tree.directory(path, entry.mode);
  } else if (FILE_TYPES.has(type)) {
    const sink = tree.file(path, entry.mode, entry.size);
    entry.on("data", (chunk: Buffer) => step(() => sink.write(chunk)));
    entry.on("end", () => step(() => sink.end()));
  } else if (type === "SymbolicLink") {
    entry.resume();
    tree.symlink(path, entry.linkpath ?? "");
  } else if (type === "Link") {
    entry.resume();
    tree.hardlink(path, entry.linkpath ?? "");
  } else if (type in SPECIAL_TYPES) {
    entry.resume();
    throw new UnsafeArchiveEntryError(archive, path, `is ${SPECIAL_TYPES[type]}; only files, directories and links are unpacked`);
  } else {
    entry.resume();
    throw new UnsupportedArchiveEntryError(archive, path, `has the tar entry type ${type}, which cannot be unpacked`);
  }
}

/**
 * Headers other readers refuse or read otherwise: an entry after a lone zero block (see above); a size field that
 * is not a number or is negative (base-256), which node-tar reads as 0, so the entry's data would be read as the
 * next headers; extended headers naming the entry something it did not end up with (see above).
 */
function refuseAmbiguousHeader(entry: ReadEntry, archive: string, afterZeroBlock: boolean, names: readonly string[]): void {
  const unused = names.find((name) => name !== entry.path && name !== entry.linkpath);
  if (unused !== undefined) {
    entry.resume();
    throw new CorruptArchiveError(archive, entry.path, `its extended headers also name it ${JSON.stringify(unused)}, which other tar readers may use`);
  }
  if (afterZeroBlock) {
    entry.resume();
    throw new CorruptArchiveError(archive, entry.path, "it comes after a lone zero block, where other tar readers stop");
  }
  if (entry.header.size === undefined) {
    entry.resume();
    throw new CorruptArchiveError(archive, entry.path, "its header's size field is not a size");
  }
}

/**
 * Entries the parser skips: a GNU volume label is only a label; anything else (a sparse file, whose data would be
 * written condensed, an extended header too large to read, an unknown type) would leave a wrong tree.
 */
function refuseIgnored(entry: ReadEntry, archive: string): void {
  if (entry.type === "TapeVolumeHeader") return;
  if (entry.type === "SparseFile") {
    throw new UnsupportedArchiveEntryError(archive, entry.path, "is a GNU sparse file, which cannot be unpacked");
  }
  if (entry.meta) {
    throw new UnsupportedArchiveEntryError(archive, entry.path, `has an extended header of ${entry.size} bytes, more than can be read`);
  }
  throw new UnsupportedArchiveEntryError(archive, entry.path, `has the tar entry type ${entry.type}, which cannot be unpacked`);
}
