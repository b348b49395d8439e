import { InvalidEntryKeyError, InvalidEntryNameError } from "./errors.js";

const MAX_NAME_LENGTH = 255;

/**
 * Refuses names that could escape the cache root or confuse a listing: empty, `.`/`..`, path separators,
 * NUL and other control characters, or longer than 255 characters. Names never become paths today, but they
 * are shown, typed on command lines and may key directories in later buckets, so the rule is strict now.
 */
export function assertValidName(name: unknown): asserts name is string {
  if (typeof name !== "string") throw new InvalidEntryNameError(String(name), `expected a string, got ${typeof name}`);
  if (name.length === 0) throw new InvalidEntryNameError(name, "it is empty");
  if (name === "." || name === "..") throw new InvalidEntryNameError(name, "it is a relative path component");
  if (/[/\\]/.test(name)) throw new InvalidEntryNameError(name, "it contains a path separator");
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) throw new InvalidEntryNameError(name, "it contains a NUL or control character");
  if (name.length > MAX_NAME_LENGTH) throw new InvalidEntryNameError(name, `it is longer than ${MAX_NAME_LENGTH} characters`);
  if (!isWellFormed(name)) throw new InvalidEntryNameError(name, LONE_SURROGATE);
}

/** Keys are opaque non-empty strings (a task key is a sha256 hex; a source key is a URL or commit). */
export function assertValidKey(key: unknown): asserts key is string {
  if (typeof key !== "string") throw new InvalidEntryKeyError(`expected a string, got ${typeof key}`);
  if (key.length === 0) throw new InvalidEntryKeyError("it is empty");
  if (!isWellFormed(key)) throw new InvalidEntryKeyError(LONE_SURROGATE);
}

/**
 * A string with half of a UTF-16 surrogate pair (a key cut through an emoji) has no UTF-8 form: the index would
 * store U+FFFD in its place and never find it again under the same key.
 */
const LONE_SURROGATE = "it contains half of a UTF-16 surrogate pair (a string cut through a character), which has no UTF-8 form";

function isWellFormed(text: string): boolean {
  // eslint-disable-next-line no-control-regex
  return !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(text);
}
