// The staging tree an archive is unpacked into. Every format's reader feeds it entries in archive order; it
// checks each against the rules before touching the disk, writes with synchronous calls (a promise per file costs
// several times the syscall, and an archive is unpacked one entry at a time anyway), and counts bytes.
import {
  closeSync,
  constants,
  fchmodSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readlinkSync,
  symlinkSync,
  writeSync,
  chmodSync,
} from "node:fs";
import { join } from "node:path";
import { ArchiveTooLargeError, CorruptArchiveError, UnsafeArchiveEntryError, UnsupportedArchiveEntryError } from "./archive-errors.js";
import { entryPath, symlinkTargetVerdict } from "./archive-paths.js";

/** What an unpacked tree holds. */
export interface UnpackedTally {
  /** Regular files, hardlinks included. */
  files: number;
  /** Directories, including those only implied by an entry's path; not the top itself. */
  directories: number;
  symlinks: number;
  /** Bytes written to files. */
  bytes: number;
}

type Kind = "dir" | "file" | "symlink";

/** A file being written: its data in order, then `end`. */
export interface FileSink {
  write(chunk: Uint8Array): void;
  end(): void;
}

/** Modes: permission bits only (set-id and sticky bits dropped); the owner can always read, and enter directories. */
const fileMode = (mode: number | undefined): number => ((mode ?? 0o644) & 0o777) | 0o400;
const dirMode = (mode: number | undefined): number => ((mode ?? 0o755) & 0o777) | 0o700;

const CREATE_FILE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (constants.O_NOFOLLOW ?? 0);
/** What creating a path the archive has not written yet fails with when another spelling of it exists. */
const COLLISIONS = new Set(["EEXIST", "ELOOP", "ENOTDIR"]);
/** Symlinks resolved one through another before the archive is refused (the kernel itself follows 40). */
const MAX_LINK_CHAIN = 1000;

export class StagingTree {
  /** Every path written, by kind; a path's parents are all `dir` (checked as it is written). */
  private readonly kinds = new Map<string, Kind>([["", "dir"]]);
  private readonly dirModes = new Map<string, number>();
  private readonly symlinks: string[] = [];
  /** Where each symlink resolved to (see `resolveLink`), by its real path. */
  private readonly resolved = new Map<string, string[] | "escapes" | "loop">();
  private readonly tally: UnpackedTally = { files: 0, directories: 0, symlinks: 0, bytes: 0 };
  private declared = 0;
  private openFd: number | undefined;
  private closed = false;

  constructor(
    private readonly root: string,
    private readonly archive: string,
    private readonly maxBytes: number,
  ) {}

  /** A directory entry. A directory listed again keeps one directory, with the later mode. */
  directory(name: string, mode: number | undefined): void {
    const path = this.pathOf(name);
    if (path === "") return; // the top (`./`): it is the destination itself
    const kind = this.kinds.get(path);
    if (kind === "dir") {
      this.dirModes.set(path, dirMode(mode));
      return;
    }
    if (kind !== undefined) throw this.unsafe(name, `is a directory, but an earlier entry made ${JSON.stringify(path)} a ${kind}`);
    this.makeParents(name, path);
    this.makeDirectory(name, path);
    this.dirModes.set(path, dirMode(mode));
  }

  /** A regular file entry of `declaredSize` bytes, written through the returned sink. */
  file(name: string, mode: number | undefined, declaredSize: number): FileSink {
    const path = this.newPath(name);
    this.declared += declaredSize;
    if (this.declared > this.maxBytes) throw new ArchiveTooLargeError(this.archive, name, this.maxBytes);
    this.makeParents(name, path);
    const fd = this.create(name, path, () => openSync(join(this.root, path), CREATE_FILE, 0o600));
    this.openFd = fd;
    this.tally.files++;
    let written = 0;
    return {
      write: (chunk) => {
        this.checkOpen();
        written += chunk.byteLength;
        if (written > declaredSize) {
          throw new CorruptArchiveError(this.archive, name, `its data runs past the ${declaredSize} bytes its header declares`);
        }
        this.tally.bytes += chunk.byteLength;
        if (this.tally.bytes > this.maxBytes) throw new ArchiveTooLargeError(this.archive, name, this.maxBytes);
        for (let offset = 0; offset < chunk.byteLength; ) offset += writeSync(fd, chunk, offset);
      },
      end: () => {
        this.checkOpen();
        if (written !== declaredSize) {
          throw new CorruptArchiveError(this.archive, name, `it holds ${written} bytes where its header declares ${declaredSize}`);
        }
        fchmodSync(fd, fileMode(mode));
        this.openFd = undefined;
        closeSync(fd);
      },
    };
  }

