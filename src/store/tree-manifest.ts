import { lstatSync, readFileSync, statSync, type Stats } from "node:fs";
import { rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { sha256Hex } from "../hash/index.js";
import type { CacheLayout } from "./layout.js";
import { stagingPath } from "./staging.js";
import { TimeSlices } from "./time-slices.js";

/**
 * Format identifier written into every manifest; a reader treats any other as no manifest (and re-hashes the
 * tree). `/2` added the checksum; `/1` manifests are rebuilt on first use.
 */
export const TREE_MANIFEST_FORMAT = "cachet-tree-manifest/2";

/** A manifest sits beside its tree in `trees-v1/`, as `<id>.manifest`. */
const MANIFEST_SUFFIX = ".manifest";

/** A directory of a cached tree: the mode it had when stored, and its mtime in the cache. */
export interface ManifestDir {
  kind: "dir";
  path: string;
  mode: number;
  mtimeMs: number;
}

/** A file of a cached tree: the mode it had when stored (the cache's copy is read-only), its size and mtime in the cache. */
export interface ManifestFile {
  kind: "file";
  path: string;
  mode: number;
  size: number;
  mtimeMs: number;
}

export interface ManifestSymlink {
  kind: "symlink";
  path: string;
  target: string;
}

export type ManifestEntry = ManifestDir | ManifestFile | ManifestSymlink;

/**
 * What a published tree holds, written when it is published: every entry in pre-order (a directory before what
 * it holds), with relative POSIX paths. Restores walk it instead of reading directories, and check each cached
 * file's size and mtime (and each directory's mtime, which moves when an entry is added, removed or renamed)
 * against it, so a tree changed since it was stored is never handed out.
 */
export interface TreeManifest {
  digest: string;
  /** The cached tree's root directory: its inode binds the manifest to this copy of the tree. */
  root: { ino: number; mtimeMs: number };
  entries: ManifestEntry[];
}

/** The mode of a file's copy in the cache: read-only (no write bits, no set-id bits), always readable by its owner. */
export function cachedFileMode(original: number): number {
  return (original & 0o555) | 0o400;
}

/** Path of the manifest of tree `id`. */
export function treeManifestPath(layout: CacheLayout, id: string): string {
  return join(layout.bucket("trees"), `${id}${MANIFEST_SUFFIX}`);
}

/** The tree id a name in `trees-v1/` belongs to: the tree directory itself or its manifest. */
export function treeIdOfBucketName(name: string): string {
  return name.endsWith(MANIFEST_SUFFIX) ? name.slice(0, -MANIFEST_SUFFIX.length) : name;
}

/** True for a manifest's name in `trees-v1/`. */
export function isManifestName(name: string): boolean {
  return name.endsWith(MANIFEST_SUFFIX);
}

type DiskEntry = ["d", string, number, number] | ["f", string, number, number, number] | ["l", string, string];

/** The manifest as stored: one tuple per entry keeps a 10 000-file manifest near 600 KB and quick to parse. */
export function encodeManifest(manifest: TreeManifest): string {
  const entries: DiskEntry[] = manifest.entries.map((entry) => {
    switch (entry.kind) {
      case "dir":
        return ["d", entry.path, entry.mode, entry.mtimeMs];
      case "file":
        return ["f", entry.path, entry.mode, entry.size, entry.mtimeMs];
      case "symlink":
        return ["l", entry.path, entry.target];
    }
  });
  const body = { format: TREE_MANIFEST_FORMAT, digest: manifest.digest, root: [manifest.root.ino, manifest.root.mtimeMs], entries };
  return JSON.stringify({ ...body, check: checksumOf(body) });
}

/**
 * A manifest's checksum: sha256 over its fields, so a changed byte anywhere (a mode, a symlink target, a
 * missing record) makes it no manifest at all, and the tree is re-hashed against its digest instead of trusted.
 */
function checksumOf(body: { format?: unknown; digest?: unknown; root?: unknown; entries?: unknown }): string {
  return sha256Hex(JSON.stringify([body.format, body.digest, body.root, body.entries]));
}

/** A path segment that is empty, `.` or `..`, at any position. */
const BAD_SEGMENT = /(^|\/)\.{0,2}(\/|$)/;

/**
 * Parses a stored manifest of tree `digest`, or returns undefined if it is not one: wrong format or digest,
 * malformed entries, or paths that could leave the restore target (absolute, `..`, NUL) or whose parent
 * directory is not listed before them.
 */
export function decodeManifest(text: string, digest: string): TreeManifest | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  const doc = raw as { format?: unknown; digest?: unknown; root?: unknown; entries?: unknown; check?: unknown };
  if (doc === null || typeof doc !== "object" || doc.format !== TREE_MANIFEST_FORMAT || doc.digest !== digest) return undefined;
  if (doc.check !== checksumOf(doc)) return undefined;
  if (!Array.isArray(doc.root) || !isNumber(doc.root[0]) || !isNumber(doc.root[1]) || !Array.isArray(doc.entries)) return undefined;
  const dirs = new Set<string>();
  const entries: ManifestEntry[] = [];
  for (const item of doc.entries as unknown[]) {
    if (!Array.isArray(item)) return undefined;
    const path = item[1];
    if (typeof path !== "string" || path.includes("\0") || BAD_SEGMENT.test(path)) return undefined;
    const slash = path.lastIndexOf("/");
    if (slash > 0 && !dirs.has(path.slice(0, slash))) return undefined;
    // Restored modes never carry set-id bits, whatever a manifest says.
    if (item[0] === "f" && item.length === 5 && isNumber(item[2]) && isNumber(item[3]) && isNumber(item[4])) {
      entries.push({ kind: "file", path, mode: item[2] & 0o777, size: item[3], mtimeMs: item[4] });
    } else if (item[0] === "d" && item.length === 4 && isNumber(item[2]) && isNumber(item[3])) {
      if (dirs.has(path)) return undefined;
      dirs.add(path);
      entries.push({ kind: "dir", path, mode: item[2] & 0o1777, mtimeMs: item[3] });
    } else if (item[0] === "l" && item.length === 3 && typeof item[2] === "string") {
      entries.push({ kind: "symlink", path, target: item[2] });
    } else {
      return undefined;
    }
  }
  return { digest, root: { ino: doc.root[0] as number, mtimeMs: doc.root[1] as number }, entries };
}

