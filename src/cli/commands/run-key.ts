import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { basename, dirname, join, relative, sep } from "node:path";
import { isCachetError } from "../../errors.js";
import {
  computeCacheKey,
  DEFAULT_CACHE_KEYS,
  parseCacheKeySpec,
  type CacheKeyComponents,
  type CacheKeySpec,
} from "../../sources/cache-keys.js";
import type { CacheStore } from "../../store/index.js";
import { UsageError } from "../usage-error.js";

/** Version of the run key's shape: bumping it makes every earlier `cachet run` entry a miss. */
const RUN_KEY_VERSION = "cachet-run-key/2";

/** What a `cachet run` key is made of, recorded with the entry so `--dry-run` and `explain` can say what changed. */
export interface RunKeyComponents {
  version: typeof RUN_KEY_VERSION;
  /** The command and its arguments, as given after `--`. */
  command: string[];
  /** The working directory relative to the nearest package.json (`.` there), or absolute without one. */
  cwd: string;
  /** The `--out` paths, as given (relative to the working directory). */
  outs: string[];
  /** Each `--env` variable: a digest of its value (`set:<sha256>`, empty included), or `unset`. */
  env: Record<string, string>;
  /** The `--key` specifications, as given. */
  keySpecs: string[];
  /** What the `--key` specifications read, relative to the working directory (absent without `--key`). */
  keys?: CacheKeyComponents | undefined;
  /**
   * What the package's cache keys read, relative to its package.json: its `"cachet.cacheKeys"`, else the defaults
   * (the package.json itself and whether `src/` exists). Absent outside a package.
   */
  packageKeys?: CacheKeyComponents | undefined;
}

/** What {@link runKey} needs. */
export interface RunKeyRequest {
  command: readonly string[];
  /** The working directory relative to the package (see {@link findPackage}). */
  cwdRelative: string;
  outs: readonly string[];
  envNames: readonly string[];
  /** `--key` specifications (a path or glob, `file:…`, `dir:…`, `git`, `git:tags`, `env:NAME`), relative to `cwd`. */
  keySpecs: readonly string[];
  env: NodeJS.ProcessEnv;
  /** The working directory. */
  cwd: string;
  /** The directory of the nearest package.json, whose cache keys count too. */
  packageDir: string | undefined;
  /** Its `"cachet.cacheKeys"`, as read from that package.json; the defaults apply when absent. */
  packageCacheKeys?: readonly CacheKeySpec[] | undefined;
  /** A store for the file-digest memo (an unchanged file then costs one `stat`); without one, every file is read. */
  store?: CacheStore | undefined;
}

/**
 * The key of a `cachet run`: the one place that decides what a run is keyed on — the command line, the working
 * directory relative to the package, the `--out` paths, every `--env` variable (a digest of its value: set, empty
 * and unset all differ; the value itself is never stored), what every `--key` reads (relative to the working
 * directory) and what the package's cache keys read (relative to its package.json). File contents are digests
 * memoized by `stat` in `store`.
 */
export async function runKey(request: RunKeyRequest): Promise<{ key: string; components: RunKeyComponents }> {
  const specs = request.keySpecs.map(parseKeyFlag);
  const env: Record<string, string> = {};
  for (const name of [...new Set(request.envNames)].sort()) env[name] = envDigest(request.env[name]);
  const memo = { store: request.store, env: request.env };
  const keys = specs.length > 0 ? await computeCacheKey(request.cwd, specs, memo) : undefined;
  const packageKeys =
    request.packageDir === undefined
      ? undefined
      : await computeCacheKey(request.packageDir, request.packageCacheKeys ?? DEFAULT_CACHE_KEYS, memo);
  const components: RunKeyComponents = {
    version: RUN_KEY_VERSION,
    command: [...request.command],
    cwd: request.cwdRelative,
    outs: [...request.outs],
    env,
    keySpecs: [...request.keySpecs],
    ...(keys === undefined ? {} : { keys: keys.components }),
    ...(packageKeys === undefined ? {} : { packageKeys: packageKeys.components }),
  };
  // Cache-key components record their absolute base directory (for explain); the key takes their own keys, which
  // leave it out, so a checkout elsewhere still hits.
  const keyed = { ...components, keys: keys?.key ?? null, packageKeys: packageKeys?.key ?? null };
  const key = createHash("sha256").update(JSON.stringify(keyed)).digest("hex");
  return { key, components };
}

function parseKeyFlag(text: string): CacheKeySpec {
  try {
    return parseCacheKeySpec(text);
  } catch (error) {
    if (isCachetError(error)) throw new UsageError(`--key ${text}: ${error.message}`);
    throw error;
  }
}

function envDigest(value: string | undefined): string {
  if (value === undefined) return "unset";
  return `set:${createHash("sha256").update(RUN_KEY_VERSION).update("\0").update(value).digest("hex")}`;
}

/** The nearest package.json at or above `cwd`: its directory and `name`, if any. */
export interface PackageHome {
  dir: string | undefined;
  name: string | undefined;
}

export function findPackage(cwd: string): PackageHome {
  for (let dir = cwd; ; dir = dirname(dir)) {
    const file = join(dir, "package.json");
    if (existsSync(file)) {
      let name: string | undefined;
      try {
        const parsed = JSON.parse(readFileSync(file, "utf8")) as { name?: unknown };
        if (typeof parsed.name === "string" && parsed.name !== "") name = parsed.name;
      } catch {
        name = undefined; // an unreadable package.json still marks the package's root
      }
      return { dir, name };
    }
    if (dirname(dir) === dir) return { dir: undefined, name: undefined };
  }
}

/** The working directory as the key records it: relative to the package (POSIX separators), else absolute. */
export function cwdInPackage(cwd: string, home: PackageHome): string {
  if (home.dir === undefined) return cwd;
  return relative(home.dir, cwd).split(sep).join("/") || ".";
}

/** The default entry name: `<package>:<command word>` (`my-pkg:tsc`; `@scope/pkg` becomes `@scope+pkg`). */
export function defaultRunName(command: readonly string[], home: PackageHome): string {
  const word = basename(command[0] ?? "run");
  return home.name === undefined ? word : `${home.name.replace(/\//g, "+")}:${word}`;
}
