import { chmodSync, closeSync, constants, copyFileSync, fchmodSync, fstatSync, linkSync, lstatSync, mkdirSync, openSync, readSync, symlinkSync, writeSync } from "node:fs";
import type { LinkMode } from "./link-out.js";
import { copyFilesInParallel } from "./parallel-copy.js";
import { TimeSlices } from "./time-slices.js";
import { cachedFileMode, describeChange, describeRootChange, type ManifestFile, type TreeManifest } from "./tree-manifest.js";

/** Files up to this size are copied by read and write on this thread (or by the pool); larger ones by the kernel on the thread pool. */
const SMALL_FILE = 1 << 20;
/** Shared by every copy: each small file is read and written within one synchronous step. */
const copyBuffer = Buffer.allocUnsafe(SMALL_FILE);
const OPEN_CACHED = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** What {@link fillTree} fills from where, and how. */
export interface FillJob {
  /** The cached tree and its manifest. */
  source: string;
  manifest: TreeManifest;
  /** The (existing, empty) directory to fill. */
  staged: string;
  /** Compare each cached entry with the manifest (always, except when measuring what that costs). */
  check: boolean;
  /** Materializes the first file, settling which mode the filesystems allow; or says it is missing. */
  settle(file: ManifestFile): { mode: LinkMode } | { changed: string };
  onFile?: ((relativePath: string, bytes: number) => void) | undefined;
}

/** What was filled. */
export interface FillTally {
  files: number;
  directories: number;
  symlinks: number;
  bytes: number;
  mode: LinkMode;
}

/**
 * Fills `job.staged` with the tree described by the manifest: directories and symlinks from the manifest, files by
 * the settled mode. Each cached directory and file is compared with its manifest record as it is used (its
 * `lstat`, or the `fstat` of the open file a copy reads anyway); on the first difference it stops and returns it.
 * Copies get the mode the file was stored with; hard links are the cache's read-only files. Runs synchronous
 * calls in time slices: far cheaper per file than a promise call each, and the event loop still runs.
 */
export async function fillTree(job: FillJob, tally: FillTally): Promise<string | undefined> {
  const { source, staged, manifest } = job;
  const rootChange = describeRootChange(manifest, lstatSync(source, { throwIfNoEntry: false }));
  if (rootChange !== undefined) return rootChange;
  const umask = ~lstatSync(staged).mode & 0o777; // what mkdir and open leave out here
  const slices = new TimeSlices();
  const files: ManifestFile[] = [];
  for (const entry of manifest.entries) {
    if (slices.due()) await slices.yield();
    if (entry.kind === "dir") {
      const change = job.check ? describeChange(entry, lstatSync(`${source}/${entry.path}`, { throwIfNoEntry: false })) : undefined;
      if (change !== undefined) return change;
      mkdirSync(`${staged}/${entry.path}`);
      tally.directories++;
    } else if (entry.kind === "symlink") {
      symlinkSync(entry.target, `${staged}/${entry.path}`);
      tally.symlinks++;
    } else {
      files.push(entry);
    }
  }
  const counted = (file: ManifestFile): undefined => {
    tally.files++;
    tally.bytes += file.size;
    job.onFile?.(file.path, file.size);
    return undefined;
  };
  /** After a link or a kernel copy: the check, and (for a copy) the stored mode back. */
  const linkedOrCopied = (file: ManifestFile): string | undefined => {
    let cachedMode = cachedFileMode(file.mode);
    if (job.check) {
      const stats = lstatSync(`${source}/${file.path}`, { throwIfNoEntry: false });
      const change = describeChange(file, stats);
      if (change !== undefined) return change;
      cachedMode = stats!.mode & 0o7777;
    }
    if (tally.mode !== "hardlink" && cachedMode !== file.mode) chmodSync(`${staged}/${file.path}`, file.mode);
    return counted(file);
  };

  if (files.length === 0) return restoreDirectoryModes(job, umask, slices);
  const settled = job.settle(files[0]!);
  if ("changed" in settled) return settled.changed;
  tally.mode = settled.mode;
  const firstChange = linkedOrCopied(files[0]!);
  if (firstChange !== undefined) return firstChange;

  // Copies share the work with the thread pool: it takes the large files first (the kernel copies them), then small
  // ones from the end of the list while this thread copies from the start, until the two meet. Copying is mostly
  // the kernel's work of creating files, so this keeps more than one core busy.
  let change: string | undefined;
  let failed = false;
  const large = tally.mode === "copy" ? files.flatMap((file, index) => (index > 0 && file.size > SMALL_FILE ? [index] : [])) : [];
  let nextLarge = 0;
  let end = files.length; // files from `end` on are the pool's
  let front = 1; // the file this thread copies next (or is copying)
  const poolTakes = (): number | undefined => {
    if (nextLarge < large.length) return large[nextLarge++]!;
    while (tally.mode === "copy" && end - 1 > front) {
      const index = --end;
      if (files[index]!.size <= SMALL_FILE) return index;
    }
    return undefined;
  };
  const poolDone = copyFilesInParallel(
    poolTakes,
    (index) => [`${source}/${files[index]!.path}`, `${staged}/${files[index]!.path}`],
    0,
    (index, error) => {
      if (failed) return "stopped";
      return change ?? (error ? missingSource(files[index]!, error) : linkedOrCopied(files[index]!));
    },
  );
  poolDone.catch(() => {}); // observed below; this keeps an early failure from being "unhandled" meanwhile
  try {
    for (; front < end && change === undefined; front++) {
      const index = front;
      if (slices.due()) await slices.yield();
      const file = files[index]!;
      const from = `${source}/${file.path}`;
      const to = `${staged}/${file.path}`;
      if (tally.mode === "copy") {
        if (file.size <= SMALL_FILE) change = copySmallFile(from, to, file, job.check, umask) ?? counted(file);
      } else {
        try {
          if (tally.mode === "hardlink") linkSync(from, to);
          else copyFileSync(from, to, constants.COPYFILE_FICLONE_FORCE);
        } catch (error) {
          change = missingSource(file, error);
          continue;
        }
        change = linkedOrCopied(file);
      }
    }
  } catch (error) {
    failed = true;
    await poolDone.catch(() => {}); // nothing may still write into `staged` when this returns
    throw error;
  }
  change ??= await poolDone;
  if (change !== undefined) return change;
  return restoreDirectoryModes(job, umask, slices);
}

