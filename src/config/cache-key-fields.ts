import { SettingError } from "./errors.js";

/**
 * One cache key of a local directory (package.json `"cachet": { "cacheKeys": [...] }`, `cachet run --key`):
 * - a path or glob string, or `{ file }`: the matched files' contents (and owner-execute bit) and relative paths;
 * - `{ dir }`: only whether that directory exists;
 * - `{ git: true }` (the HEAD commit) or `{ git: { commit?, tags? } }`: read from `.git` without running git;
 * - `{ env }`: an environment variable's value (unset and empty differ).
 */
export type CacheKeySpec =
  | string
  | { file: string }
  | { dir: string }
  | { git: true | { commit?: boolean; tags?: boolean } }
  | { env: string };

const SPEC_FORMS = 'a path or glob string, {"file": PATH}, {"dir": PATH}, {"git": true}, {"git": {"commit": true, "tags": true}} or {"env": NAME}';

/** Where a value was found: a field path, shown after its file (`/p/package.json "cachet.cacheKeys[2].git"`). */
export interface FieldPlace {
  /** The file, or undefined for a value from the command line. */
  file?: string | undefined;
  /** The field's path (`cachet.cacheKeys[2]`), or the flag (`--key`). */
  field: string;
}

function named(place: FieldPlace, suffix = ""): string {
  return place.file === undefined ? `${place.field}${suffix}` : `${place.file} "${place.field}${suffix}"`;
}

/**
 * `value` as a {@link CacheKeySpec}, checked; `place` names it in the error (`…/package.json "cachet.cacheKeys[2]"`).
 * A wrong shape is a {@link SettingError} that lists the accepted forms.
 */
export function validateCacheKeySpec(value: unknown, place: FieldPlace): CacheKeySpec {
  const where = named(place);
  const at = (suffix: string) => named(place, suffix);
  if (typeof value === "string") {
    if (value.trim() === "") throw new SettingError(where, value, SPEC_FORMS, "is an empty path");
    checkPath(value, where);
    return value;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new SettingError(where, value, SPEC_FORMS);
  const fields = Object.keys(value);
  if (fields.length !== 1) throw new SettingError(where, value, SPEC_FORMS, "must have exactly one field");
  const [field] = fields as [string];
  const inner = (value as Record<string, unknown>)[field];
  switch (field) {
    case "file":
    case "dir":
      if (typeof inner !== "string" || inner.trim() === "") throw new SettingError(at(`.${field}`), inner, "a non-empty relative path");
      checkPath(inner, at(`.${field}`));
      return field === "file" ? { file: inner } : { dir: inner };
    case "env":
      if (typeof inner !== "string" || !/^[^=\0]+$/.test(inner)) throw new SettingError(at(".env"), inner, "an environment variable name");
      return { env: inner };
    case "git": {
      if (inner === true) return { git: true };
      if (typeof inner !== "object" || inner === null || Array.isArray(inner)) {
        throw new SettingError(at(".git"), inner, 'true or {"commit": true, "tags": true}');
      }
      const git: { commit?: boolean; tags?: boolean } = {};
      for (const [name, flag] of Object.entries(inner)) {
        if (name !== "commit" && name !== "tags") throw new SettingError(at(`.git.${name}`), flag, "one of the fields commit, tags", "is not a git key");
        if (typeof flag !== "boolean") throw new SettingError(at(`.git.${name}`), flag, "true or false");
        git[name] = flag;
      }
      if (!git.commit && !git.tags) throw new SettingError(at(".git"), inner, 'at least one of "commit": true, "tags": true', "keys nothing");
      return { git };
    }
    default:
      throw new SettingError(at(`.${field}`), inner, SPEC_FORMS, "is not a cache key form");
  }
}

/** Keys must not depend on where the files are, so absolute paths are refused (relative ones may use `..`). */
function checkPath(path: string, where: string): void {
  if (path.startsWith("/") || /^[A-Za-z]:[\\/]/.test(path) || path.startsWith("\\")) {
    throw new SettingError(where, path, "a path relative to the directory (keys must not depend on where it is)", "is absolute");
  }
}

/** A package.json's `"cachet.cacheKeys"`, checked: an array of {@link CacheKeySpec}. */
export function validateCacheKeys(value: unknown, place: FieldPlace): CacheKeySpec[] {
  if (!Array.isArray(value)) throw new SettingError(named(place), value, `an array of cache keys (${SPEC_FORMS})`);
  return value.map((item, index) => validateCacheKeySpec(item, { ...place, field: `${place.field}[${index}]` }));
}

/** A package.json's `"cachet.alwaysRun"`, checked: an array of non-empty entry names. */
export function validateAlwaysRun(value: unknown, place: FieldPlace): string[] {
  if (!Array.isArray(value)) throw new SettingError(named(place), value, "an array of entry names");
  return value.map((item, index) => {
    if (typeof item !== "string" || item.trim() === "") throw new SettingError(named(place, `[${index}]`), item, "a non-empty entry name");
    return item;
  });
}
