import { posix } from "node:path";
import { SettingError, validateCacheKeySpec, type CacheKeySpec } from "../config/index.js";
import { CacheKeySpecError } from "./cache-key-errors.js";

export type { CacheKeySpec };

/**
 * A cache key as `cachet run --key` takes it: `'src/**\/*.ts'` (a path or glob; `!pattern` excludes), `file:PATH`,
 * `dir:PATH`, `git` (the HEAD commit), `git:commit`, `git:tags`, `git:commit,tags`, `env:NAME`. A path that
 * contains a colon is written with a leading `./`. A bad form is a {@link CacheKeySpecError}.
 */
export function parseCacheKeySpec(text: string): CacheKeySpec {
  const form = /^([a-z]+):(.*)$/s.exec(text);
  if (text === "git") return { git: true };
  try {
    if (!form) return validateCacheKeySpec(text, { field: "--key" });
    const [, kind, rest] = form as unknown as [string, string, string];
    switch (kind) {
      case "file":
        return validateCacheKeySpec({ file: rest }, { field: "--key" });
      case "dir":
        return validateCacheKeySpec({ dir: rest }, { field: "--key" });
      case "env":
        return validateCacheKeySpec({ env: rest }, { field: "--key" });
      case "git": {
        const flags = rest.split(",").map((flag) => flag.trim());
        const git: { commit?: boolean; tags?: boolean } = {};
        for (const flag of flags) {
          if (flag !== "commit" && flag !== "tags") throw new CacheKeySpecError(text, `is not valid: unknown git key "${flag}": expected git, git:commit, git:tags or git:commit,tags`);
          git[flag] = true;
        }
        return { git };
      }
      default:
        throw new CacheKeySpecError(
          text,
          `is not valid: unknown form "${kind}:": expected a path or glob, file:PATH, dir:PATH, git, git:commit, git:tags or env:NAME (write a path with a colon as ./${text})`,
        );
    }
  } catch (error) {
    if (error instanceof SettingError) throw new CacheKeySpecError(text, `${error.problem}: expected ${error.accepted}`);
    throw error;
  }
}

/** A spec from a caller that types may not have checked (plain JavaScript, JSON), as a {@link CacheKeySpecError}. */
function checked(spec: unknown, index: number): CacheKeySpec {
  try {
    return validateCacheKeySpec(spec, { field: `cacheKeys[${index}]` });
  } catch (error) {
    if (error instanceof SettingError) {
      const problem = `${error.problem}: expected ${error.accepted}`;
      throw typeof spec === "string" ? new CacheKeySpecError(spec, problem) : new CacheKeySpecError(JSON.stringify(spec) ?? String(spec), problem, { json: true });
    }
    throw error;
  }
}

/** `spec` written the way {@link parseCacheKeySpec} reads it, for messages and `explain`. */
export function formatCacheKeySpec(spec: CacheKeySpec): string {
  if (typeof spec === "string") return spec;
  if ("file" in spec) return `file:${spec.file}`;
  if ("dir" in spec) return `dir:${spec.dir}`;
  if ("env" in spec) return `env:${spec.env}`;
  if (spec.git === true) return "git";
  return `git:${[spec.git.commit ? "commit" : "", spec.git.tags ? "tags" : ""].filter(Boolean).join(",")}`;
}

/** What a list of specs asks for, each kind separately, with paths in one spelling (`./a/../b` is `b`). */
export interface ResolvedSpecs {
  /** Path and glob patterns (`{ file }` included), `!pattern` excludes among them. */
  patterns: string[];
  dirs: string[];
  git: { commit: boolean; tags: boolean } | undefined;
  env: string[];
  /** The specs in one canonical order without duplicates: what the key is made of. */
  canonical: CacheKeySpec[];
}

/** Sorts and deduplicates `specs` (their order and repetition never change a key) and splits them by kind. */
export function resolveSpecs(specs: readonly CacheKeySpec[]): ResolvedSpecs {
  const patterns = new Set<string>();
  const dirs = new Set<string>();
  const env = new Set<string>();
  let git: { commit: boolean; tags: boolean } | undefined;
  if (!Array.isArray(specs)) throw new CacheKeySpecError(String(specs), "is not valid: expected an array of cache keys");
  for (const [index, given] of specs.entries()) {
    const spec = checked(given, index);
    if (typeof spec === "string") patterns.add(normalizePattern(spec));
    else if ("file" in spec) patterns.add(normalizePattern(spec.file));
    else if ("dir" in spec) dirs.add(normalizePath(spec.dir));
    else if ("env" in spec) env.add(spec.env);
    else {
      const commit = spec.git === true || spec.git.commit === true;
      const tags = spec.git !== true && spec.git.tags === true;
      git = { commit: (git?.commit ?? false) || commit, tags: (git?.tags ?? false) || tags };
    }
  }
  const sorted = (values: Set<string>) => [...values].sort();
  const canonical: CacheKeySpec[] = [
    ...sorted(patterns),
    ...sorted(dirs).map((dir) => ({ dir })),
    ...(git ? [{ git: { ...(git.commit ? { commit: true } : {}), ...(git.tags ? { tags: true } : {}) } }] : []),
    ...sorted(env).map((name) => ({ env: name })),
  ];
  return { patterns: sorted(patterns), dirs: sorted(dirs), git, env: sorted(env), canonical };
}

function normalizePattern(pattern: string): string {
  return pattern.startsWith("!") ? `!${normalizePath(pattern.slice(1))}` : normalizePath(pattern);
}

/** No `./`, no trailing slash, `..` folded where it can be (a backslash stays: in a glob it escapes). */
export function normalizePath(path: string): string {
  const normalized = posix.normalize(path).replace(/\/+$/, "");
  return normalized === "" ? "." : normalized;
}
