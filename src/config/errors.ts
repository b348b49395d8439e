import { CachetError } from "../errors.js";

/**
 * A setting (an environment variable, a flag, an option or a package.json `"cachet"` field) whose value cachet
 * does not understand. One line that names the setting, the value and the accepted values:
 * `CACHET_NO_CACHE="maybe" is not valid: expected 1, true, yes or on (on), 0, false, no or off (off)`.
 */
export class SettingError extends CachetError {
  readonly code = "CACHET_BAD_SETTING";
  constructor(
    readonly setting: string,
    readonly value: unknown,
    readonly accepted: string,
    readonly problem = "is not valid",
  ) {
    super(`${setting}=${JSON.stringify(value) ?? String(value)} ${problem}: expected ${accepted}`);
  }
}

/** A package.json on the way to the cache root that cannot be read as JSON. */
export class PackageJsonError extends CachetError {
  readonly code = "CACHET_BAD_SETTING";
  constructor(readonly file: string, reason: string, lookedFor = "cachet.cacheDir") {
    super(`cannot read ${file} (looked for "${lookedFor}"): ${reason}`);
  }
}
