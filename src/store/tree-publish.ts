import { chmodSync, constants, lstatSync, mkdirSync, readFileSync, readlinkSync, symlinkSync } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { treeDigestFromEntries, UnsupportedFileTypeError, type TreeEntry, sha256Hex } from "../hash/index.js";
import { describeFileType } from "../hash/file-digest.js";
import { asWriteError, type StoreWriteError } from "./errors.js";
import type { CacheLayout } from "./layout.js";
import { stagingPath } from "./staging.js";
import { TimeSlices } from "./time-slices.js";
import { copyFilesInParallel } from "./parallel-copy.js";
import {
  cachedFileMode,
  checkTree,
  placeManifest,
  stageManifest,
  writeManifest,
  type ManifestDir,
  type ManifestEntry,
  type ManifestFile,
  type TreeManifest,
} from "./tree-manifest.js";
import { loadTreeManifest } from "./tree-rebuild.js";
import { SMALL_FILE, digestOfFile, walkTree } from "./tree-walk.js";

/** A published tree: its digest and the total size of its files. */
export interface PublishedTree {
  digest: string;
  bytes: number;
}

/**
 * Copies the directory `source` into the cache as an immutable tree: copied (never linked, so later edits to
 * `source` cannot reach the cache) into `tmp/`, files made read-only, hashed, renamed into `trees-v1/<digest>`,
 * then its manifest is placed beside it. If the same tree is already cached and sound, that copy and its manifest
 * are kept; if it changed since it was stored, this fresh copy replaces it. Failures to write (a full disk, say)
 * are {@link StoreWriteError}s, and leave nothing in `tmp/`.
 */
export async function publishTree(layout: CacheLayout, source: string): Promise<PublishedTree> {
  const staged = stagingPath(layout.tmp, "tree");
  let stagedManifest: string | undefined;
  try {
    const { manifest, bytes } = await stageTree(source, staged);
    stagedManifest = await stageManifest(layout, manifest);
    const target = layout.tree(manifest.digest);
    if (await renameIfAbsent(staged, target)) {
      await bindManifest(layout, stagedManifest, manifest);
      return { digest: manifest.digest, bytes };
    }
    if (!(await isSound(layout, manifest.digest))) await replaceTree(layout, staged, stagedManifest, manifest);
    return { digest: manifest.digest, bytes };
  } catch (error) {
    throw asWriteError(staged, error);
  } finally {
    await rm(staged, { recursive: true, force: true });
    if (stagedManifest !== undefined) await rm(stagedManifest, { force: true });
  }
}

/**
 * Copies `source` into `staged` (read-only files) and returns the manifest of the copy, root not yet bound.
 * Files are copied on the thread pool, several at once (creating files is what costs), and each copy is hashed
 * here as it lands: the digest is of exactly what the cache holds, whatever happens to `source` meanwhile.
 */
