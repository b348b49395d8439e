import { SettingError } from "./errors.js";

const TRUE_WORDS: ReadonlySet<string> = new Set(["1", "true", "yes", "on"]);
const FALSE_WORDS: ReadonlySet<string> = new Set(["0", "false", "no", "off"]);

/** The accepted values of every boolean setting, as error messages and the help name them. */
export const BOOLEAN_ACCEPTED = "1, true, yes or on; 0, false, no or off (any case)";

/**
 * Reads a boolean setting: `1/true/yes/on` or `0/false/no/off`, in any case and with surrounding blanks.
 * Unset or empty is `undefined` (the default applies); any other word is a {@link SettingError}.
 */
export function parseBoolean(setting: string, raw: string | undefined): boolean | undefined {
  const word = booleanWord(raw);
  if (word === undefined) return undefined;
  if (TRUE_WORDS.has(word)) return true;
  if (FALSE_WORDS.has(word)) return false;
  throw new SettingError(setting, raw, BOOLEAN_ACCEPTED);
}

/** True when `raw` is one of the words that mean on. */
export function isTrueWord(raw: string | undefined): boolean {
  const word = booleanWord(raw);
  return word !== undefined && TRUE_WORDS.has(word);
}

/** True when `raw` is one of the words that mean off. */
export function isFalseWord(raw: string | undefined): boolean {
  const word = booleanWord(raw);
  return word !== undefined && FALSE_WORDS.has(word);
}

function booleanWord(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const word = raw.trim().toLowerCase();
  return word === "" ? undefined : word;
}
