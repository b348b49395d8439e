import { chmodSync, lstatSync, readlinkSync } from "node:fs";
import { treeDigestFromEntries, type TreeEntry } from "../hash/index.js";
import type { CacheLayout } from "./layout.js";
import { cachedFileMode, readManifest, writeManifest, type ManifestEntry, type ManifestFile, type ManifestSymlink, type TreeManifest } from "./tree-manifest.js";
import { TimeSlices } from "./time-slices.js";
import { digestOfFile, walkTree } from "./tree-walk.js";

/** A tree's manifest, or why there is none to use: the tree is missing, or its content no longer matches its digest. */
export type ManifestLoad = { manifest: TreeManifest } | { missing: true } | { mismatch: string };

/**
 * The manifest of the cached tree `digest`. A tree without one (published by an older build, or by a process
 * killed between publishing the tree and its manifest), or whose manifest belongs to another copy of the tree,
 * is re-hashed against its digest and gets a fresh manifest (see {@link rebuildManifest}).
 */
export async function loadTreeManifest(layout: CacheLayout, digest: string): Promise<ManifestLoad> {
  const root = lstatSync(layout.tree(digest), { throwIfNoEntry: false });
  if (root === undefined || !root.isDirectory()) return { missing: true };
  const manifest = readManifest(layout, digest);
  if (manifest !== undefined && manifest.root.ino === root.ino) return { manifest };
  return rebuildManifest(layout, digest, manifest);
}

/**
 * Re-hashes the cached tree `digest` and, if it still matches, makes its files read-only and writes its manifest.
 * The modes to restore come from `previous` where it knows the path; otherwise from the cached file, plus the
 * owner's write bit if it has none (a tree whose manifest was lost had its write bits removed by cachet; a tree of
 * an older build kept its own modes).
 */
export async function rebuildManifest(layout: CacheLayout, digest: string, previous?: TreeManifest): Promise<ManifestLoad> {
  const treePath = layout.tree(digest);
  if (lstatSync(treePath, { throwIfNoEntry: false })?.isDirectory() !== true) return { missing: true };
  try {
    return await rehash(layout, digest, previous);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { mismatch: "entries disappeared while it was checked" };
    throw error;
  }
}

async function rehash(layout: CacheLayout, digest: string, previous: TreeManifest | undefined): Promise<ManifestLoad> {
  const treePath = layout.tree(digest);
  const walked = await walkTree(treePath);
  const knownModes = new Map<string, number>();
  for (const entry of previous?.entries ?? []) if (entry.kind !== "symlink") knownModes.set(entry.path, entry.mode);

  const treeEntries: TreeEntry[] = [];
  const entries: ManifestEntry[] = [];
  const slices = new TimeSlices();
  for (const { path, absolute, stats } of walked) {
    if (slices.due()) await slices.yield();
    const mode = stats.mode & (stats.isDirectory() ? 0o1777 : 0o777); // no set-id bits
    if (stats.isDirectory()) {
      treeEntries.push({ path, type: "dir" });
      entries.push({ kind: "dir", path, mode: knownModes.get(path) ?? mode, mtimeMs: stats.mtimeMs });
    } else if (stats.isSymbolicLink()) {
      const target = readlinkSync(absolute);
      treeEntries.push({ path, type: "symlink", target });
      entries.push({ kind: "symlink", path, target });
    } else if (stats.isFile()) {
      const executable = (mode & 0o100) !== 0;
      treeEntries.push({ path, type: "file", digest: await digestOfFile(absolute, stats.size), executable });
      const known = knownModes.get(path);
      const original = known !== undefined && (known & 0o100) === (mode & 0o100) ? known : (mode & 0o222) === 0 ? mode | 0o200 : mode;
      entries.push({ kind: "file", path, mode: original, size: stats.size, mtimeMs: stats.mtimeMs });
    } else {
      return { mismatch: `"${path}" is not a regular file, directory or symlink` };
    }
  }
  const actual = treeDigestFromEntries(treeEntries);
  if (actual !== digest) return { mismatch: `its content no longer matches its digest (found ${actual})` };

  // The content is proven: a cache that cannot be written (read-only, full, another user's) still serves it.
  await bestEffort(async () => {
    for (const { absolute, stats } of walked) {
      const readOnly = cachedFileMode(stats.mode & 0o7777);
      if (stats.isFile() && (stats.mode & 0o7777) !== readOnly) chmodSync(absolute, readOnly);
    }
  });
  // chmod moves no mtime; the root is stat-ed last so the manifest binds to the copy that was hashed.
  const root = lstatSync(treePath);
  const manifest: TreeManifest = { digest, root: { ino: root.ino, mtimeMs: root.mtimeMs }, entries };
  if (previous === undefined || !sameManifest(previous, manifest)) await bestEffort(() => writeManifest(layout, manifest));
  return { manifest };
}

const UNWRITABLE = new Set(["EACCES", "EPERM", "EROFS", "ENOSPC", "EDQUOT"]);

async function bestEffort(write: () => Promise<void>): Promise<void> {
  try {
    await write();
  } catch (error) {
    if (!UNWRITABLE.has((error as NodeJS.ErrnoException).code ?? "")) throw error;
  }
}

/** Whether two manifests record the same entries (in any order) for the same copy of a tree. */
function sameManifest(a: TreeManifest, b: TreeManifest): boolean {
  if (a.root.ino !== b.root.ino || a.root.mtimeMs !== b.root.mtimeMs || a.entries.length !== b.entries.length) return false;
  const byPath = new Map(a.entries.map((entry) => [entry.path, entry]));
  return b.entries.every((entry) => {
    const other = byPath.get(entry.path);
    return other !== undefined && sameEntry(other, entry);
  });
}

function sameEntry(a: ManifestEntry, b: ManifestEntry): boolean {
  if (a.kind === "symlink" || b.kind === "symlink") return a.kind === b.kind && (a as ManifestSymlink).target === (b as ManifestSymlink).target;
  if (a.kind !== b.kind || a.mode !== b.mode || a.mtimeMs !== b.mtimeMs) return false;
  return a.kind === "dir" || a.size === (b as ManifestFile).size;
}
