// Reading `.tar` and `.tar.gz` with node-tar's parser (headers, pax and GNU long names, gzip), entry by entry
// into a staging tree. node-tar's own extractor is not used: the rules are the tree's, the same for every format.
import { createReadStream } from "node:fs";
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

/** Unpacks the tar (gzipped or not: the parser recognizes gzip by its magic bytes) at `archivePath` into `tree`. */
export function readTar(archivePath: string, tree: StagingTree, archive: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let failed = false;
    let current: string | undefined;
    const source = createReadStream(archivePath);
    const parser = new Parser({ strict: true, maxDecompressionRatio: Number.POSITIVE_INFINITY });

    const fail = (error: unknown) => {
      if (failed) return;
      failed = true;
      source.unpipe(parser as unknown as NodeJS.WritableStream);
      source.destroy();
      parser.abort(new Error("unpacking stopped")); // stops its decompressor; its error event now does nothing
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

    parser.on("entry", (entry: ReadEntry) => {
      current = entry.path;
      if (failed) return entry.resume();
      step(() => unpackEntry(entry, tree, archive, step));
    });
    parser.on("ignoredEntry", (entry: ReadEntry) => {
      current = entry.path;
      entry.resume();
      step(() => refuseIgnored(entry, archive));
    });
    parser.on("error", (error: Error) => fail(new CorruptArchiveError(archive, current, error.message, { cause: error })));
    parser.on("end", () => {
      if (!failed) resolve();
    });
    source.on("error", (error) => fail(error));
    source.pipe(parser as unknown as NodeJS.WritableStream);
  });
}

function unpackEntry(entry: ReadEntry, tree: StagingTree, archive: string, step: (action: () => void) => void): void {
  const { type, path } = entry;
  if (type === "Directory" || type === "GNUDumpDir" || (type === "OldFile" && path.endsWith("/"))) {
    entry.resume();
    tree.directory(path, entry.mode);
  } else if (FILE_TYPES.has(type)) {
    // GNU tar's PAX sparse format 1.0 stores a map and the condensed data under this directory name; node-tar
    // does not read the map, so the file would come out wrong.
    if (path.split("/").some((segment) => /^GNUSparseFile\.\d+$/.test(segment))) {
      throw new UnsupportedArchiveEntryError(archive, path, "is a GNU sparse file (PAX format 1.0), which cannot be unpacked");
    }
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
