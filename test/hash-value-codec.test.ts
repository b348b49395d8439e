import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  UnserializableValueError,
  VALUE_FORMAT,
  ValueDecodeError,
  deserializeValue,
  hashKey,
  serializeValue,
} from "../src/hash/index.js";

const roundTrip = (value: unknown): unknown => deserializeValue(serializeValue(value));
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex");

// ---- a rich arbitrary over everything the codec stores ---------------------------------------------------------

/** Any UTF-16 code unit, lone surrogates included. */
const anyString = fc.oneof(
  fc.string({ unit: "binary", maxLength: 12 }),
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 12 }),
  fc.string({ unit: "grapheme", minLength: 40, maxLength: 80 }),
  fc.string({ maxLength: 30 }),
);

const views = fc.oneof(
  fc.int8Array({ maxLength: 8 }),
  fc.uint8Array({ maxLength: 8 }),
  fc.uint8ClampedArray({ maxLength: 8 }),
  fc.int16Array({ maxLength: 8 }),
  fc.uint16Array({ maxLength: 8 }),
  fc.int32Array({ maxLength: 8 }),
  fc.uint32Array({ maxLength: 8 }),
  fc.float32Array({ maxLength: 8 }),
  fc.float64Array({ maxLength: 8 }),
  fc.bigInt64Array({ maxLength: 4 }),
  fc.bigUint64Array({ maxLength: 4 }),
  fc.uint8Array({ maxLength: 8 }).map((b) => Buffer.from(b)),
  fc.uint8Array({ maxLength: 8 }).map((b) => new DataView(b.buffer)),
  fc.uint8Array({ maxLength: 8 }).map((b) => b.buffer),
  // A view into the middle of a larger buffer.
  fc.uint8Array({ minLength: 4, maxLength: 12 }).map((b) => new Uint16Array(b.buffer, 2, (b.length - 2) >> 1)),
);

const leaf = fc.oneof(
  fc.constantFrom<unknown>(undefined, null, true, false, 0, -0, NaN, Infinity, -Infinity, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, 2 ** 53),
  fc.double(),
  fc.integer(),
  fc.bigInt(),
  fc.bigInt({ min: -(2n ** 300n), max: 2n ** 300n }),
  anyString,
  fc.date({ noInvalidDate: false }),
  fc.constantFrom(/a/, /a+b*/gi, /[\u{1F600}]/u, /^x$/ms, /y/dy, new RegExp("[\\p{L}--[a-z]]", "v")).map((r) => new RegExp(r.source, r.flags)),
  views,
);

const keyArb = fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom("__proto__", "constructor", "10", "2", "-1", "1.5", "", "\uD800"));

const { value: valueArb } = fc.letrec((tie) => ({
  value: fc.oneof({ maxDepth: 4, depthSize: "small" }, leaf, tie("array"), tie("sparse"), tie("object"), tie("map"), tie("set")),
  array: fc.array(tie("value"), { maxLength: 5 }),
  sparse: fc.sparseArray(tie("value"), { maxLength: 8 }),
  object: fc.dictionary(keyArb, tie("value"), { maxKeys: 5, noNullPrototype: true }),
  map: fc.array(fc.tuple(tie("value"), tie("value")), { maxLength: 4 }).map((entries) => new Map(entries)),
  set: fc.array(tie("value"), { maxLength: 4 }).map((members) => new Set(members)),
}));

