import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { PackageJsonError, SettingError } from "./errors.js";

/** The fields a package.json `"cachet"` object may hold. */
export const PACKAGE_FIELDS = ["cacheDir", "remote"] as const;

/** The `"cachet"` field of a package.json, validated. */
export interface PackageSettings {
  /** The package.json it came from. */
  readonly file: string;
  /** `"cacheDir"`, resolved against the folder of {@link file}. */
  readonly cacheDir?: string | undefined;
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

function readIfPresent(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

function parsePackageSettings(file: string, text: string): PackageSettings | undefined {
  let manifest: unknown;
  try {
    manifest = JSON.parse(text);
  } catch (error) {
    throw new PackageJsonError(file, `invalid JSON: ${(error as Error).message}`);
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
  const remote = (settings as { remote?: unknown }).remote;
  if (remote !== undefined && (typeof remote !== "string" || remote === "")) {
    throw new SettingError(`${file} "cachet.remote"`, "(not shown)", "a postgres:// URL string");
  }
  const cacheDir = (settings as { cacheDir?: unknown }).cacheDir;
  if (cacheDir === undefined) return remote === undefined ? { file } : { file, remote };
  if (typeof cacheDir !== "string" || cacheDir === "") {
    throw new SettingError(`${file} "cachet.cacheDir"`, cacheDir, "a non-empty path string");
  }
  return { file, cacheDir: resolve(dirname(file), cacheDir), ...(remote === undefined ? {} : { remote }) };
}
