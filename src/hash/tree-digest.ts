import { createHash } from "node:crypto";
import { readdir, readlink, stat } from "node:fs/promises";
import { join } from "node:path";
import { UnsupportedFileTypeError } from "./errors.js";
import { describeFileType, hashFile } from "./file-digest.js";

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

/** Options of `hashTree`. */
export interface HashTreeOptions {
  /** Called with each entry's relative path once it has been read (for progress). */
  onEntry?: (relativePath: string) => void;
  /** Files hashed and directories read at the same time; default 16. */
  concurrency?: number;
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
 * time. A socket, FIFO or device inside throws UnsupportedFileTypeError naming it.
 */
export async function hashTree(dir: string, options: HashTreeOptions = {}): Promise<TreeDigest> {
  const rootStats = await stat(dir);
  if (!rootStats.isDirectory()) {
    throw new UnsupportedFileTypeError(`cannot hash "${dir}" as a tree: it is ${describeFileType(rootStats)}, not a directory`, dir);
  }
  const onEntry = options.onEntry;
  const limit = createLimit(options.concurrency ?? 16);
  const entries: TreeEntry[] = [];
  const tally = { files: 0, directories: 0, symlinks: 0, bytes: 0 };
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
    const absoluteDir = relativeDir === "" ? dir : join(dir, relativeDir);
    const dirents = await guarded(() => readdir(absoluteDir, { withFileTypes: true }));
    const work: Promise<void>[] = [];
    for (const dirent of dirents ?? []) {
      if (failure) break;
      const path = relativeDir === "" ? dirent.name : `${relativeDir}/${dirent.name}`;
      const absolute = join(absoluteDir, dirent.name);
      try {
        if (dirent.isDirectory()) {
          entries.push({ path, type: "dir" });
          tally.directories++;
          onEntry?.(path);
          work.push(visit(path));
        } else if (dirent.isFile()) {
          work.push(
            guarded(async () => {
              const file = await hashFile(absolute);
              entries.push({ path, type: "file", digest: file.digest, executable: file.executable });
              tally.files++;
              tally.bytes += file.size;
              onEntry?.(path);
            }),
          );
        } else if (dirent.isSymbolicLink()) {
          work.push(
            guarded(async () => {
              const target = await readlink(absolute);
              entries.push({ path, type: "symlink", target });
              tally.symlinks++;
              onEntry?.(path);
            }),
          );
        } else {
          throw new UnsupportedFileTypeError(
            `cannot hash "${absolute}": it is ${describeFileType(dirent)} (a tree may hold only files, directories and symlinks)`,
            absolute,
          );
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
  return { digest: treeDigestFromEntries(entries), ...tally };
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
