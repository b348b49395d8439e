import { statSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { hashKey, type Hashable } from "../hash/index.js";
import type { CacheStore } from "../store/index.js";
import type { CacheKeySpec } from "./cache-key-spec.js";
import type { CacheKeyComponents } from "./cache-key-components.js";
import { computeCacheKey } from "./cache-key-computation.js";
import { LocalSourceError } from "./cache-key-errors.js";
import { DEFAULT_CACHE_KEYS, readPackageCachetFields } from "./package-fields.js";

/** Options of {@link localSource}. */
export interface LocalSourceOptions {
  /** The directory's cache keys; default its package.json's `"cachet.cacheKeys"`, else {@link DEFAULT_CACHE_KEYS}. */
  cacheKeys?: readonly CacheKeySpec[] | undefined;
  /** Where file digests are memoized by `stat`; without it every keyed file is read each time. */
  store?: CacheStore | undefined;
  /** The environment `{ env }` keys read; default `process.env`. */
  env?: NodeJS.ProcessEnv | undefined;
}

/**
 * A local file or directory identified by its cache key. As a task input it hashes as its key (a declared
 * hash), so a task keyed on it does not read the files again.
 */
export class LocalSource implements Hashable {
  constructor(
    /** The absolute path of the file or directory. */
    readonly path: string,
    /** `file` or `directory`. */
    readonly kind: "file" | "directory",
    /** sha256 hex of the components (see `computeCacheKey`). */
    readonly key: string,
    /** What the key was made of, for `explain`. */
    readonly components: CacheKeyComponents,
  ) {}

  [hashKey](): unknown {
    return this.key;
  }
}

/**
 * A local source: a file keyed by its content (with its name and owner-execute bit), or a directory keyed by its
 * cache keys: `options.cacheKeys`, else its package.json's `"cachet.cacheKeys"` (which replaces the defaults),
 * else the defaults, its `package.json` and whether `src/` exists. A path that names nothing, or neither a file nor
 * a directory, is a {@link LocalSourceError}.
 */
export async function localSource(path: string, options: LocalSourceOptions = {}): Promise<LocalSource> {
  const absolute = resolve(path);
  let stats;
  try {
    stats = statSync(absolute);
  } catch (error) {
    throw new LocalSourceError(absolute, `cannot stat it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  const keyOptions = { store: options.store, env: options.env };
  if (stats.isFile()) {
    const { key, components } = await computeCacheKey(dirname(absolute), [{ file: escapeGlob(basename(absolute)) }], keyOptions);
    return new LocalSource(absolute, "file", key, components);
  }
  if (!stats.isDirectory()) throw new LocalSourceError(absolute, "it is neither a file nor a directory");
  const specs = options.cacheKeys ?? readPackageCachetFields(absolute).cacheKeys ?? DEFAULT_CACHE_KEYS;
  const { key, components } = await computeCacheKey(absolute, specs, keyOptions);
  return new LocalSource(absolute, "directory", key, components);
}

/** A file name as a literal pattern (a name like `a[1].tgz` must not be read as a glob). */
function escapeGlob(name: string): string {
  return name.replace(/[*?[\]{}()!+@\\]/g, "\\$&");
}
