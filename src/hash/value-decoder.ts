import { ValueDecodeError } from "./errors.js";
import {
  MAX_DEPTH,
  TAG_ARRAY,
  TAG_ARRAYBUFFER,
  TAG_BIGINT,
  TAG_DATE,
  TAG_FALSE,
  TAG_FLOAT64,
  TAG_HASHED,
  TAG_HOLES,
  TAG_INT,
  TAG_MAP,
  TAG_NULL,
  TAG_OBJECT,
  TAG_REGEXP,
  TAG_SET,
  TAG_STRING,
  TAG_STRING16,
  TAG_TRUE,
  TAG_UNDEFINED,
  TAG_VIEW,
  VIEW_KIND_BUFFER,
  VIEW_KIND_DATAVIEW,
} from "./value-tags.js";
import { ELEMENT_SIZE_BY_KIND, HOST_IS_BIG_ENDIAN, TYPED_ARRAY_BY_KIND, swapElementBytes } from "./view-kinds.js";

const MAX_ARRAY_LENGTH = 0xffffffff;
/** Scratch memory for reading float64s without a DataView per decode. */
const FLOAT = new Float64Array(1);
const FLOAT_BYTES = new Uint8Array(FLOAT.buffer);
/** ASCII strings up to this many bytes are decoded in JavaScript and cached. */
const SHORT_STRING = 24;
const STRING_CACHE_SIZE = 256;
const STRING_CACHE: string[] = new Array<string>(STRING_CACHE_SIZE).fill("\u0000".repeat(SHORT_STRING + 1));

/**
 * Reads one value of cachet's tagged encoding (result mode) from `bytes[start, end)`. Every read is bounds-
 * checked; anything malformed throws ValueDecodeError with the offset, never a RangeError or a partial value.
 */
export class ValueDecoder {
  private pos: number;
  /** Made on first use: most small values do not need it. */
  private buffer: Buffer | null = null;

  constructor(
    private readonly bytes: Uint8Array,
    start: number,
    private readonly end: number,
  ) {
    this.pos = start;
  }

  /** The input as a Buffer, for its UTF-8, UTF-16 and hex decoders. */
  private get text(): Buffer {
    return (this.buffer ??= Buffer.from(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength));
  }

  /** Decodes the single value that must fill the rest of the bytes. */
  readWhole(): unknown {
    const value = this.value(0);
    if (this.pos !== this.end) this.fail(`${this.end - this.pos} trailing bytes after the value`);
    return value;
  }

  /** Current read offset. */
  get offset(): number {
    return this.pos;
  }

  /** Throws the decode error for `problem` at the current offset (or `at`). */
  fail(problem: string, at = this.pos): never {
    throw new ValueDecodeError(`cannot decode a stored value: ${problem} (at byte ${at})`, at);
  }

  private need(n: number): void {
    if (n > this.end - this.pos) this.fail(`truncated: ${n} more bytes expected, ${this.end - this.pos} left`);
  }

  private byte(): number {
    if (this.pos >= this.end) this.fail("truncated: a tag or byte expected");
    return this.bytes[this.pos++]!;
  }

