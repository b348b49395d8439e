/**
 * The byte tags of cachet's value encoding, shared by the canonical (key) mode and the stored-result mode.
 * This table is a compatibility contract: see docs/value-encoding.md before changing anything here.
 */

/** Name and version of the stored-result format written by `serializeValue`. */
export const VALUE_FORMAT = "cachet-value/1";

/** First bytes of every `serializeValue` output: ASCII `cv`, then the format version byte. */
export const VALUE_MAGIC_0 = 0x63;
/** Second magic byte (ASCII `v`). */
export const VALUE_MAGIC_1 = 0x76;
/** Format version byte following the magic; bump with any incompatible change. */
export const VALUE_VERSION = 1;

/** `undefined`. */
export const TAG_UNDEFINED = 0x01;
/** `null`. */
export const TAG_NULL = 0x02;
/** `false`. */
export const TAG_FALSE = 0x03;
/** `true`. */
export const TAG_TRUE = 0x04;
/** A number that is an integer in the int32 range and not -0: zigzag varuint. */
export const TAG_INT = 0x05;
/** Any other number: IEEE 754 float64, little-endian; NaN always as 0x7FF8000000000000. */
export const TAG_FLOAT64 = 0x06;
/** BigInt: sign byte (0 or 1), varuint byte count, big-endian magnitude without leading zero bytes. */
export const TAG_BIGINT = 0x07;
/** A well-formed string: varuint byte count, UTF-8. */
export const TAG_STRING = 0x08;
/** A string with lone surrogates: varuint code-unit count, UTF-16LE code units. */
export const TAG_STRING16 = 0x09;
/** Array: varuint length, then one value per index, runs of holes written as one TAG_HOLES. */
export const TAG_ARRAY = 0x0a;
/** Inside an array only: varuint count (at least 1) of consecutive missing indexes. */
export const TAG_HOLES = 0x0b;
/** Plain object: varuint count, then (key as a string value, value) pairs. */
export const TAG_OBJECT = 0x0c;
/** Map: varuint count, then (key, value) pairs. */
export const TAG_MAP = 0x0d;
/** Set: varuint count, then the members. */
export const TAG_SET = 0x0e;
/** Date: float64 little-endian time value (NaN for an invalid Date). */
export const TAG_DATE = 0x0f;
/** RegExp: source and flags, each as a string value. */
export const TAG_REGEXP = 0x10;
/** Typed array, Buffer or DataView: kind byte (VIEW_KINDS), varuint byte count, the bytes (little-endian elements). */
export const TAG_VIEW = 0x11;
/** ArrayBuffer: varuint byte count, the bytes. */
export const TAG_ARRAYBUFFER = 0x12;
/** Canonical mode only — an object with a declared hash: constructor name as a string value, then the hash's value. */
export const TAG_HASHED = 0x13;

/** The element kinds of TAG_VIEW, in kind-byte order starting at 1. Index 0 is unused. */
export const VIEW_KINDS = [
  "",
  "Int8Array",
  "Uint8Array",
  "Uint8ClampedArray",
  "Int16Array",
  "Uint16Array",
  "Int32Array",
  "Uint32Array",
  "Float32Array",
  "Float64Array",
  "BigInt64Array",
  "BigUint64Array",
  "Buffer",
  "DataView",
] as const;

/** Kind byte of a Node Buffer in TAG_VIEW (distinct from a plain Uint8Array). */
export const VIEW_KIND_BUFFER = 12;
/** Kind byte of a DataView in TAG_VIEW. */
export const VIEW_KIND_DATAVIEW = 13;

/** Containers nested deeper than this are refused on encode and rejected on decode (keeps recursion off the stack limit). */
export const MAX_DEPTH = 1000;
