import { readPackageSettingsAt, type CacheKeySpec, type PackageSettings } from "../config/index.js";

/** The cache keys of a directory whose package.json sets none: its package.json, and whether `src/` exists. */
export const DEFAULT_CACHE_KEYS: readonly CacheKeySpec[] = Object.freeze([{ file: "package.json" }, { dir: "src" }]);

/** The local-source fields of a package.json's `"cachet"` object. */
export interface PackageCachetFields {
  /** `"cacheKeys"`, which replaces {@link DEFAULT_CACHE_KEYS}; undefined when not set. */
  cacheKeys?: readonly CacheKeySpec[] | undefined;
  /** `"alwaysRun"`: names of entries rebuilt on every run regardless of their keys. */
  alwaysRun?: readonly string[] | undefined;
}

/**
 * The `"cachet": { "cacheKeys", "alwaysRun" }` of `dir`'s own package.json (not searched upwards), validated; an
 * empty record when there is no package.json or no `"cachet"`. A bad field is a `SettingError` naming the file
 * and the field; JSON that does not parse, a `PackageJsonError`.
 */
export function readPackageCachetFields(dir: string): PackageCachetFields {
  const settings = readPackageSettingsAt(dir);
  return { ...(settings?.cacheKeys ? { cacheKeys: settings.cacheKeys } : {}), ...(settings?.alwaysRun ? { alwaysRun: settings.alwaysRun } : {}) };
}

/**
 * Whether entry `name` is to be rebuilt on every run (listed in `"alwaysRun"`), given the package's directory
 * (its package.json is read) or fields already read.
 */
export function alwaysRuns(dirOrFields: string | PackageCachetFields | PackageSettings, name: string): boolean {
  const fields = typeof dirOrFields === "string" ? readPackageCachetFields(dirOrFields) : dirOrFields;
  return fields.alwaysRun?.includes(name) ?? false;
}
