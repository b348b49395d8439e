import { Stream } from "node:stream";
import { UnhashableValueError, UnserializableValueError } from "./errors.js";
import { hashKey } from "./hash-key.js";
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
  VIEW_KIND_DATAVIEW,
} from "./value-tags.js";
import { ELEMENT_SIZE_BY_KIND, HOST_IS_BIG_ENDIAN, VIEW_KIND_BY_PROTOTYPE, swapElementBytes } from "./view-kinds.js";
import {
  SEG_HASHED,
  SEG_INDEX,
  SEG_KEY,
  SEG_MAP_KEY,
  SEG_MAP_VALUE,
  SEG_MEMBER,
  describeAt,
  isLiteralKey,
  renderPath,
} from "./value-path.js";

/** How the encoder orders and what it accepts; see docs/value-encoding.md. */
export type EncodeMode = "canonical" | "result";

const INITIAL_CAPACITY = 4096;
/** A buffer grown past this is dropped after use rather than kept by the shared encoder. */
const RETAINED_CAPACITY = 1 << 20;
/** Ancestors below this depth are checked for cycles by a linear scan; deeper ones also go in a Set. */
const SCAN_DEPTH = 32;
/** A run of holes longer than this is skipped by looking up the array's own indexes. */
const SPARSE_SCAN = 64;
/** Encodings shorter than this are hashed through cached views. */
const VIEW_CACHE_SIZE = 512;

const OBJECT_PROTOTYPE = Object.prototype;
const ARRAY_PROTOTYPE = Array.prototype;
const MAP_PROTOTYPE = Map.prototype;
const SET_PROTOTYPE = Set.prototype;
const DATE_PROTOTYPE = Date.prototype;
const REGEXP_PROTOTYPE = RegExp.prototype;
const ARRAYBUFFER_PROTOTYPE = ArrayBuffer.prototype;
const isWellFormed = (String.prototype as unknown as { isWellFormed(this: string): boolean }).isWellFormed;

/**
 * The one writer of cachet's tagged value encoding. In `canonical` mode (cache keys) object keys are sorted
 * and Map entries and Set members are ordered by their encoded bytes, and objects with a declared hash are
 * accepted; in `result` mode (stored results) insertion order is kept and only plain data is accepted.
 *
 * It writes into one growable buffer and records the path to the current node in parallel arrays, so
 * encoding a small value allocates next to nothing. An encoder is reusable but not re-entrant: see `acquireEncoder`.
 */