  /** A symlink entry; its target must stay inside the tree (checked by text now, and on disk by `finish`). */
  symlink(name: string, target: string): void {
    const path = this.newPath(name);
    const refused = symlinkTargetVerdict(path, target);
    if (refused) throw this.unsafe(name, refused);
    this.makeParents(name, path);
    this.create(name, path, () => symlinkSync(target, join(this.root, path)));
    this.kinds.set(path, "symlink");
    this.symlinks.push(path);
    this.tally.symlinks++;
  }

  /** A hardlink entry: another name for a regular file an earlier entry of this archive wrote. */
  hardlink(name: string, target: string): void {
    const path = this.newPath(name);
    const to = entryPath(target);
    if ("refused" in to) throw this.unsafe(name, `is a hardlink to ${JSON.stringify(target)}, outside the unpacked tree`);
    if (this.kinds.get(to.path) !== "file") {
      throw this.unsafe(name, `is a hardlink to ${JSON.stringify(target)}, which is not a file an earlier entry of the archive made`);
    }
    this.makeParents(name, path);
    this.create(name, path, () => linkSync(join(this.root, to.path), join(this.root, path)));
    this.tally.files++;
  }

  /**
   * Checks the complete tree (every symlink, followed through the symlinks on disk, stays inside it), gives the
   * directories their modes, and returns the tally.
   */
  finish(): UnpackedTally {
    this.checkOpen();
    for (const path of this.symlinks) {
      if (this.escapes(path)) {
        throw this.unsafe(path, `is a symlink to ${JSON.stringify(readlinkSync(join(this.root, path)))}, which leads outside the unpacked tree through other symlinks`);
      }
    }
    for (const [path, mode] of this.dirModes) chmodSync(join(this.root, path), mode);
    this.closed = true;
    return { ...this.tally };
  }

