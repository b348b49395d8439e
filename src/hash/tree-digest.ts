import { createHash } from "node:crypto";
import { readdirSync, readlinkSync, statSync, type Dirent, type Stats } from "node:fs";
import { readdir, readlink, stat } from "node:fs/promises";
import { join } from "node:path";
import { UnsupportedFileTypeError } from "./errors.js";
import { describeFileType, hashFile, hashFileSync } from "./file-digest.js";

/**
 * One entry of a directory tree as the tree digest sees it. `path` is relative, POSIX-separated, without `.`
 * or `..` segments; every parent directory of an entry is itself a `dir` entry. Files carry their content
 * `digest` (sha256 hex) and `executable` bit, symlinks their `target` text.
 */
export interface TreeEntry {
  path: string;
  type: "file" | "dir" | "symlink";
  digest?: string;
  executable?: boolean;
  target?: string;
}

/** The digest of a directory tree and what it contains (the root itself not counted). */
export interface TreeDigest {
  /** sha256 hex of the tree digest format (docs/value-encoding.md). */
  digest: string;
  files: number;
  directories: number;
  symlinks: number;
  /** Total size of the files' contents. */
  bytes: number;
}

/**
 * Entries a tree walk leaves out, as if they were not there (a skipped directory is not read): a list of names,
 * each matching an entry of that name at any depth whatever its type (`[".git", "node_modules"]`), or a predicate
 * given the entry's relative POSIX path and its type (`"other"` for a socket, FIFO or device), true to skip.
 */
export type TreeSkip = readonly string[] | ((relativePath: string, type: TreeEntry["type"] | "other") => boolean);

/** Options of `hashTree` and `hashTreeSync`. */
export interface HashTreeOptions {
  /** Called with each entry's relative path once it has been read (for progress). */
  onEntry?: (relativePath: string) => void;
  /** Files hashed and directories read at the same time; default 16 (`hashTreeSync` reads one at a time). */
  concurrency?: number;
  /** Entries to leave out; default none, so every entry counts. */
  skip?: TreeSkip;
}

/** First bytes hashed for every tree: names the format, so a future one cannot collide. */
const TREE_HEADER = Buffer.from("cachet-tree/1\0", "latin1");
const TYPE_BYTE = { dir: 0x64, file: 0x66, symlink: 0x6c } as const;
const HEX_DIGEST = /^[0-9a-f]{64}$/;
const FLUSH_AT = 60 * 1024;

/**
 * The tree digest of `entries` (any order): sha256 over a header and one record per entry sorted by the
 * UTF-8 bytes of its path, each holding the type, path, and for files the executable bit and content digest,
 * for symlinks the target. `hashTree` uses this; the store can call it with digests it computed while copying.
 * Malformed entries (bad path, missing parent directory, duplicate, missing digest) throw a TypeError.
 */