/** Checks what deepStrictEqual does not: object key order, Map and Set order, holes, -0/NaN, Buffer-ness. */
function assertSameShape(actual: unknown, expected: unknown, path = "value"): void {
  if (typeof expected !== "object" || expected === null) {
    assert.ok(Object.is(actual, expected), `${path}: ${String(actual)} is not ${String(expected)}`);
    return;
  }
  assert.equal(Object.getPrototypeOf(actual), Object.getPrototypeOf(expected), `${path}: prototype differs`);
  if (expected instanceof Date) {
    assert.ok(Object.is((actual as Date).getTime(), expected.getTime()), `${path}: ${String(actual)} is not ${String(expected)}`);
  } else if (expected instanceof Map) {
    const a = [...(actual as Map<unknown, unknown>)];
    const e = [...expected];
    assert.equal(a.length, e.length, `${path}: Map size`);
    e.forEach(([k, v], i) => {
      assertSameShape(a[i]![0], k, `${path}.keys()[${i}]`);
      assertSameShape(a[i]![1], v, `${path}.values()[${i}]`);
    });
  } else if (expected instanceof Set) {
    const a = [...(actual as Set<unknown>)];
    const e = [...expected];
    assert.equal(a.length, e.length, `${path}: Set size`);
    e.forEach((v, i) => assertSameShape(a[i], v, `${path}.values()[${i}]`));
  } else if (Array.isArray(expected)) {
    const a = actual as unknown[];
    assert.equal(a.length, expected.length, `${path}: length`);
    for (let i = 0; i < expected.length; i++) {
      assert.equal(i in a, i in expected, `${path}[${i}]: hole`);
      assertSameShape(a[i], expected[i], `${path}[${i}]`);
    }
  } else if (Object.getPrototypeOf(expected) === Object.prototype) {
    assert.deepEqual(Object.keys(actual as object), Object.keys(expected), `${path}: key order`);
    for (const k of Object.keys(expected)) {
      assertSameShape((actual as Record<string, unknown>)[k], (expected as Record<string, unknown>)[k], `${path}.${k}`);
    }
  } else if (ArrayBuffer.isView(expected)) {
    const a = actual as ArrayBufferView;
    assert.ok(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength)), `${path}: bytes`);
  }
}

/** Whether `value` holds an invalid Date, which Node 20's deepStrictEqual never finds equal to another. */
function holdsInvalidDate(value: unknown): boolean {
  if (value instanceof Date) return Number.isNaN(value.getTime());
  if (value instanceof Map) return [...value].some(([k, v]) => holdsInvalidDate(k) || holdsInvalidDate(v));
  if (value instanceof Set || Array.isArray(value)) return [...value].some(holdsInvalidDate);
  if (typeof value === "object" && value !== null && Object.getPrototypeOf(value) === Object.prototype) return Object.values(value).some(holdsInvalidDate);
  return false;
}