function isNumber(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

/** Writes a manifest into `tmp/` (read-only, like everything in the cache) and returns its path, to be placed with {@link placeManifest}. */
export async function stageManifest(layout: CacheLayout, manifest: TreeManifest): Promise<string> {
  const staged = stagingPath(layout.tmp, "manifest");
  await writeFile(staged, encodeManifest(manifest), { flag: "wx", mode: 0o444 });
  return staged;
}

/** Renames a staged manifest into place, replacing any older one of the same tree. */
export async function placeManifest(layout: CacheLayout, staged: string, id: string): Promise<void> {
  try {
    await rename(staged, treeManifestPath(layout, id));
  } catch (error) {
    await rm(staged, { force: true });
    throw error;
  }
}

/** Writes the manifest of a tree in place (staged, then renamed, so readers see the old one or the new one). */
export async function writeManifest(layout: CacheLayout, manifest: TreeManifest): Promise<void> {
  await placeManifest(layout, await stageManifest(layout, manifest), manifest.digest);
}

interface Memo {
  ino: number;
  mtimeMs: number;
  size: number;
  manifest: TreeManifest;
}

/** Parsed manifests, by path, reused while the file is unchanged (a 10 000-file manifest takes ~3 ms to parse). */
const memo = new Map<string, Memo>();
const MEMO_ENTRIES = 16;

/** The stored manifest of tree `id`, or undefined if there is none or it is unreadable. */
export function readManifest(layout: CacheLayout, id: string): TreeManifest | undefined {
  const path = treeManifestPath(layout, id);
  const stats = statSync(path, { throwIfNoEntry: false });
  if (stats === undefined) return undefined;
  const known = memo.get(path);
  if (known && known.ino === stats.ino && known.mtimeMs === stats.mtimeMs && known.size === stats.size) {
    memo.delete(path);
    memo.set(path, known); // most recently used last
    return known.manifest;
  }
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
  const manifest = decodeManifest(text, id);
  if (manifest === undefined) return undefined;
  memo.set(path, { ino: stats.ino, mtimeMs: stats.mtimeMs, size: stats.size, manifest });
  if (memo.size > MEMO_ENTRIES) memo.delete(memo.keys().next().value!);
  return manifest;
}

/**
 * How a cached entry differs from its manifest record, in words, or undefined if it does not. `stats` is the
 * cached entry's `lstat` (undefined when it is missing). Symlinks are not compared: replacing one moves its
 * directory's mtime.
 */
export function describeChange(entry: ManifestDir | ManifestFile, stats: Stats | undefined): string | undefined {
  if (stats === undefined) return `"${entry.path}" is missing`;
  if (entry.kind === "file") {
    if (!stats.isFile()) return `"${entry.path}" is no longer a regular file`;
    if (stats.size !== entry.size) return `"${entry.path}" was modified (size ${entry.size} → ${stats.size})`;
    if (stats.mtimeMs !== entry.mtimeMs) return `"${entry.path}" was modified (mtime changed)`;
    // The owner's exec bit is part of the tree's content (its digest); a chmod moves no mtime.
    if ((stats.mode & 0o100) !== (entry.mode & 0o100)) return `"${entry.path}" was modified (executable bit changed)`;
    return undefined;
  }
  if (!stats.isDirectory()) return `"${entry.path}" is no longer a directory`;
  if (stats.mtimeMs !== entry.mtimeMs) return `directory "${entry.path}" changed (entries added, removed or replaced)`;
  return undefined;
}

/** How the tree root differs from the manifest's record, or undefined. */
export function describeRootChange(manifest: TreeManifest, stats: Stats | undefined): string | undefined {
  if (stats === undefined) return "the tree is missing";
  if (!stats.isDirectory() || stats.ino !== manifest.root.ino) return "the tree was replaced";
  if (stats.mtimeMs !== manifest.root.mtimeMs) return "its top directory changed (entries added, removed or replaced)";
  return undefined;
}

/**
 * Compares the tree at `treePath` with its manifest by `lstat` alone (one per file and directory): returns how it
 * changed, or undefined if it matches.
 */
export async function checkTree(treePath: string, manifest: TreeManifest): Promise<string | undefined> {
  const rootChange = describeRootChange(manifest, lstatSync(treePath, { throwIfNoEntry: false }));
  if (rootChange !== undefined) return rootChange;
  const slices = new TimeSlices();
  for (const entry of manifest.entries) {
    if (slices.due()) await slices.yield();
    if (entry.kind === "symlink") continue;
    const change = describeChange(entry, lstatSync(`${treePath}/${entry.path}`, { throwIfNoEntry: false }));
    if (change !== undefined) return change;
  }
  return undefined;
}