export function treeDigestFromEntries(entries: readonly TreeEntry[]): string {
  const keyed = entries.map((entry) => ({ entry, key: Buffer.from(checkPath(entry.path), "utf8") }));
  keyed.sort((a, b) => Buffer.compare(a.key, b.key));
  const types = new Map<string, TreeEntry["type"]>();
  for (const { entry } of keyed) {
    if (types.has(entry.path)) throw new TypeError(`tree entry "${entry.path}" appears twice`);
    types.set(entry.path, entry.type);
  }

  const hash = createHash("sha256");
  const out = Buffer.allocUnsafe(64 * 1024);
  let at = TREE_HEADER.copy(out, 0);
  const varuint = (n: number): void => {
    while (n > 0x7f) {
      out[at++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    out[at++] = n;
  };
  const bytes = (chunk: Buffer): void => {
    varuint(chunk.length);
    if (at + chunk.length > out.length) {
      hash.update(out.subarray(0, at));
      at = 0;
      hash.update(chunk);
    } else {
      at += chunk.copy(out, at);
    }
  };

  for (const { entry, key } of keyed) {
    const slash = entry.path.lastIndexOf("/");
    if (slash > 0 && types.get(entry.path.slice(0, slash)) !== "dir") {
      throw new TypeError(`tree entry "${entry.path}" has no "dir" entry for its parent "${entry.path.slice(0, slash)}"`);
    }
    const type = TYPE_BYTE[entry.type];
    if (type === undefined) throw new TypeError(`tree entry "${entry.path}" has an unknown type ${JSON.stringify(entry.type)}`);
    if (at > FLUSH_AT) {
      hash.update(out.subarray(0, at));
      at = 0;
    }
    out[at++] = type;
    bytes(key);
    if (entry.type === "file") {
      if (typeof entry.digest !== "string" || !HEX_DIGEST.test(entry.digest)) {
        throw new TypeError(`tree entry "${entry.path}" is a file without a sha256 hex digest`);
      }
      if (at > FLUSH_AT) {
        hash.update(out.subarray(0, at));
        at = 0;
      }
      out[at++] = entry.executable === true ? 1 : 0;
      at += out.write(entry.digest, at, 32, "hex");
    } else if (entry.type === "symlink") {
      if (typeof entry.target !== "string") throw new TypeError(`tree entry "${entry.path}" is a symlink without a target`);
      if (at > FLUSH_AT) {
        hash.update(out.subarray(0, at));
        at = 0;
      }
      bytes(Buffer.from(entry.target, "utf8"));
    }
  }
  hash.update(out.subarray(0, at));
  return hash.digest("hex");
}

function checkPath(path: string): string {
  if (
    typeof path !== "string" ||
    path === "" ||
    path.startsWith("/") ||
    path.endsWith("/") ||
    path.includes("\0") ||
    path.split("/").some((segment) => segment === "" || segment === "." || segment === "..") ||
    !(path as unknown as { isWellFormed(): boolean }).isWellFormed()
  ) {
    throw new TypeError(`tree entry path ${JSON.stringify(path)} is not a relative POSIX path`);
  }
  return path;
}

/**
 * Hashes the directory tree under `dir` by content: the digest depends only on the relative paths, entry types,
 * file contents, files' owner-executable bits and symlink targets (symlinks are not followed) — never on where
 * the tree is, mtimes, owners or other mode bits. Empty directories count. Files are hashed `concurrency` at a
 * time. A socket, FIFO or device inside throws UnsupportedFileTypeError naming it. Entries `skip` names are left
 * out (none by default).
 */
export async function hashTree(dir: string, options: HashTreeOptions = {}): Promise<TreeDigest> {
  checkRoot(dir, await stat(dir));
  const walk = new TreeWalk(dir, options);
  const limit = createLimit(options.concurrency ?? 16);
  // The first failure wins; once set, queued work is skipped and every walk winds down.
  let failure: { error: unknown } | null = null;
  const fail = (error: unknown): void => {
    failure ??= { error };
  };
  const guarded = <T>(job: () => Promise<T>): Promise<T | undefined> =>
    limit(() => (failure ? Promise.resolve(undefined) : job())).catch((error: unknown) => {
      fail(error);
      return undefined;
    });

  const visit = async (relativeDir: string): Promise<void> => {
    const absoluteDir = walk.absolute(relativeDir);
    const dirents = await guarded(() => readdir(absoluteDir, { withFileTypes: true }));
    const work: Promise<void>[] = [];
    for (const dirent of dirents ?? []) {
      if (failure) break;
      try {
        const found = walk.classify(relativeDir, absoluteDir, dirent);
        if (found === undefined) continue;
        const { path, absolute, type } = found;
        if (type === "dir") {
          walk.addDir(path);
          work.push(visit(path));
        } else if (type === "file") {
          work.push(guarded(async () => walk.addFile(path, await hashFile(absolute))));
        } else {
          work.push(guarded(async () => walk.addSymlink(path, await readlink(absolute))));
        }
      } catch (error) {
        fail(error);
      }
    }
    // Everything started here has settled before the walk reports, so nothing is left running unobserved.
    await Promise.all(work);
  };

  await visit("");
  if (failure) throw (failure as { error: unknown }).error;
  return walk.result();
}

/**
 * `hashTree` with synchronous I/O, one entry at a time, for callers that must answer synchronously (an
 * `ImageSpec`'s tag): the same walk, skips, refusals and digest.
 */
export function hashTreeSync(dir: string, options: Omit<HashTreeOptions, "concurrency"> = {}): TreeDigest {
  checkRoot(dir, statSync(dir));
  const walk = new TreeWalk(dir, options);
  const visit = (relativeDir: string): void => {
    const absoluteDir = walk.absolute(relativeDir);
    for (const dirent of readdirSync(absoluteDir, { withFileTypes: true })) {
      const found = walk.classify(relativeDir, absoluteDir, dirent);
      if (found === undefined) continue;
      const { path, absolute, type } = found;
      if (type === "dir") {
        walk.addDir(path);
        visit(path);
      } else if (type === "file") {
        walk.addFile(path, hashFileSync(absolute));
      } else {
        walk.addSymlink(path, readlinkSync(absolute));
      }
    }
  };
  visit("");
  return walk.result();
}

function checkRoot(dir: string, stats: Stats): void {
  if (!stats.isDirectory()) {
    throw new UnsupportedFileTypeError(`cannot hash "${dir}" as a tree: it is ${describeFileType(stats)}, not a directory`, dir);
  }
}

/** The rules of a tree walk, whichever I/O drives it: what is skipped, refused and recorded, and the tally. */
class TreeWalk {
  private readonly entries: TreeEntry[] = [];
  private readonly tally = { files: 0, directories: 0, symlinks: 0, bytes: 0 };
  private readonly skip: ((path: string, name: string, type: TreeEntry["type"] | "other") => boolean) | undefined;
  private readonly onEntry: ((relativePath: string) => void) | undefined;

  constructor(
    private readonly root: string,
    options: Omit<HashTreeOptions, "concurrency">,
  ) {
    this.onEntry = options.onEntry;
    this.skip = skipTest(options.skip);
  }

  absolute(relativeDir: string): string {
    return relativeDir === "" ? this.root : join(this.root, relativeDir);
  }

  /**
   * What a directory entry is: undefined when it is skipped; a socket, FIFO or device that is not skipped throws
   * UnsupportedFileTypeError naming it.
   */
  classify(relativeDir: string, absoluteDir: string, dirent: Dirent): { path: string; absolute: string; type: TreeEntry["type"] } | undefined {
    const path = relativeDir === "" ? dirent.name : `${relativeDir}/${dirent.name}`;
    const absolute = join(absoluteDir, dirent.name);
    const type = dirent.isDirectory() ? "dir" : dirent.isFile() ? "file" : dirent.isSymbolicLink() ? "symlink" : "other";
    if (this.skip?.(path, dirent.name, type)) return undefined;
    if (type === "other") {
      throw new UnsupportedFileTypeError(
        `cannot hash "${absolute}": it is ${describeFileType(dirent)} (a tree may hold only files, directories and symlinks)`,
        absolute,
      );
    }
    return { path, absolute, type };
  }

  addDir(path: string): void {
    this.entries.push({ path, type: "dir" });
    this.tally.directories++;
    this.onEntry?.(path);
  }

  addFile(path: string, file: { digest: string; size: number; executable: boolean }): void {
    this.entries.push({ path, type: "file", digest: file.digest, executable: file.executable });
    this.tally.files++;
    this.tally.bytes += file.size;
    this.onEntry?.(path);
  }

  addSymlink(path: string, target: string): void {
    this.entries.push({ path, type: "symlink", target });
    this.tally.symlinks++;
    this.onEntry?.(path);
  }

  result(): TreeDigest {
    return { digest: treeDigestFromEntries(this.entries), ...this.tally };
  }
}

/** The `skip` option as one test; names are checked here, so a name that could never match is an error. */
function skipTest(skip: TreeSkip | undefined): ((path: string, name: string, type: TreeEntry["type"] | "other") => boolean) | undefined {
  if (skip === undefined) return undefined;
  if (typeof skip === "function") return (path, _name, type) => skip(path, type) === true;
  if (!Array.isArray(skip)) throw new TypeError(`hashTree option "skip" must be a list of names or a function, got ${typeof skip}`);
  for (const name of skip) {
    if (typeof name !== "string" || name === "" || name === "." || name === ".." || name.includes("/") || name.includes("\0")) {
      throw new TypeError(`hashTree option "skip": ${JSON.stringify(name)} is not an entry name (no "/", not empty, "." or "..")`);
    }
  }
  if (skip.length === 0) return undefined;
  const names = new Set(skip);
  return (_path, name) => names.has(name);
}

/** Runs at most `max` of the given async jobs at a time, in call order. */
function createLimit(max: number): <T>(job: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  let next = 0;
  return async <T>(job: () => Promise<T>): Promise<T> => {
    if (active >= max) await new Promise<void>((resolve) => waiting.push(resolve));
    else active++;
    try {
      return await job();
    } finally {
      // Hand the slot straight to the next waiter, or free it.
      if (next < waiting.length) {
        waiting[next++]!();
        if (next > 1024 && next * 2 > waiting.length) {
          waiting.splice(0, next);
          next = 0;
        }
      } else {
        active--;
      }
    }
  };
}
