import { ValueDecodeError } from "./errors.js";
import { ValueDecoder } from "./value-decoder.js";
import { acquireEncoder } from "./value-encoder.js";
import { VALUE_MAGIC_0, VALUE_MAGIC_1, VALUE_VERSION } from "./value-tags.js";

export { VALUE_FORMAT } from "./value-tags.js";

const HEADER = [VALUE_MAGIC_0, VALUE_MAGIC_1, VALUE_VERSION] as const;

/** Where a stored value comes from, for error messages: `result "rows[2].conn": cannot store …`. */
export interface SerializeOptions {
  /** What the value is; default `result`. */
  label?: string;
  /** The value's own path; paths found inside it are appended. Default empty. */
  path?: string;
}

/**
 * Encodes a task result as `cachet-value/1` bytes (a `cv\x01` header, then the tagged value in insertion
 * order) that `deserializeValue` turns back into an equal value: plain objects, arrays with holes, strings,
 * numbers (-0, NaN, ±Infinity), BigInts, booleans, null, undefined, Dates, Maps, Sets, RegExps, ArrayBuffers,
 * DataViews, every typed array and Buffers. Shared references are written once per occurrence, so they come
 * back as separate copies. Throws UnserializableValueError naming the path to anything else (functions,
 * symbols, promises, streams, class instances — with or without a declared hash — and cycles).
 */
export function serializeValue(value: unknown, options?: SerializeOptions): Uint8Array {
  const encoder = acquireEncoder();
  try {
    return encoder.copy(encoder.encode(value, "result", options?.label ?? "result", options?.path ?? "", HEADER));
  } finally {
    encoder.trim();
  }
}

/**
 * Decodes bytes written by `serializeValue`. Truncated bytes, trailing bytes, unknown tags, a wrong header or
 * a newer format version throw ValueDecodeError; no partial or garbage value is ever returned.
 */
export function deserializeValue(bytes: Uint8Array): unknown {
  if (bytes.length < 3 || bytes[0] !== VALUE_MAGIC_0 || bytes[1] !== VALUE_MAGIC_1) {
    throw new ValueDecodeError("cannot decode a stored value: it does not start with the cachet-value header", 0);
  }
  if (bytes[2] !== VALUE_VERSION) {
    const newer = bytes[2]! > VALUE_VERSION;
    throw new ValueDecodeError(
      `cannot decode a stored value: format version ${bytes[2]} ${newer ? "is newer than this cachet reads" : "is unknown"} (reads ${VALUE_VERSION})`,
      2,
    );
  }
  const decoder = new ValueDecoder(bytes, 3, bytes.length);
  try {
    return decoder.readWhole();
  } catch (error) {
    if (error instanceof ValueDecodeError) throw error;
    // A stack or allocation limit hit by hostile bytes (e.g. a BigInt too large): still a decode failure.
    const reason = error instanceof Error ? error.message : String(error);
    throw new ValueDecodeError(`cannot decode a stored value: ${reason} (at byte ${decoder.offset})`, decoder.offset, { cause: error });
  }
}
