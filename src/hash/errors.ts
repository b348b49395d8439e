import { CachetError } from "../errors.js";

/**
 * A value given to be hashed (a task input, a key part) contains something that has no stable canonical
 * encoding: a function, symbol, promise, stream, WeakMap, class instance without a declared hash, or a cycle.
 * `path` is where it sits (`client.agent`, empty for the value itself); the message names it.
 */
export class UnhashableValueError extends CachetError {
  readonly code = "CACHET_UNHASHABLE";

  constructor(
    message: string,
    /** Where the refused value sits inside the hashed value, e.g. `client.agent` (empty: the value itself). */
    readonly path: string,
  ) {
    super(message);
  }
}

/**
 * A value given to be stored (a task result) contains something the value codec cannot write and read back:
 * the unhashable kinds, class instances (even ones with a declared hash), or a cycle. The message names `path`.
 */
export class UnserializableValueError extends CachetError {
  readonly code = "CACHET_UNSERIALIZABLE";

  constructor(
    message: string,
    /** Where the refused value sits inside the stored value, e.g. `rows[3].conn` (empty: the value itself). */
    readonly path: string,
  ) {
    super(message);
  }
}

/**
 * Bytes given to `deserializeValue` are not a whole, well-formed `cachet-value/1` encoding (truncated,
 * trailing bytes, unknown tag, bad header, newer format). Nothing is returned from such bytes.
 */
export class ValueDecodeError extends CachetError {
  readonly code = "CACHET_DECODE";

  constructor(
    message: string,
    /** Byte offset at which decoding failed. */
    readonly offset: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * A directory tree being hashed contains an entry that is not a regular file, a directory or a symlink
 * (a socket, FIFO or device), or a path given to `hashFile` is not a regular file. `path` names it.
 */
export class UnsupportedFileTypeError extends CachetError {
  readonly code = "CACHET_UNSUPPORTED_FILE";

  constructor(
    message: string,
    /** The offending entry, as the caller spelled the root joined with its relative path. */
    readonly path: string,
  ) {
    super(message);
  }
}
