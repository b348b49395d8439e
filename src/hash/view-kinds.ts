import { VIEW_KIND_BUFFER, VIEW_KIND_DATAVIEW } from "./value-tags.js";

/** A constructor of one of the typed array kinds the value encoding knows. */
type TypedArrayConstructor = new (buffer: ArrayBuffer) => ArrayBufferView;

/** Typed array constructors by kind byte (1‥11); Buffer (12) and DataView (13) are handled apart. */
export const TYPED_ARRAY_BY_KIND: readonly (TypedArrayConstructor | undefined)[] = [
  undefined,
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
];

/** Bytes per element by kind byte (1 for Buffer and DataView: any byte count is valid). */
export const ELEMENT_SIZE_BY_KIND: readonly number[] = [0, 1, 1, 1, 2, 2, 4, 4, 4, 8, 8, 8, 1, 1];

/** Kind byte by exact prototype; a subclass (other than Buffer) is not a known view kind. */
export const VIEW_KIND_BY_PROTOTYPE: ReadonlyMap<object, number> = new Map<object, number>([
  ...TYPED_ARRAY_BY_KIND.flatMap((ctor, kind) => (ctor ? [[ctor.prototype as object, kind] as const] : [])),
  [Buffer.prototype, VIEW_KIND_BUFFER],
  [DataView.prototype, VIEW_KIND_DATAVIEW],
]);

/** True on the rare big-endian hosts, where multi-byte elements are swapped to the encoding's little-endian. */
export const HOST_IS_BIG_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 0;

/** Reverses each `size`-byte group of `bytes` in place (little-endian ⇄ host order on big-endian hosts). */
export function swapElementBytes(bytes: Uint8Array, size: number): void {
  for (let at = 0; at + size <= bytes.length; at += size) {
    for (let i = 0, j = size - 1; i < j; i++, j--) {
      const b = bytes[at + i]!;
      bytes[at + i] = bytes[at + j]!;
      bytes[at + j] = b;
    }
  }
}