  /** Unsigned LEB128 up to 2^53 - 1. */
  private varuint(): number {
    const bytes = this.bytes;
    let p = this.pos;
    if (p < this.end) {
      const b = bytes[p]!;
      if (b < 0x80) {
        this.pos = p + 1;
        return b;
      }
    }
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      if (p >= this.end) this.fail("truncated inside a length");
      const b = bytes[p++]!;
      result += (b & 0x7f) * scale;
      if (b < 0x80) {
        if (result > Number.MAX_SAFE_INTEGER) break;
        this.pos = p;
        return result;
      }
      scale *= 0x80;
    }
    return this.fail("a length larger than 2^53 - 1");
  }

  private float64(): number {
    this.need(8);
    const bytes = this.bytes;
    const p = this.pos;
    if (HOST_IS_BIG_ENDIAN) for (let i = 0; i < 8; i++) FLOAT_BYTES[7 - i] = bytes[p + i]!;
    else for (let i = 0; i < 8; i++) FLOAT_BYTES[i] = bytes[p + i]!;
    this.pos = p + 8;
    return FLOAT[0]!;
  }

  private utf8(): string {
    const n = this.varuint();
    this.need(n);
    const bytes = this.bytes;
    const start = this.pos;
    this.pos = start + n;
    if (n <= SHORT_STRING) {
      // Short ASCII strings (most keys) come from a small cache of recent ones, else are built here:
      // both cheaper than a call into the runtime, and a cached key is already internalized.
      let hash = n;
      let i = 0;
      for (; i < n; i++) {
        const b = bytes[start + i]!;
        if (b >= 0x80) break;
        hash = (hash * 31 + b) | 0;
      }
      if (i === n) {
        const slot = hash & (STRING_CACHE_SIZE - 1);
        const cached = STRING_CACHE[slot]!;
        if (cached.length === n) {
          let same = true;
          for (let j = 0; j < n; j++) {
            if (cached.charCodeAt(j) !== bytes[start + j]) {
              same = false;
              break;
            }
          }
          if (same) return cached;
        }
        let s = "";
        for (let j = 0; j < n; j++) s += String.fromCharCode(bytes[start + j]!);
        STRING_CACHE[slot] = s;
        return s;
      }
    }
    return this.text.toString("utf8", start, start + n);
  }

  private utf16(): string {
    const n = this.varuint();
    if (n > (this.end - this.pos) / 2) this.fail(`truncated: ${n} UTF-16 code units expected`);
    const start = this.pos;
    this.pos = start + 2 * n;
    return this.text.toString("utf16le", start, start + 2 * n);
  }

  private string(what: string): string {
    const at = this.pos;
    const tag = this.byte();
    if (tag === TAG_STRING) return this.utf8();
    if (tag === TAG_STRING16) return this.utf16();
    return this.fail(`${what} is not a string (tag 0x${tag.toString(16)})`, at);
  }

  private copyBytes(n: number): ArrayBuffer {
    this.need(n);
    const copy = new ArrayBuffer(n);
    new Uint8Array(copy).set(this.bytes.subarray(this.pos, this.pos + n));
    this.pos += n;
    return copy;
  }

  private value(depth: number): unknown {
    const at = this.pos;
    const tag = this.byte();
    switch (tag) {
      case TAG_STRING:
        return this.utf8();
      case TAG_INT: {
        const z = this.varuint();
        if (z > 0xffffffff) this.fail("an integer out of the int32 range", at);
        return (z >>> 1) ^ -(z & 1);
      }
      case TAG_FLOAT64:
        return this.float64();
      case TAG_TRUE:
        return true;
      case TAG_FALSE:
        return false;
      case TAG_NULL:
        return null;
      case TAG_UNDEFINED:
        return undefined;
      case TAG_OBJECT:
        return this.object(depth, at);
      case TAG_ARRAY:
        return this.array(depth, at);
      case TAG_STRING16:
        return this.utf16();
      case TAG_BIGINT:
        return this.bigint(at);
      case TAG_MAP:
        return this.map(depth, at);
      case TAG_SET:
        return this.set(depth, at);
      case TAG_DATE:
        return new Date(this.float64());
      case TAG_REGEXP:
        return this.regexp(at);
      case TAG_VIEW:
        return this.arrayView(at);
      case TAG_ARRAYBUFFER:
        return this.copyBytes(this.varuint());
      case TAG_HOLES:
        return this.fail("array holes outside an array", at);
      case TAG_HASHED:
        return this.fail("a declared-hash value (that tag only appears in cache keys)", at);
      default:
        return this.fail(`unknown tag 0x${tag.toString(16).padStart(2, "0")}`, at);
    }
  }

  private enter(depth: number, at: number): void {
    if (depth >= MAX_DEPTH) this.fail(`containers nested more than ${MAX_DEPTH} levels deep`, at);
  }

  private object(depth: number, at: number): Record<string, unknown> {
    this.enter(depth, at);
    const n = this.varuint();
    const o: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) {
      const key = this.string("an object key");
      const item = this.value(depth + 1);
      if (key === "__proto__") Object.defineProperty(o, key, { value: item, enumerable: true, writable: true, configurable: true });
      else o[key] = item;
    }
    return o;
  }

  private array(depth: number, at: number): unknown[] {
    this.enter(depth, at);
    const n = this.varuint();
    if (n > MAX_ARRAY_LENGTH) this.fail(`an array length of ${n}`, at);
    const a = new Array<unknown>(n);
    for (let i = 0; i < n; ) {
      if (this.pos < this.end && this.bytes[this.pos] === TAG_HOLES) {
        const holesAt = this.pos++;
        const holes = this.varuint();
        if (holes === 0 || holes > n - i) this.fail(`a run of ${holes} holes in an array with ${n - i} slots left`, holesAt);
        i += holes;
      } else {
        a[i++] = this.value(depth + 1);
      }
    }
    return a;
  }

  private map(depth: number, at: number): Map<unknown, unknown> {
    this.enter(depth, at);
    const n = this.varuint();
    const m = new Map<unknown, unknown>();
    for (let i = 0; i < n; i++) {
      const key = this.value(depth + 1);
      m.set(key, this.value(depth + 1));
    }
    return m;
  }

  private set(depth: number, at: number): Set<unknown> {
    this.enter(depth, at);
    const n = this.varuint();
    const s = new Set<unknown>();
    for (let i = 0; i < n; i++) s.add(this.value(depth + 1));
    return s;
  }

  private bigint(at: number): bigint {
    const sign = this.byte();
    if (sign > 1) this.fail(`a BigInt sign byte of ${sign}`, at);
    const n = this.varuint();
    this.need(n);
    const start = this.pos;
    this.pos += n;
    let magnitude: bigint;
    if (n <= 6) {
      let m = 0;
      for (let i = 0; i < n; i++) m = m * 256 + this.bytes[start + i]!;
      magnitude = BigInt(m);
    } else {
      magnitude = BigInt(`0x${this.text.toString("hex", start, start + n)}`);
    }
    return sign === 1 ? -magnitude : magnitude;
  }

  private regexp(at: number): RegExp {
    const source = this.string("a RegExp source");
    const flags = this.string("RegExp flags");
    try {
      return new RegExp(source, flags);
    } catch {
      return this.fail(`an invalid RegExp /${source}/${flags}`, at);
    }
  }

  private arrayView(at: number): ArrayBufferView {
    const kind = this.byte();
    if (kind === 0 || kind > VIEW_KIND_DATAVIEW) this.fail(`unknown typed array kind ${kind}`, at);
    const length = this.varuint();
    const size = ELEMENT_SIZE_BY_KIND[kind]!;
    if (length % size !== 0) this.fail(`${length} bytes is not a whole number of ${size}-byte elements`, at);
    if (kind === VIEW_KIND_BUFFER) {
      this.need(length);
      const buffer = Buffer.allocUnsafe(length);
      buffer.set(this.bytes.subarray(this.pos, this.pos + length));
      this.pos += length;
      return buffer;
    }
    const copy = this.copyBytes(length);
    if (kind === VIEW_KIND_DATAVIEW) return new DataView(copy);
    if (HOST_IS_BIG_ENDIAN && size > 1) swapElementBytes(new Uint8Array(copy), size);
    return new TYPED_ARRAY_BY_KIND[kind]!(copy);
  }
}
