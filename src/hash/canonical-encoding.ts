import { createHash } from "node:crypto";
import { acquireEncoder } from "./value-encoder.js";

/** Where a hashed value comes from, for error messages: `input "client.agent": cannot hash …`. */
export interface HashOptions {
  /** What the value is, e.g. `input`; default `value`. */
  label?: string;
  /** The value's own path, e.g. `client`; paths found inside it are appended. Default empty. */
  path?: string;
}

/**
 * The canonical, type-tagged encoding of `value` used for cache keys (docs/value-encoding.md): equal values
 * give equal bytes whatever their object key, Map or Set insertion order; values of different types or
 * shapes give different bytes. Throws UnhashableValueError naming the path to a function, symbol, promise,
 * stream, Weak collection, class instance without a declared hash (`hashKey`), or cycle.
 */
export function encodeCanonical(value: unknown, options?: HashOptions): Uint8Array {
  const encoder = acquireEncoder();
  try {
    const length = encoder.encode(value, "canonical", options?.label ?? "value", options?.path ?? "");
    return encoder.copy(length);
  } finally {
    encoder.trim();
  }
}

/** sha256 hex of `encodeCanonical(value, options)`: the digest of a value as cache keys use it. */
export function hashValue(value: unknown, options?: HashOptions): string {
  const encoder = acquireEncoder();
  try {
    const length = encoder.encode(value, "canonical", options?.label ?? "value", options?.path ?? "");
    return createHash("sha256").update(encoder.view(length)).digest("hex");
  } finally {
    encoder.trim();
  }
}