describe("serializeValue / deserializeValue: round trip", () => {
  it("an invalid Date, alone or inside a Set of arrays, comes back invalid (the property's shrunk counterexample)", () => {
    const value = new Set([[new Date(NaN)]]);
    const back = deserializeValue(serializeValue(value));
    assertSameShape(back, value);
    assert.ok(Number.isNaN(([...(back as Set<Date[]>)][0]![0]!).getTime()));
  });
  it("returns an equal value, with the same orders, for anything it stores (property)", () => {
    fc.assert(
      fc.property(valueArb, (value) => {
        const bytes = serializeValue(value);
        const back = deserializeValue(bytes);
        if (!holdsInvalidDate(value)) assert.deepStrictEqual(back, value);
        assertSameShape(back, value);
        // Insertion order is part of the encoding, so re-encoding gives the very same bytes.
        assert.equal(hex(serializeValue(back)), hex(bytes));
      }),
      { numRuns: 2000 },
    );
  });

  it("keeps -0, NaN, ±Infinity and int32 boundaries", () => {
    const numbers = [-0, 0, NaN, Infinity, -Infinity, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, -(2 ** 31) - 1, 0.1, Number.MIN_VALUE, Number.MAX_VALUE, 2 ** 53 + 2];
    const back = roundTrip(numbers) as number[];
    numbers.forEach((n, i) => assert.ok(Object.is(back[i], n), `${n}`));
    assert.ok(Object.is(roundTrip(-0), -0));
  });

  it("keeps BigInts of any size and sign", () => {
    for (const n of [0n, 1n, -1n, 255n, 256n, -(2n ** 48n), 2n ** 48n - 1n, 2n ** 64n, -(3n ** 400n)]) assert.equal(roundTrip(n), n);
  });

  it("keeps Buffers as Buffers and typed arrays as their own kind", () => {
    const back = roundTrip({ buf: Buffer.from("hi"), u8: new Uint8Array([1]), c: new Uint8ClampedArray([300]), b: new BigInt64Array([-5n]), f: new Float32Array([0.1]) }) as Record<string, unknown>;
    assert.ok(Buffer.isBuffer(back.buf));
    assert.equal((back.buf as Buffer).toString(), "hi");
    assert.ok(!Buffer.isBuffer(back.u8) && back.u8 instanceof Uint8Array);
    assert.ok(back.c instanceof Uint8ClampedArray);
    assert.deepStrictEqual(back.b, new BigInt64Array([-5n]));
    assert.deepStrictEqual(back.f, new Float32Array([0.1]));
  });

  it("copies only the bytes of a view, not its whole underlying buffer", () => {
    const back = roundTrip(new Uint8Array([9, 1, 2, 9]).subarray(1, 3)) as Uint8Array;
    assert.deepStrictEqual(back, new Uint8Array([1, 2]));
    assert.equal(back.buffer.byteLength, 2);
  });

  it("keeps object key order (including integer-like keys) and a __proto__ own key", () => {
    const value = JSON.parse('{"z": 1, "__proto__": {"x": 1}, "a": 2, "10": 3, "2": 4}') as Record<string, unknown>;
    const back = roundTrip(value) as Record<string, unknown>;
    assert.deepEqual(Object.keys(back), ["2", "10", "z", "__proto__", "a"]);
    assert.equal(Object.getPrototypeOf(back), Object.prototype);
    assert.deepStrictEqual(Object.getOwnPropertyDescriptor(back, "__proto__")?.value, { x: 1 });
  });

  it("keeps Map and Set insertion order", () => {
    const back = roundTrip({ m: new Map([["b", 1], ["a", 2]]), s: new Set([3, 1, 2]) }) as { m: Map<string, number>; s: Set<number> };
    assert.deepEqual([...back.m.keys()], ["b", "a"]);
    assert.deepEqual([...back.s], [3, 1, 2]);
  });

  it("keeps holes apart from undefined, and very sparse arrays", () => {
    const sparse: unknown[] = [];
    sparse[1_000_000] = "end";
    const back = roundTrip([[, undefined, ,], sparse]) as unknown[][];
    assert.equal(0 in back[0]!, false);
    assert.equal(1 in back[0]!, true);
    assert.equal(back[0]!.length, 3);
    assert.equal(back[1]!.length, 1_000_001);
    assert.equal(back[1]![1_000_000], "end");
    assert.ok(serializeValue(sparse).length < 20);
  });

  it("keeps strings with lone surrogates and long non-ASCII strings", () => {
    for (const s of ["\uD800", "a\uDC00b", "\uDBFF\uDFFF", "é".repeat(1000), "x\uD800".repeat(50), "😀".repeat(21), ""]) assert.equal(roundTrip(s), s);
  });

  it("keeps Dates (also invalid), RegExps and DataViews", () => {
    const back = roundTrip([new Date(8.64e15), new Date(NaN), /a\/b/gimsuy, new DataView(new Uint8Array([1, 2, 3]).buffer, 1)]) as unknown[];
    assert.equal((back[0] as Date).getTime(), 8.64e15);
    assert.ok(Number.isNaN((back[1] as Date).getTime()));
    assert.equal(String(back[2]), "/a\\/b/gimsuy");
    assert.deepStrictEqual(back[3], new DataView(new Uint8Array([2, 3]).buffer));
  });

  it("duplicates shared references on decode", () => {
    const shared = { x: 1 };
    const back = roundTrip([shared, shared]) as object[];
    assert.deepStrictEqual(back[0], back[1]);
    assert.notEqual(back[0], back[1]);
  });

  it("starts with the format header", () => {
    assert.equal(VALUE_FORMAT, "cachet-value/1");
    assert.equal(hex(serializeValue(null)), "63760102");
    assert.equal(hex(serializeValue({ b: 1, a: "x" })), "637601" + "0c02" + "080162" + "0502" + "080161" + "080178");
  });

  it("round-trips containers nested up to the depth limit", () => {
    let deep: unknown = "bottom";
    for (let i = 0; i < 1000; i++) deep = i % 2 ? [deep] : { d: deep };
    assert.deepStrictEqual(roundTrip(deep), deep);
  });
});