/**
 * Copies one small cached file by read and write: the `fstat` of the open cached file is the check, and the copy is
 * created with the stored mode (no chmod unless the umask took bits away). Returns a change, or undefined.
 */
function copySmallFile(from: string, to: string, file: ManifestFile, check: boolean, umask: number): string | undefined {
  let input: number;
  try {
    input = openSync(from, OPEN_CACHED);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ELOOP") return `"${file.path}" is no longer a regular file`;
    return missingSource(file, error);
  }
  let size = 0;
  try {
    const stats = fstatSync(input);
    const change = check ? describeChange(file, stats) : undefined;
    if (change !== undefined) return change;
    const expected = Math.min(stats.size, copyBuffer.byteLength);
    while (size < expected) {
      const read = readSync(input, copyBuffer, size, expected - size, size);
      if (read === 0) break;
      size += read;
    }
    if (check && size !== file.size) return `"${file.path}" was modified while it was read`;
  } finally {
    closeSync(input);
  }
  const output = openSync(to, "wx", file.mode);
  try {
    for (let written = 0; written < size; ) written += writeSync(output, copyBuffer, written, size - written);
    if ((file.mode & ~umask) !== file.mode) fchmodSync(output, file.mode);
  } finally {
    closeSync(output);
  }
  return undefined;
}

/** A failed link or copy whose cached source is gone is a changed tree; any other failure is thrown. */
function missingSource(file: ManifestFile, error: unknown): string {
  if ((error as NodeJS.ErrnoException).code === "ENOENT") return `"${file.path}" is missing`;
  throw error;
}

/** Directories get their stored modes last, deepest first, so a read-only one did not block filling it. */
async function restoreDirectoryModes(job: FillJob, umask: number, slices: TimeSlices): Promise<undefined> {
  const made = 0o777 & ~umask;
  for (let index = job.manifest.entries.length - 1; index >= 0; index--) {
    const entry = job.manifest.entries[index]!;
    if (entry.kind !== "dir" || entry.mode === made) continue;
    if (slices.due()) await slices.yield();
    chmodSync(`${job.staged}/${entry.path}`, entry.mode);
  }
  return undefined;
}
