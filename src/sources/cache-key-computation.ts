// computeCacheKey: reads what a list of cache keys names in a directory and hashes it (see cache-keys.ts).
import { statSync } from "node:fs";
import { join, resolve } from "node:path";
import { hashValue, sha256Hex } from "../hash/index.js";
import { TimeSlices, type CacheStore } from "../store/index.js";
import { resolveSpecs, type CacheKeySpec } from "./cache-key-spec.js";
import { CACHE_KEY_FORMAT, type CacheKeyComponents } from "./cache-key-components.js";
import { CacheKeyReadError } from "./cache-key-errors.js";
import { FileDigests, type DigestCounts } from "./file-digests.js";
import { readGitState } from "./git-state.js";
import { findKeyFiles, statIfPresent } from "./key-files.js";

/** Options of {@link computeCacheKey}. */
export interface CacheKeyOptions {
  /** Where file digests are memoized by `stat` (one entry per base directory); without it every file is read. */
  store?: CacheStore | undefined;
  /** The environment `{ env }` keys read; default `process.env`. */
  env?: NodeJS.ProcessEnv | undefined;
}

/** The answer of {@link computeCacheKey}. */
export interface CacheKeyResult {
  /** sha256 hex over the canonical encoding of the components (all but `baseDir`). */
  key: string;
  components: CacheKeyComponents;
  /** How many files were read, and how many digests came from the memo. */
  digests: DigestCounts;
}

/**
 * The cache key of `specs` read in `baseDir`. The order and repetition of `specs` do not matter. Files are keyed
 * by relative path, content and owner-execute bit (other mode bits, owners and times are not keyed); a file whose
 * `stat` (size, mtime, ctime, inode) is what the memo in `store` recorded is not read again. Errors: a
 * {@link CacheKeyReadError} for a directory that does not exist or a file that cannot be read, a
 * `CacheKeySpecError` for a pattern that is not a glob or a path naming a directory, a `GitStateError` for a
 * `.git` that cannot be read without git.
 */
export async function computeCacheKey(baseDir: string, specs: readonly CacheKeySpec[], options: CacheKeyOptions = {}): Promise<CacheKeyResult> {
  const base = resolve(baseDir);
  let isDir = false;
  try {
    isDir = statSync(base).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir) throw new CacheKeyReadError(base, "it is not a directory");
  const resolved = resolveSpecs(specs);
  const env = options.env ?? process.env;

  const files: Record<string, string | null> = {};
  let keyedFiles: { paths: string[]; digests: Array<string | null> } = { paths: [], digests: [] };
  let digests: DigestCounts = { read: 0, memoized: 0 };
  if (resolved.patterns.length > 0) {
    const memo = await FileDigests.load(base, options.store);
    const found = await findKeyFiles(base, resolved.patterns);
    const named = new Set(found.literals);
    const slices = new TimeSlices();
    let paths: string[] = [];
    let values: Array<string | null> = [];
    for (const { path, stats } of found.files) {
      if (slices.due()) await slices.yield();
      const digest = memo.memoized(path, stats) ?? (await memo.digest(path, stats));
      if (digest === undefined && !named.has(path)) continue;
      paths.push(path);
      values.push(digest ?? null);
    }
    if (found.absent.length > 0) {
      const order = [...paths, ...found.absent].map((path, index) => ({ path, value: index < paths.length ? values[index]! : null }));
      order.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
      paths = order.map(({ path }) => path);
      values = order.map(({ value }) => value);
    }
    for (let i = 0; i < paths.length; i++) files[paths[i]!] = values[i]!;
    keyedFiles = { paths, digests: values };
    await memo.save();
    digests = memo.counts;
  }

  const dirs: Record<string, boolean> = {};
  for (const dir of resolved.dirs) dirs[dir] = statIfPresent(join(base, dir), dir)?.isDirectory() ?? false;

  const envDigests: Record<string, string | null> = {};
  for (const name of resolved.env) {
    const value = env[name];
    envDigests[name] = value === undefined ? null : sha256Hex(`cachet-env/1\0${value}`);
  }

  const components: CacheKeyComponents = {
    format: CACHE_KEY_FORMAT,
    baseDir: base,
    specs: resolved.canonical,
    files,
    dirs,
    ...(resolved.git ? { git: readGitState(base, resolved.git) } : {}),
    env: envDigests,
  };
  return { key: keyOf(components, keyedFiles), components, digests };
}

/** The key of a components record: the canonical encoding of everything but `baseDir`. */
export function cacheKeyOf(components: CacheKeyComponents): string {
  const paths = Object.keys(components.files).sort();
  return keyOf(components, { paths, digests: paths.map((path) => components.files[path]!) });
}

/**
 * Files go into the key as two arrays in path order, paths and digests: the same information as the record, without
 * sorting its keys again or making an array per file.
 */
function keyOf(components: CacheKeyComponents, files: { paths: string[]; digests: Array<string | null> }): string {
  const { format, specs, dirs, git, env } = components;
  return hashValue({ format, specs, files: [files.paths, files.digests], dirs, git: git ?? null, env });
}