describe("serializeValue: refusals name the path", () => {
  const refused = (value: unknown, message: string): void => {
    assert.throws(
      () => serializeValue(value),
      (error: unknown) => {
        assert.ok(error instanceof UnserializableValueError);
        assert.equal(error.code, "CACHET_UNSERIALIZABLE");
        assert.equal(error.message, message);
        return true;
      },
    );
  };

  it("refuses functions, symbols, promises and class instances", () => {
    refused({ a: { b: () => 1 } }, 'result "a.b": cannot store a function');
    refused([Symbol()], 'result "[0]": cannot store a symbol');
    refused({ p: Promise.resolve() }, 'result "p": cannot store a promise — await it first');
    refused(new Map([["k", new (class Agent {})()]]), 'result "get("k")": cannot store an instance of Agent — return plain data (objects, arrays, Maps, …) instead');
    refused(new Error("x"), "result: cannot store an instance of Error — return plain data (objects, arrays, Maps, …) instead");
  });

  it("refuses instances even when their type declares a hash", () => {
    class Url {
      [hashKey](): string {
        return "u";
      }
    }
    refused({ u: new Url() }, 'result "u": cannot store an instance of Url — return plain data (objects, arrays, Maps, …) instead');
  });

  it("refuses cycles", () => {
    const a: Record<string, unknown> = {};
    a.self = new Set([a]);
    refused({ a }, 'result "a.self.values()[0]": cannot store a cycle (it refers back to "a")');
  });

  it("uses the caller's label and path", () => {
    assert.throws(() => serializeValue({ f() {} }, { label: "output", path: "rows[3]" }), { message: 'output "rows[3].f": cannot store a function' });
  });

  it("refuses values nested deeper than the decoder accepts", () => {
    let deep: unknown = 1;
    for (let i = 0; i < 1001; i++) deep = [deep];
    assert.throws(() => serializeValue(deep), UnserializableValueError);
  });
});