export class ValueEncoder {
  private buf: Buffer = Buffer.allocUnsafeSlow(INITIAL_CAPACITY);
  /** The same memory as `buf`, as a plain Uint8Array (its `slice` copies). */
  private bytes = new Uint8Array(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  private floats = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  /** Views of the first n bytes, by n, for hashing short encodings without allocating. */
  private views: Uint8Array[] = [];
  private pos = 0;
  private canonical = true;
  private label = "value";
  private prefix = "";
  /** The container being encoded at each depth (valid below the current depth). */
  private readonly ancestors: object[] = [];
  /** Path segment kind and value at each depth (see value-path.ts). */
  private readonly segKinds: number[] = [];
  private readonly segValues: unknown[] = [];
  private deepAncestors: Set<object> | null = null;
  private deepest = 0;
  /** True while an encode is running on this instance. */
  busy = false;

  /**
   * Encodes `value` after `header` bytes into the internal buffer and returns the byte count; read the bytes
   * with `view` or `copy` before the next call. Refusals throw UnhashableValueError (canonical mode) or
   * UnserializableValueError (result mode).
   */
  encode(value: unknown, mode: EncodeMode, label: string, prefix: string, header?: readonly number[]): number {
    this.busy = true;
    this.canonical = mode === "canonical";
    this.label = label;
    this.prefix = prefix;
    this.pos = 0;
    try {
      if (header) for (const byte of header) this.byte(byte);
      this.value(value, 0);
      return this.pos;
    } catch (error) {
      // Deep values on an already deep stack: say so rather than leak a RangeError.
      if (error instanceof RangeError && /call stack/i.test(error.message)) {
        throw this.refuse(0, "a value nested too deeply for the remaining call stack");
      }
      throw error;
    } finally {
      this.busy = false;
      if (this.deepest > 0) this.release();
    }
  }

  /** The first `length` bytes of the internal buffer, without copying (short views are cached). */
  view(length: number): Uint8Array {
    if (length >= VIEW_CACHE_SIZE) return new Uint8Array(this.buf.buffer, this.buf.byteOffset, length);
    return (this.views[length] ??= new Uint8Array(this.buf.buffer, this.buf.byteOffset, length));
  }

  /** A copy of the first `length` bytes of the internal buffer. */
  copy(length: number): Uint8Array {
    return this.bytes.slice(0, length);
  }

  /** Drops references kept from the last encode (ancestors, path values). */
  private release(): void {
    for (let d = 0; d < this.deepest; d++) {
      this.ancestors[d] = undefined as never;
      this.segValues[d] = undefined;
    }
    this.deepest = 0;
    this.deepAncestors = null;
  }

  /** Drops an oversized buffer once the caller is done with the bytes `encode` returned. */
  trim(): void {
    if (this.buf.length > RETAINED_CAPACITY) {
      this.pos = 0;
      this.resize(INITIAL_CAPACITY);
    }
  }

  // ---- bytes ---------------------------------------------------------------------------------------------

  private resize(capacity: number): void {
    const next = Buffer.allocUnsafeSlow(capacity);
    this.buf.copy(next, 0, 0, Math.min(this.pos, capacity));
    this.buf = next;
    this.bytes = new Uint8Array(next.buffer, next.byteOffset, next.byteLength);
    this.floats = new DataView(next.buffer, next.byteOffset, next.byteLength);
    this.views = [];
  }

  private ensure(extra: number): void {
    const needed = this.pos + extra;
    if (needed > this.buf.length) this.resize(Math.max(needed, this.buf.length * 2));
  }

  private byte(b: number): void {
    if (this.pos >= this.buf.length) this.ensure(1);
    this.buf[this.pos++] = b;
  }

  /** Unsigned LEB128, up to 2^53 - 1. */
  private varuint(n: number): void {
    this.ensure(8);
    const buf = this.buf;
    let p = this.pos;
    while (n > 0x7fffffff) {
      buf[p++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    while (n > 0x7f) {
      buf[p++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    buf[p++] = n;
    this.pos = p;
  }

  private float64(n: number): void {
    this.ensure(8);
    if (n !== n) {
      // One NaN: payload bits are not observable from JavaScript numbers.
      this.floats.setUint32(this.pos, 0, true);
      this.floats.setUint32(this.pos + 4, 0x7ff80000, true);
    } else {
      this.floats.setFloat64(this.pos, n, true);
    }
    this.pos += 8;
  }

  private raw(bytes: Uint8Array): void {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  // ---- leaves --------------------------------------------------------------------------------------------

  private number(n: number): void {
    if ((n | 0) === n && (n !== 0 || 1 / n > 0)) {
      this.ensure(6);
      this.buf[this.pos++] = TAG_INT;
      this.varuint(((n << 1) ^ (n >> 31)) >>> 0);
    } else {
      this.byte(TAG_FLOAT64);
      this.float64(n);
    }
  }

  private string(s: string): void {
    const n = s.length;
    if (n < 43) {
      // At most 126 UTF-8 bytes: the length fits one byte, so write straight after it.
      this.ensure(2 + n * 3);
      const buf = this.buf;
      const start = this.pos;
      let p = start + 2;
      for (let i = 0; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c < 0x80) {
          buf[p++] = c;
        } else if (c < 0x800) {
          buf[p++] = 0xc0 | (c >> 6);
          buf[p++] = 0x80 | (c & 0x3f);
        } else if (c < 0xd800 || c > 0xdfff) {
          buf[p++] = 0xe0 | (c >> 12);
          buf[p++] = 0x80 | ((c >> 6) & 0x3f);
          buf[p++] = 0x80 | (c & 0x3f);
        } else {
          const d = c <= 0xdbff && i + 1 < n ? s.charCodeAt(i + 1) : 0;
          if (d < 0xdc00 || d > 0xdfff) {
            this.string16(s);
            return;
          }
          const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          buf[p++] = 0xf0 | (cp >> 18);
          buf[p++] = 0x80 | ((cp >> 12) & 0x3f);
          buf[p++] = 0x80 | ((cp >> 6) & 0x3f);
          buf[p++] = 0x80 | (cp & 0x3f);
          i++;
        }
      }
      buf[start] = TAG_STRING;
      buf[start + 1] = p - start - 2;
      this.pos = p;
    } else if (isWellFormed.call(s)) {
      const length = Buffer.byteLength(s, "utf8");
      this.ensure(9 + length);
      this.buf[this.pos++] = TAG_STRING;
      this.varuint(length);
      this.pos += this.buf.write(s, this.pos, length, "utf8");
    } else {
      this.string16(s);
    }
  }

  /** Strings with lone surrogates have no UTF-8 form: their UTF-16 code units are written as they are. */
  private string16(s: string): void {
    const n = s.length;
    this.byte(TAG_STRING16);
    this.varuint(n);
    this.ensure(2 * n);
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      buf[p++] = c & 0xff;
      buf[p++] = c >> 8;
    }
    this.pos = p;
  }

  private bigint(n: bigint): void {
    const negative = n < 0n;
    let hex = n === 0n ? "" : (negative ? -n : n).toString(16);
    if (hex.length & 1) hex = "0" + hex;
    const length = hex.length >> 1;
    this.ensure(10 + length);
    this.buf[this.pos++] = TAG_BIGINT;
    this.buf[this.pos++] = negative ? 1 : 0;
    this.varuint(length);
    this.pos += this.buf.write(hex, this.pos, length, "hex");
  }

  private viewBytes(kind: number, view: ArrayBufferView): void {
    const length = view.byteLength;
    this.ensure(10 + length);
    this.buf[this.pos++] = TAG_VIEW;
    this.buf[this.pos++] = kind;
    this.varuint(length);
    const bytes = new Uint8Array(view.buffer, view.byteOffset, length);
    const at = this.pos;
    this.raw(bytes);
    const size = ELEMENT_SIZE_BY_KIND[kind]!;
    if (HOST_IS_BIG_ENDIAN && size > 1 && kind !== VIEW_KIND_DATAVIEW) {
      swapElementBytes(this.buf.subarray(at, this.pos), size);
    }
  }

  // ---- containers ----------------------------------------------------------------------------------------

  private value(v: unknown, depth: number): void {
    switch (typeof v) {
      case "string":
        this.string(v);
        return;
      case "number":
        this.number(v);
        return;
      case "boolean":
        this.byte(v ? TAG_TRUE : TAG_FALSE);
        return;
      case "undefined":
        this.byte(TAG_UNDEFINED);
        return;
      case "object":
        if (v === null) this.byte(TAG_NULL);
        else this.object(v, depth);
        return;
      case "bigint":
        this.bigint(v);
        return;
      case "function":
        throw this.refuse(depth, "a function");
      case "symbol":
        throw this.refuse(depth, "a symbol");
    }
  }

  private object(v: object, depth: number): void {
    const proto: unknown = Object.getPrototypeOf(v);
    if (proto === ARRAY_PROTOTYPE) {
      this.enter(v, depth);
      this.array(v as unknown[], depth);
      this.leave(v, depth);
    } else if (proto === OBJECT_PROTOTYPE || proto === null) {
      if (this.canonical && typeof (v as Partial<Record<symbol, unknown>>)[hashKey] === "function") {
        this.hashed(v, depth);
        return;
      }
      this.enter(v, depth);
      this.plainObject(v as Record<string, unknown>, depth);
      this.leave(v, depth);
    } else if (proto === MAP_PROTOTYPE) {
      this.enter(v, depth);
      this.map(v as Map<unknown, unknown>, depth);
      this.leave(v, depth);
    } else if (proto === SET_PROTOTYPE) {
      this.enter(v, depth);
      this.set(v as Set<unknown>, depth);
      this.leave(v, depth);
    } else if (proto === DATE_PROTOTYPE) {
      this.byte(TAG_DATE);
      this.float64((v as Date).getTime());
    } else if (proto === REGEXP_PROTOTYPE) {
      this.byte(TAG_REGEXP);
      this.string((v as RegExp).source);
      this.string((v as RegExp).flags);
    } else if (proto === ARRAYBUFFER_PROTOTYPE) {
      const bytes = new Uint8Array(v as ArrayBuffer);
      this.byte(TAG_ARRAYBUFFER);
      this.varuint(bytes.length);
      this.raw(bytes);
    } else {
      const kind = VIEW_KIND_BY_PROTOTYPE.get(proto as object);
      if (kind !== undefined) this.viewBytes(kind, v as ArrayBufferView);
      else if (this.canonical && typeof (v as Partial<Record<symbol, unknown>>)[hashKey] === "function") this.hashed(v, depth);
      else throw this.refuse(depth, this.describeUnsupported(v));
    }
  }

  /** Marks `v` as an ancestor of everything below `depth`, refusing it if it already is one (a cycle). */
  private enter(v: object, depth: number): void {
    if (depth >= MAX_DEPTH) throw this.refuse(depth, `a value nested more than ${MAX_DEPTH} levels deep`);
    const ancestors = this.ancestors;
    const scan = depth < SCAN_DEPTH ? depth : SCAN_DEPTH;
    for (let d = 0; d < scan; d++) if (ancestors[d] === v) throw this.cycle(depth, d);
    if (depth >= SCAN_DEPTH) {
      const deep = (this.deepAncestors ??= new Set());
      if (deep.has(v)) throw this.cycle(depth, ancestors.indexOf(v, SCAN_DEPTH));
      deep.add(v);
    }
    ancestors[depth] = v;
    if (depth >= this.deepest) this.deepest = depth + 1;
  }

  private leave(v: object, depth: number): void {
    if (depth >= SCAN_DEPTH) this.deepAncestors!.delete(v);
  }

  private array(a: unknown[], depth: number): void {
    const n = a.length;
    this.ensure(9);
    this.buf[this.pos++] = TAG_ARRAY;
    this.varuint(n);
    this.segKinds[depth] = SEG_INDEX;
    const segValues = this.segValues;
    const next = depth + 1;
    let indexes: number[] | null = null;
    for (let i = 0; i < n; ) {
      const item = a[i];
      if (item === undefined && !(i in a)) {
        let j = i + 1;
        while (j < n && a[j] === undefined && !(j in a)) {
          if (++j - i >= SPARSE_SCAN && j < n) {
            // A long gap (say `new Array(1e9)`): find the next element from the array's own keys instead.
            indexes ??= ownIndexes(a);
            j = nextIndex(indexes, j, n);
            break;
          }
        }
        this.byte(TAG_HOLES);
        this.varuint(j - i);
        i = j;
        continue;
      }
      segValues[depth] = i;
      this.value(item, next);
      i++;
    }
  }

  private plainObject(o: Record<string, unknown>, depth: number): void {
    const keys = Object.keys(o);
    const n = keys.length;
    if (this.canonical && n > 1) sortKeys(keys);
    this.ensure(9);
    this.buf[this.pos++] = TAG_OBJECT;
    this.varuint(n);
    this.segKinds[depth] = SEG_KEY;
    const segValues = this.segValues;
    const next = depth + 1;
    for (let i = 0; i < n; i++) {
      const key = keys[i]!;
      segValues[depth] = key;
      this.string(key);
      this.value(o[key], next);
    }
  }

  private map(m: Map<unknown, unknown>, depth: number): void {
    const n = m.size;
    this.byte(TAG_MAP);
    this.varuint(n);
    const sorting = this.canonical && n > 1;
    const start = this.pos;
    const ends = sorting ? new Array<number>(n) : null;
    const segKinds = this.segKinds;
    const segValues = this.segValues;
    const next = depth + 1;
    let i = 0;
    for (const [key, item] of m) {
      segKinds[depth] = SEG_MAP_KEY;
      segValues[depth] = i;
      this.value(key, next);
      if (isLiteralKey(key)) {
        segKinds[depth] = SEG_MAP_VALUE;
        segValues[depth] = key;
      } else {
        segKinds[depth] = SEG_MEMBER;
      }
      this.value(item, next);
      if (ends) ends[i] = this.pos;
      i++;
    }
    if (ends) this.sortRegions(start, ends);
  }

  private set(s: Set<unknown>, depth: number): void {
    const n = s.size;
    this.byte(TAG_SET);
    this.varuint(n);
    const sorting = this.canonical && n > 1;
    const start = this.pos;
    const ends = sorting ? new Array<number>(n) : null;
    this.segKinds[depth] = SEG_MEMBER;
    const segValues = this.segValues;
    const next = depth + 1;
    let i = 0;
    for (const member of s) {
      segValues[depth] = i;
      this.value(member, next);
      if (ends) ends[i] = this.pos;
      i++;
    }
    if (ends) this.sortRegions(start, ends);
  }

  /** Reorders the consecutive encoded regions [start, ends[0]), [ends[0], ends[1]), … by their bytes. */
  private sortRegions(start: number, ends: number[]): void {
    const copy = Buffer.from(this.buf.subarray(start, this.pos));
    const count = ends.length;
    const order = new Array<number>(count);
    const begins = new Array<number>(count);
    let begin = 0;
    for (let i = 0; i < count; i++) {
      order[i] = i;
      begins[i] = begin;
      begin = ends[i] = ends[i]! - start;
    }
    order.sort((a, b) => copy.compare(copy, begins[b], ends[b], begins[a], ends[a]!));
    let p = start;
    for (const i of order) p += copy.copy(this.buf, p, begins[i], ends[i]);
  }

  private hashed(v: object, depth: number): void {
    this.enter(v, depth);
    const declared = (v as Record<symbol, () => unknown>)[hashKey]!;
    const result: unknown = declared.call(v);
    this.byte(TAG_HASHED);
    this.string(constructorName(v));
    this.segKinds[depth] = SEG_HASHED;
    this.value(result, depth + 1);
    this.leave(v, depth);
  }

  // ---- refusals ------------------------------------------------------------------------------------------

  private describeUnsupported(v: object): string {
    const name = constructorName(v) || "an anonymous class";
    const record = v as Record<string, unknown>;
    if (v instanceof Promise) return "a promise — await it first";
    if (typeof record.then === "function") return `a thenable (an instance of ${name} with a then method) — await it first`;
    if (
      v instanceof Stream ||
      typeof record.pipe === "function" ||
      (typeof ReadableStream === "function" && v instanceof ReadableStream) ||
      (typeof WritableStream === "function" && v instanceof WritableStream) ||
      (typeof TransformStream === "function" && v instanceof TransformStream)
    ) {
      return `a stream (an instance of ${name})`;
    }
    if (v instanceof WeakMap || v instanceof WeakSet || v instanceof WeakRef) return `a ${name} (its contents cannot be listed)`;
    if (!this.canonical) return `an instance of ${name} — return plain data (objects, arrays, Maps, …) instead`;
    return `an instance of ${name} — ignore the input or give its type a hash`;
  }

  private pathAt(depth: number): string {
    return renderPath(this.prefix, this.segKinds, this.segValues, depth);
  }

  private refuse(depth: number, what: string): Error {
    const path = this.pathAt(depth);
    const verb = this.canonical ? "cannot hash" : "cannot store";
    const message = describeAt(this.label, path, `${verb} ${what}`);
    return this.canonical ? new UnhashableValueError(message, path) : new UnserializableValueError(message, path);
  }

  private cycle(depth: number, ancestorDepth: number): Error {
    const target = this.pathAt(ancestorDepth);
    return this.refuse(depth, `a cycle (it refers back to ${target === "" ? `the ${this.label} itself` : `"${target}"`})`);
  }
}

/** The indexes of an array's elements, ascending. */
function ownIndexes(a: unknown[]): number[] {
  const indexes: number[] = [];
  for (const key of Object.keys(a)) {
    const index = Number(key);
    if (String(index >>> 0) === key && index !== 0xffffffff) indexes.push(index);
  }
  return indexes.sort((x, y) => x - y);
}

/** The first index in `indexes` at or after `from`, or `end` if none is before it. */
function nextIndex(indexes: number[], from: number, end: number): number {
  let lo = 0;
  let hi = indexes.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (indexes[mid]! < from) lo = mid + 1;
    else hi = mid;
  }
  return lo < indexes.length && indexes[lo]! < end ? indexes[lo]! : end;
}

/** Sorts object keys by UTF-16 code units; insertion sort for the usual handful, else the built-in sort. */
function sortKeys(keys: string[]): void {
  const n = keys.length;
  if (n > 12) {
    keys.sort();
    return;
  }
  for (let i = 1; i < n; i++) {
    const key = keys[i]!;
    let j = i - 1;
    while (j >= 0 && keys[j]! > key) {
      keys[j + 1] = keys[j]!;
      j--;
    }
    keys[j + 1] = key;
  }
}

/** The name of an object's constructor as a declared hash records it (`Object` for a null prototype, `""` if unnamed). */
export function constructorName(v: object): string {
  const proto: unknown = Object.getPrototypeOf(v);
  if (proto === null) return "Object";
  const ctor = (proto as { constructor?: unknown }).constructor;
  const name = typeof ctor === "function" ? (ctor as { name?: unknown }).name : undefined;
  return typeof name === "string" ? name : "";
}

let shared: ValueEncoder | null = null;

/**
 * The shared encoder, or a fresh one if it is in use (a declared hash or a getter that hashes while being
 * hashed). Call `encoder.trim()` once done with the returned bytes.
 */
export function acquireEncoder(): ValueEncoder {
  if (shared === null) shared = new ValueEncoder();
  return shared.busy ? new ValueEncoder() : shared;
}