  /** Stops the tree after a failure: closes the file being written; any later call throws. */
  discard(): void {
    this.closed = true;
    if (this.openFd !== undefined) {
      const fd = this.openFd;
      this.openFd = undefined;
      closeSync(fd);
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new Error("the staging tree is closed");
  }

  private pathOf(name: string): string {
    this.checkOpen();
    const verdict = entryPath(name);
    if ("refused" in verdict) throw this.unsafe(name, verdict.refused);
    return verdict.path;
  }

  /** The path of an entry that is not a directory: not the top, and not a path an earlier entry wrote. */
  private newPath(name: string): string {
    const path = this.pathOf(name);
    if (path === "") throw this.unsafe(name, "names the top of the tree, which is a directory");
    const kind = this.kinds.get(path);
    if (kind !== undefined) throw this.unsafe(name, `appears twice in the archive (an earlier entry made it a ${kind})`);
    return path;
  }

  /**
   * Creates the directories above `path` that do not exist yet. A parent an earlier entry made a symlink or a
   * file is refused: nothing is ever written through a link the archive made.
   */
  private makeParents(name: string, path: string): void {
    let at = path.indexOf("/");
    while (at !== -1) {
      const parent = path.slice(0, at);
      const kind = this.kinds.get(parent);
      if (kind === "symlink") throw this.unsafe(name, `goes through ${JSON.stringify(parent)}, a symlink an earlier entry made`);
      if (kind === "file") throw this.unsafe(name, `goes through ${JSON.stringify(parent)}, a file an earlier entry made`);
      if (kind === undefined) {
        this.makeDirectory(name, parent);
        this.dirModes.set(parent, dirMode(undefined));
      }
      at = path.indexOf("/", at + 1);
    }
  }

  private makeDirectory(name: string, path: string): void {
    try {
      mkdirSync(join(this.root, path), 0o700);
    } catch (error) {
      // Exists although no entry made it: another spelling of a path on a case-insensitive file system. Fine if
      // it is a real directory; anything else (a symlink under another case) is never gone through.
      const code = (error as NodeJS.ErrnoException).code;
      if (!COLLISIONS.has(code ?? "")) throw this.writeFailure(name, error);
      if (code !== "EEXIST" || !lstatSync(join(this.root, path)).isDirectory()) {
        throw this.unsafe(name, `collides with ${JSON.stringify(path)}, which an earlier entry made under another spelling`);
      }
    }
    this.kinds.set(path, "dir");
    this.tally.directories++;
  }

  /** Runs an exclusive create; an existing name (another spelling of an earlier entry) is refused. */
  private create<T>(name: string, path: string, make: () => T): T {
    let made: T;
    try {
      made = make();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (COLLISIONS.has(code ?? "")) throw this.unsafe(name, `collides with an earlier entry under another spelling`);
      throw this.writeFailure(name, error);
    }
    this.kinds.set(path, "file");
    return made;
  }

  /**
   * Whether the symlink at `path`, resolved as the kernel would through what is now on disk, ever climbs above
   * the top of the tree. A component that does not exist is followed by its text, and a loop cannot lead
   * anywhere, so it does not escape.
   */
  private escapes(path: string): boolean {
    return this.resolveLink(path.split("/"), new Set(), 0) === "escapes";
  }

  /**
   * Where the symlink at `at` leads (the real path it resolves to), `escapes`, or `loop`. Each symlink is
   * resolved once (memoized by its real path), and a symlink met on the way is replaced by where it leads: the
   * work grows with the archive's links and their targets' lengths, not with how often they are gone through (a
   * few kilobytes of chained links otherwise cost minutes). A cycle is a loop; a chain of more than
   * MAX_LINK_CHAIN links is refused.
   */
  private resolveLink(at: readonly string[], open: Set<string>, depth: number): string[] | "escapes" | "loop" {
    const key = at.join("/");
    const known = this.resolved.get(key);
    if (known !== undefined) return known;
    if (open.has(key)) return "loop";
    // A chain this long leads nowhere (the kernel stops at 40 links); refused rather than remembered as a loop,
    // which would only be true at this depth.
    if (depth > MAX_LINK_CHAIN) return "escapes";
    open.add(key);
    const target = readlinkSync(join(this.root, ...at));
    let outcome: string[] | "escapes" | "loop" = "escapes";
    if (!target.startsWith("/")) {
      const stack = at.slice(0, -1);
      outcome = stack;
      for (const segment of target.split("/")) {
        if (segment === "" || segment === ".") continue;
        if (segment === "..") {
          if (stack.length === 0) {
            outcome = "escapes";
            break;
          }
          stack.pop();
          continue;
        }
        stack.push(segment);
        if (!this.isSymlink(stack)) continue;
        const through = this.resolveLink(stack, open, depth + 1);
        if (typeof through === "string") {
          outcome = through;
          break;
        }
        stack.splice(0, stack.length, ...through);
      }
    }
    open.delete(key);
    this.resolved.set(key, outcome);
    return outcome;
  }

  private isSymlink(stack: readonly string[]): boolean {
    try {
      return lstatSync(join(this.root, ...stack)).isSymbolicLink();
    } catch {
      // Absent, or under a file: the kernel stops here; going on by the text is the stricter reading.
      return false;
    }
  }

  /** A write the file system refused: a name too long for it is the entry's; anything else (a full disk) is Node's own error. */
  private writeFailure(name: string, error: unknown): unknown {
    if ((error as NodeJS.ErrnoException).code !== "ENAMETOOLONG") return error;
    return new UnsupportedArchiveEntryError(this.archive, name, "has a path too long for this file system");
  }

  private unsafe(name: string, reason: string): UnsafeArchiveEntryError {
    return new UnsafeArchiveEntryError(this.archive, name, reason);
  }
}