async function stageTree(source: string, staged: string): Promise<{ manifest: TreeManifest; bytes: number }> {
  const walked = await walkTree(source);
  mkdirSync(staged);
  const treeEntries: TreeEntry[] = [];
  const entries: ManifestEntry[] = [];
  const dirs: ManifestDir[] = [];
  const files: Array<{ from: string; entry: ManifestFile }> = [];
  const slices = new TimeSlices();
  for (const { path, absolute, stats } of walked) {
    if (slices.due()) await slices.yield();
    const to = `${staged}/${path}`;
    const mode = stats.mode & (stats.isDirectory() ? 0o1777 : 0o777); // no set-id bits
    if (stats.isDirectory()) {
      mkdirSync(to);
      const dir: ManifestDir = { kind: "dir", path, mode, mtimeMs: 0 };
      dirs.push(dir);
      entries.push(dir);
      treeEntries.push({ path, type: "dir" });
    } else if (stats.isSymbolicLink()) {
      const target = readlinkSync(absolute);
      symlinkSync(target, to);
      entries.push({ kind: "symlink", path, target });
      treeEntries.push({ path, type: "symlink", target });
    } else if (stats.isFile()) {
      const entry: ManifestFile = { kind: "file", path, mode, size: 0, mtimeMs: 0 };
      entries.push(entry);
      files.push({ from: absolute, entry });
    } else {
      throw new UnsupportedFileTypeError(
        `cannot cache "${absolute}": it is ${describeFileType(stats)} (a tree may hold only files, directories and symlinks)`,
        absolute,
      );
    }
  }

  const large: ManifestFile[] = [];
  const executable = (entry: ManifestFile) => (entry.mode & 0o100) !== 0;
  await copyFilesInParallel(
    files.length,
    (index) => [files[index]!.from, `${staged}/${files[index]!.entry.path}`],
    constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE,
    (index, error) => {
      if (error) throw error;
      const { entry } = files[index]!;
      const to = `${staged}/${entry.path}`;
      chmodSync(to, cachedFileMode(entry.mode));
      const stats = lstatSync(to); // chmod moves no mtime: these are the copy's final size and mtime
      entry.size = stats.size;
      entry.mtimeMs = stats.mtimeMs;
      if (stats.size > SMALL_FILE) large.push(entry);
      else treeEntries.push({ path: entry.path, type: "file", digest: sha256Hex(readFileSync(to)), executable: executable(entry) });
      return undefined;
    },
  );
  for (const entry of large) {
    const digest = await digestOfFile(`${staged}/${entry.path}`, entry.size);
    treeEntries.push({ path: entry.path, type: "file", digest, executable: executable(entry) });
  }
  // Directory mtimes are final once everything inside exists.
  for (const dir of dirs) dir.mtimeMs = lstatSync(`${staged}/${dir.path}`).mtimeMs;
  const root = lstatSync(staged);
  const manifest: TreeManifest = { digest: treeDigestFromEntries(treeEntries), root: { ino: root.ino, mtimeMs: root.mtimeMs }, entries };
  let bytes = 0;
  for (const { entry } of files) bytes += entry.size;
  return { manifest, bytes };
}

/** Renames `from` to `to` unless `to` is already a non-empty directory; returns whether it did. */
async function renameIfAbsent(from: string, to: string): Promise<boolean> {
  try {
    await rename(from, to);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOTEMPTY" || code === "EEXIST") return false;
    throw error;
  }
}

/** Places the staged manifest of a tree just renamed into place, re-recording the root if the rename moved it. */
async function bindManifest(layout: CacheLayout, stagedManifest: string, manifest: TreeManifest): Promise<void> {
  const root = lstatSync(layout.tree(manifest.digest));
  if (root.ino === manifest.root.ino && root.mtimeMs === manifest.root.mtimeMs) {
    await placeManifest(layout, stagedManifest, manifest.digest);
  } else {
    await writeManifest(layout, { ...manifest, root: { ino: root.ino, mtimeMs: root.mtimeMs } });
  }
}

/** Whether the cached tree `digest` is intact: it matches its manifest (rebuilt by re-hashing if it has none). */
async function isSound(layout: CacheLayout, digest: string): Promise<boolean> {
  const loaded = await loadTreeManifest(layout, digest);
  if ("missing" in loaded || "mismatch" in loaded) return false;
  return (await checkTree(layout.tree(digest), loaded.manifest)) === undefined;
}

/** Swaps a changed (or half-removed) cached tree for the fresh staged copy. */
async function replaceTree(layout: CacheLayout, staged: string, stagedManifest: string, manifest: TreeManifest): Promise<void> {
  const target = layout.tree(manifest.digest);
  const trash = stagingPath(layout.tmp, "trash");
  try {
    await rename(target, trash);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  // Another process may have put its fresh copy in meanwhile: then that one stays.
  if (await renameIfAbsent(staged, target)) await bindManifest(layout, stagedManifest, manifest);
  await rm(trash, { recursive: true, force: true });
}