describe("deserializeValue: malformed bytes", () => {
  const valid = serializeValue({ a: [1, 2.5, "three", 4n, null], m: new Map([[1, new Date(0)]]), b: Buffer.from("xyz"), h: [, 1] });

  const decodeError = (bytes: Uint8Array, pattern?: RegExp): void => {
    assert.throws(
      () => deserializeValue(bytes),
      (error: unknown) => {
        assert.ok(error instanceof ValueDecodeError, `expected ValueDecodeError, got ${String(error)}`);
        assert.equal(error.code, "CACHET_DECODE");
        if (pattern) assert.match(error.message, pattern);
        return true;
      },
    );
  };

  it("rejects every truncation", () => {
    for (let n = 0; n < valid.length; n++) decodeError(valid.subarray(0, n));
  });

  it("rejects trailing bytes", () => {
    decodeError(Buffer.concat([valid, Buffer.from([0x02])]), /1 trailing bytes after the value/);
  });

  it("rejects a wrong header and a newer format version", () => {
    decodeError(Buffer.from("{}"), /header/);
    decodeError(Buffer.from([0x63, 0x76, 0x02, 0x02]), /format version 2 is newer/);
  });

  it("rejects unknown and out-of-place tags", () => {
    decodeError(Buffer.from([0x63, 0x76, 0x01, 0x7f]), /unknown tag 0x7f \(at byte 3\)/);
    decodeError(Buffer.from([0x63, 0x76, 0x01, 0x00]), /unknown tag 0x00/);
    decodeError(Buffer.from([0x63, 0x76, 0x01, 0x0b, 0x01]), /holes outside an array/);
    decodeError(Buffer.from([0x63, 0x76, 0x01, 0x13, 0x08, 0x00, 0x02]), /declared-hash/);
    decodeError(Buffer.from([0x63, 0x76, 0x01, 0x0c, 0x01, 0x05, 0x00, 0x02]), /an object key is not a string/);
  });

  it("rejects lengths that point past the end instead of allocating them", () => {
    decodeError(Buffer.from([0x63, 0x76, 0x01, 0x08, 0xff, 0xff, 0xff, 0xff, 0x0f]), /truncated/);
    decodeError(Buffer.from([0x63, 0x76, 0x01, 0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]), /truncated/);
    decodeError(Buffer.from([0x63, 0x76, 0x01, 0x0a, 0xff, 0xff, 0xff, 0xff, 0x7f]), /array length/);
    decodeError(Buffer.from([0x63, 0x76, 0x01, 0x11, 0x09, 0x03, 1, 2, 3]), /whole number of 8-byte elements/);
    decodeError(Buffer.from([0x63, 0x76, 0x01, 0x11, 0x0e, 0x00]), /typed array kind 14/);
    decodeError(Buffer.from([0x63, 0x76, 0x01, 0x0a, 0x02, 0x0b, 0x03]), /run of 3 holes/);
    decodeError(Buffer.from([0x63, 0x76, 0x01, 0x05, 0xff, 0xff, 0xff, 0xff, 0x7f]), /int32/);
    decodeError(Buffer.from([0x63, 0x76, 0x01, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]), /2\^53/);
  });

  it("rejects an invalid RegExp and a bad BigInt sign", () => {
    decodeError(Buffer.from([0x63, 0x76, 0x01, 0x10, 0x08, 0x01, 0x28, 0x08, 0x00]), /invalid RegExp/);
    decodeError(Buffer.from([0x63, 0x76, 0x01, 0x07, 0x02, 0x00]), /sign/);
  });

  it("rejects nesting deeper than the limit without overflowing the stack", () => {
    const bytes = Buffer.concat([Buffer.from([0x63, 0x76, 0x01]), Buffer.alloc(200_000, Buffer.from([0x0a, 0x01])), Buffer.from([0x02])]);
    decodeError(bytes, /nested more than 1000 levels/);
  });

  it("never throws anything but ValueDecodeError on any truncation or single-byte corruption (property)", () => {
    const encoded = valueArb.map((value) => serializeValue(value)).filter((bytes) => bytes.length > 3);
    fc.assert(
      fc.property(encoded, fc.nat(), fc.nat(), fc.integer({ min: 1, max: 255 }), (bytes, cut, at, xor) => {
        const truncated = bytes.subarray(0, cut % bytes.length);
        assert.throws(() => deserializeValue(truncated), ValueDecodeError);
        const corrupted = Uint8Array.from(bytes);
        corrupted[at % bytes.length]! ^= xor;
        try {
          deserializeValue(corrupted);
        } catch (error) {
          assert.ok(error instanceof ValueDecodeError, `corruption raised ${String(error)}`);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it("never throws anything but ValueDecodeError on random bytes after a valid header (property)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (body) => {
        try {
          deserializeValue(Buffer.concat([Buffer.from([0x63, 0x76, 0x01]), body]));
        } catch (error) {
          assert.ok(error instanceof ValueDecodeError, `random bytes raised ${String(error)}`);
        }
      }),
      { numRuns: 5000 },
    );
  });
});
