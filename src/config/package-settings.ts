import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { PackageJsonError, SettingError } from "./errors.js";
import { validateAlwaysRun, validateCacheKeys, type CacheKeySpec } from "./cache-key-fields.js";

/** The fields a package.json `"cachet"` object may hold. */
export const PACKAGE_FIELDS = ["cacheDir", "cacheKeys", "alwaysRun", "remote"] as const;

/** The `"cachet"` field of a package.json, validated. */
export interface PackageSettings {
  /** The package.json it came from. */
  readonly file: string;
  /** `"cacheDir"`, resolved against the folder of {@link file}. */
  readonly cacheDir?: string | undefined;
  /** `"cacheKeys"`: what keys the package's directory as a local source; replaces the defaults. */
  readonly cacheKeys?: readonly CacheKeySpec[] | undefined;
  /** `"alwaysRun"`: names of entries (local sources, `cachet run` commands) rebuilt on every run. */
  readonly alwaysRun?: readonly string[] | undefined;
  /** `"remote"`: the shared tier's PostgreSQL URL, as written (checked by the settings that read it). */
  readonly remote?: string | undefined;
}

/**
 * The `"cachet"` field of the nearest package.json at or above `cwd` (the search stops at the first
 * package.json, as npm's does); undefined when there is none or it has no `"cachet"` field. A package.json that
 * is not JSON is a {@link PackageJsonError}; a field that is not a setting, or a value of the wrong type, a
 * {@link SettingError} naming the file and the field.
 */
export function readPackageSettings(cwd: string): PackageSettings | undefined {
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    const file = join(dir, "package.json");
    const text = readIfPresent(file);
    if (text !== undefined) return parsePackageSettings(file, text);
    if (dirname(dir) === dir) return undefined;
  }
}

/**
 * The `"cachet"` field of `dir`'s own package.json (no search upwards): what a local source reads for its
 * `cacheKeys` and `alwaysRun`. Undefined when `dir` has no package.json or it has no `"cachet"` field; errors
 * as {@link readPackageSettings}.
 */
export function readPackageSettingsAt(dir: string): PackageSettings | undefined {
  const file = join(resolve(dir), "package.json");
  const text = readIfPresent(file);
  return text === undefined ? undefined : parsePackageSettings(file, text, "cachet.cacheKeys");
}

function readIfPresent(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

function parsePackageSettings(file: string, text: string, lookedFor?: string): PackageSettings | undefined {
  let manifest: unknown;
  try {
    manifest = JSON.parse(text);
  } catch (error) {
    throw new PackageJsonError(file, `invalid JSON: ${(error as Error).message}`, lookedFor);
  }
  if (typeof manifest !== "object" || manifest === null) return undefined;
  const settings = (manifest as { cachet?: unknown }).cachet;
  if (settings === undefined) return undefined;
  if (typeof settings !== "object" || settings === null || Array.isArray(settings)) {
    throw new SettingError(`${file} "cachet"`, settings, `an object of settings (${PACKAGE_FIELDS.join(", ")})`);
  }
  for (const [field, value] of Object.entries(settings)) {
    if (!(PACKAGE_FIELDS as readonly string[]).includes(field)) {
      throw new SettingError(`${file} "cachet.${field}"`, value, `one of the fields ${PACKAGE_FIELDS.join(", ")}`, "is not a cachet setting");
    }
  }
  const fields = settings as { cacheDir?: unknown; cacheKeys?: unknown; alwaysRun?: unknown; remote?: unknown };
  const { cacheDir, remote } = fields;
  if (cacheDir !== undefined && (typeof cacheDir !== "string" || cacheDir === "")) {
    throw new SettingError(`${file} "cachet.cacheDir"`, cacheDir, "a non-empty path string");
  }
  if (remote !== undefined && (typeof remote !== "string" || remote === "")) {
    throw new SettingError(`${file} "cachet.remote"`, "(not shown)", "a postgres:// URL string");
  }
  return {
    file,
    ...(cacheDir === undefined ? {} : { cacheDir: resolve(dirname(file), cacheDir as string) }),
    ...(fields.cacheKeys === undefined ? {} : { cacheKeys: validateCacheKeys(fields.cacheKeys, { file, field: "cachet.cacheKeys" }) }),
    ...(fields.alwaysRun === undefined ? {} : { alwaysRun: validateAlwaysRun(fields.alwaysRun, { file, field: "cachet.alwaysRun" }) }),
    ...(remote === undefined ? {} : { remote: remote as string }),
  };
}
