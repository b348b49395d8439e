import type { CacheKeySpec } from "./cache-key-spec.js";
import { formatCacheKeySpec } from "./cache-key-spec.js";
import type { GitState } from "./git-state.js";

/** The `format` of {@link CacheKeyComponents}. */
export const CACHE_KEY_FORMAT = "cachet-cache-keys/1";

/**
 * Everything a cache key was computed from, JSON-serializable, stored with an entry so `explain` can say what
 * changed. Only `baseDir` is not part of the key (keys do not depend on where the files are); environment
 * values are recorded only as digests, never in the clear.
 */
export interface CacheKeyComponents {
  format: typeof CACHE_KEY_FORMAT;
  /** The absolute directory the keys were read from, so the current state can be computed again. */
  baseDir: string;
  /** The cache keys in canonical order (sorted, without duplicates). */
  specs: CacheKeySpec[];
  /** Relative path → `<sha256>` (`<sha256>:x` if executable), or null for a named file that is absent. */
  files: Record<string, string | null>;
  /** Relative path → whether that directory exists. */
  dirs: Record<string, boolean>;
  /** The repository's state, when a `git` key asks for it. */
  git?: GitState;
  /** Variable name → sha256 of its value, or null when it is unset (empty is a digest like any value). */
  env: Record<string, string | null>;
}

/** True for a record made by `computeCacheKey` (as read back from an entry's stored components). */
export function isCacheKeyComponents(value: unknown): value is CacheKeyComponents {
  if (typeof value !== "object" || value === null) return false;
  const record = value as Partial<CacheKeyComponents>;
  return (
    record.format === CACHE_KEY_FORMAT &&
    typeof record.baseDir === "string" &&
    Array.isArray(record.specs) &&
    typeof record.files === "object" &&
    record.files !== null &&
    typeof record.dirs === "object" &&
    record.dirs !== null &&
    typeof record.env === "object" &&
    record.env !== null
  );
}

/**
 * What differs between two computations, one line each, for people: `file src/a.ts changed`, `file b.ts
 * appeared`, `directory src was removed`, `env NODE_ENV changed (set → unset)`, `git commit changed (1a2b3c4d →
 * 5e6f7a8b)`, `git tag v1.2 added`. Empty when the keys are the same.
 */
export function diffCacheKeyComponents(before: CacheKeyComponents, after: CacheKeyComponents): string[] {
  const lines: string[] = [];
  const specsBefore = before.specs.map(formatCacheKeySpec);
  const specsAfter = after.specs.map(formatCacheKeySpec);
  if (JSON.stringify(specsBefore) !== JSON.stringify(specsAfter)) {
    lines.push(`the cache keys changed (${specsBefore.join(" ") || "none"} → ${specsAfter.join(" ") || "none"})`);
  }
  for (const path of unionKeys(before.files, after.files)) {
    const was = before.files[path];
    const now = after.files[path];
    if (was === now) continue;
    if (was === undefined || was === null) lines.push(`file ${path} appeared`);
    else if (now === undefined || now === null) lines.push(`file ${path} disappeared`);
    else if (contentOf(was) !== contentOf(now)) lines.push(`file ${path} changed`);
    else lines.push(`file ${path} ${now.endsWith(":x") ? "became executable" : "is no longer executable"}`);
  }
  for (const path of unionKeys(before.dirs, after.dirs)) {
    const was = before.dirs[path] ?? false;
    const now = after.dirs[path] ?? false;
    if (was !== now) lines.push(`directory ${path} ${now ? "was created" : "was removed"}`);
  }
  const gitBefore = before.git;
  const gitAfter = after.git;
  if (gitBefore?.repository !== gitAfter?.repository && gitBefore && gitAfter) {
    lines.push(gitAfter.repository ? "a git repository appeared" : "the git repository disappeared");
  }
  if ((gitBefore?.commit ?? null) !== (gitAfter?.commit ?? null)) {
    lines.push(`git commit changed (${shortId(gitBefore?.commit)} → ${shortId(gitAfter?.commit)})`);
  }
  const tagsBefore = gitBefore?.tags ?? {};
  const tagsAfter = gitAfter?.tags ?? {};
  for (const tag of unionKeys(tagsBefore, tagsAfter)) {
    const was = tagsBefore[tag];
    const now = tagsAfter[tag];
    if (was === now) continue;
    if (was === undefined) lines.push(`git tag ${tag} added (${shortId(now)})`);
    else if (now === undefined) lines.push(`git tag ${tag} removed`);
    else lines.push(`git tag ${tag} moved (${shortId(was)} → ${shortId(now)})`);
  }
  for (const name of unionKeys(before.env, after.env)) {
    const was = before.env[name];
    const now = after.env[name];
    if (was === now || was === undefined || now === undefined) continue;
    lines.push(`env ${name} ${was === null ? "was set" : now === null ? "was unset" : "changed"}`);
  }
  return lines;
}

function contentOf(digest: string): string {
  return digest.endsWith(":x") ? digest.slice(0, -2) : digest;
}

function shortId(id: string | null | undefined): string {
  return id ? id.slice(0, 12) : "none";
}

function unionKeys(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
}
