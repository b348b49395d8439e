import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { describe, it } from "node:test";
import fc from "fast-check";
import { UnhashableValueError, encodeCanonical, hashKey, hashValue, sha256Hex } from "../src/hash/index.js";

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex");
const sameKey = (a: unknown, b: unknown): boolean => hex(encodeCanonical(a)) === hex(encodeCanonical(b));

// ---- a model of canonical equality, written independently of the encoder -------------------------------------

class Alpha {
  constructor(readonly payload: unknown) {}
  [hashKey](): unknown {
    return this.payload;
  }
}
class Beta {
  constructor(readonly payload: unknown) {}
  [hashKey](): unknown {
    return this.payload;
  }
}

const VIEW_PROTOTYPES = new Map<object, string>([
  [Int8Array.prototype, "Int8Array"],
  [Uint8Array.prototype, "Uint8Array"],
  [Uint8ClampedArray.prototype, "Uint8ClampedArray"],
  [Int16Array.prototype, "Int16Array"],
  [Uint16Array.prototype, "Uint16Array"],
  [Int32Array.prototype, "Int32Array"],
  [Uint32Array.prototype, "Uint32Array"],
  [Float32Array.prototype, "Float32Array"],
  [Float64Array.prototype, "Float64Array"],
  [BigInt64Array.prototype, "BigInt64Array"],
  [BigUint64Array.prototype, "BigUint64Array"],
  [Buffer.prototype, "Buffer"],
  [DataView.prototype, "DataView"],
]);

function kindOf(v: object): string {
  const proto: unknown = Object.getPrototypeOf(v);
  if (proto === Array.prototype) return "array";
  if (proto === Map.prototype) return "map";
  if (proto === Set.prototype) return "set";
  if (proto === Date.prototype) return "date";
  if (proto === RegExp.prototype) return "regexp";
  if (proto === ArrayBuffer.prototype) return "arraybuffer";
  const view = VIEW_PROTOTYPES.get(proto as object);
  if (view) return `view:${view}`;
  if (typeof (v as Record<symbol, unknown>)[hashKey] === "function") return "hashed";
  if (proto === Object.prototype || proto === null) return "object";
  return "unsupported";
}

function viewBytes(v: ArrayBufferView | ArrayBuffer): Buffer {
  return ArrayBuffer.isView(v) ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : Buffer.from(v);
}

/** Multiset equality under `eq` (an equivalence relation, so greedy matching is exact). */
function sameMultiset<T>(a: T[], b: T[], eq: (x: T, y: T) => boolean): boolean {
  if (a.length !== b.length) return false;
  const used = new Array<boolean>(b.length).fill(false);
  return a.every((x) => {
    const j = b.findIndex((y, k) => !used[k] && eq(x, y));
    if (j < 0) return false;
    used[j] = true;
    return true;
  });
}

function canonicalEqual(a: unknown, b: unknown): boolean {
  if (typeof a !== typeof b) return false;
  if (typeof a === "number") return Object.is(a, b);
  if (typeof a !== "object" || a === null || b === null) return a === b;
  const x = a as Record<PropertyKey, unknown>;
  const y = b as Record<PropertyKey, unknown>;
  const kind = kindOf(x);
  if (kind !== kindOf(y)) return false;
  switch (kind) {
    case "array": {
      const p = x as unknown as unknown[];
      const q = y as unknown as unknown[];
      if (p.length !== q.length) return false;
      for (let i = 0; i < p.length; i++) {
        if (i in p !== i in q) return false;
        if (i in p && !canonicalEqual(p[i], q[i])) return false;
      }
      return true;
    }
    case "object": {
      const keys = Object.keys(x).sort();
      const other = Object.keys(y).sort();
      return keys.length === other.length && keys.every((k, i) => k === other[i] && canonicalEqual(x[k], y[k]));
    }
    case "map":
      return sameMultiset([...(x as unknown as Map<unknown, unknown>)], [...(y as unknown as Map<unknown, unknown>)], (e, f) =>
        canonicalEqual(e[0], f[0]) && canonicalEqual(e[1], f[1]),
      );
    case "set":
      return sameMultiset([...(x as unknown as Set<unknown>)], [...(y as unknown as Set<unknown>)], canonicalEqual);
    case "date":
      return Object.is((x as unknown as Date).getTime(), (y as unknown as Date).getTime());
    case "regexp":
      return (x as unknown as RegExp).source === (y as unknown as RegExp).source && (x as unknown as RegExp).flags === (y as unknown as RegExp).flags;
    case "hashed":
      return (
        Object.getPrototypeOf(x).constructor.name === Object.getPrototypeOf(y).constructor.name &&
        canonicalEqual((x as unknown as Alpha)[hashKey](), (y as unknown as Alpha)[hashKey]())
      );
    default:
      return viewBytes(x as unknown as ArrayBuffer).equals(viewBytes(y as unknown as ArrayBuffer));
  }
}

// ---- deep clones with every order shuffled --------------------------------------------------------------------

function shuffled<T>(items: T[], random: () => number): T[] {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

function seeded(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
}

/** A structurally equal copy: object keys, Map entries and Set members reinserted in a random order, views moved. */
function reordered(v: unknown, random: () => number): unknown {
  if (typeof v !== "object" || v === null) return v;
  const kind = kindOf(v);
  switch (kind) {
    case "array": {
      const a = v as unknown[];
      const out = new Array<unknown>(a.length);
      for (let i = 0; i < a.length; i++) if (i in a) out[i] = reordered(a[i], random);
      return out;
    }
    case "object": {
      const o = v as Record<string, unknown>;
      const out: Record<string, unknown> = random() < 0.2 ? Object.create(null) : {};
      for (const k of shuffled(Object.keys(o), random)) {
        Object.defineProperty(out, k, { value: reordered(o[k], random), enumerable: true, writable: true, configurable: true });
      }
      return out;
    }
    case "map":
      return new Map(shuffled([...(v as Map<unknown, unknown>)], random).map(([k, x]) => [reordered(k, random), reordered(x, random)]));
    case "set":
      return new Set(shuffled([...(v as Set<unknown>)], random).map((x) => reordered(x, random)));
    case "date":
      return new Date((v as Date).getTime());
    case "regexp":
      return new RegExp((v as RegExp).source, (v as RegExp).flags);
    case "hashed":
      return new (v.constructor as typeof Alpha)(reordered((v as Alpha).payload, random));
    case "arraybuffer":
      return (v as ArrayBuffer).slice(0);
    default: {
      // Same bytes at a different offset of a bigger buffer.
      const view = v as ArrayBufferView;
      const host = new ArrayBuffer(view.byteLength + 8);
      new Uint8Array(host, 8).set(viewBytes(view));
      if (kind === "view:Buffer") return Buffer.from(host, 8, view.byteLength);
      if (kind === "view:DataView") return new DataView(host, 8, view.byteLength);
      const Ctor = view.constructor as new (b: ArrayBuffer, o: number, n: number) => ArrayBufferView;
      return new Ctor(host, 8, view.byteLength / (view as Uint8Array).BYTES_PER_ELEMENT);
    }
  }
}

// ---- arbitraries: small domains, so that equal and nearly-equal values are frequent -------------------------

const bytesArb = fc.uint8Array({ maxLength: 4 }).map((b) => b.filter((_, i) => i < 4));
const leaf = fc.oneof(
  fc.constantFrom<unknown>(undefined, null, true, false, 0, -0, 1, -1, 1.5, NaN, Infinity, 2 ** 31, -(2 ** 31), -(2 ** 31) - 1),
  fc.constantFrom<unknown>(0n, 1n, -1n, 2n ** 64n, -(2n ** 64n)),
  fc.constantFrom<unknown>("", "a", "b", "ab", "1", "é", "\u{1F600}", "\uD800", "\uDC00a", "x".repeat(50)),
  fc.constantFrom(0, 1, NaN).map((t) => new Date(t)),
  fc.constantFrom(/a/, /a/g, /b/).map((r) => new RegExp(r.source, r.flags)),
  fc.tuple(fc.constantFrom("u8", "i8", "buf", "dv", "ab", "u16", "f64"), bytesArb).map(([kind, b]): unknown => {
    switch (kind) {
      case "u8":
        return new Uint8Array(b);
      case "i8":
        return new Int8Array(b.buffer);
      case "buf":
        return Buffer.from(b);
      case "dv":
        return new DataView(b.buffer);
      case "u16":
        return new Uint16Array(b.buffer.slice(0, b.length & ~1));
      case "f64":
        return new Float64Array([b.length]);
      default:
        return b.buffer;
    }
  }),
);
const keyArb = fc.constantFrom("a", "b", "10", "9", "", "odd key", "__proto__");

const { value: valueArb } = fc.letrec((tie) => ({
  value: fc.oneof(
    { maxDepth: 3, depthSize: "small" },
    leaf,
    tie("array"),
    tie("sparse"),
    tie("object"),
    tie("map"),
    tie("set"),
    tie("hashed"),
  ),
  array: fc.array(tie("value"), { maxLength: 3 }),
  sparse: fc.sparseArray(tie("value"), { maxLength: 4 }),
  object: fc.dictionary(keyArb, tie("value"), { maxKeys: 3, noNullPrototype: true }),
  map: fc.array(fc.tuple(tie("value"), tie("value")), { maxLength: 3 }).map((entries) => new Map(entries)),
  set: fc.array(tie("value"), { maxLength: 3 }).map((members) => new Set(members)),
  hashed: fc.tuple(fc.boolean(), tie("value")).map(([alpha, payload]) => (alpha ? new Alpha(payload) : new Beta(payload))),
}));

// ---- tests -----------------------------------------------------------------------------------------------------

describe("encodeCanonical: equal values, equal keys", () => {
  it("ignores object key, Map entry and Set member insertion order (property)", () => {
    fc.assert(
      fc.property(valueArb, fc.integer(), (value, seed) => {
        const copy = reordered(value, seeded(seed));
        assert.equal(hex(encodeCanonical(copy)), hex(encodeCanonical(value)));
        assert.equal(hashValue(copy), hashValue(value));
      }),
      { numRuns: 500 },
    );
  });

  it("ignores key order in a literal example, at every depth", () => {
    const a = { b: 1, a: { y: [1, { q: 1, p: 2 }], x: new Map([["k", 1], ["j", 2]]) }, s: new Set(["z", "y"]) };
    const b = { s: new Set(["y", "z"]), a: { x: new Map([["j", 2], ["k", 1]]), y: [1, { p: 2, q: 1 }] }, b: 1 };
    assert.equal(hashValue(a), hashValue(b));
  });

  it("treats null-prototype objects as plain objects", () => {
    const bare = Object.assign(Object.create(null) as object, { a: 1 });
    assert.equal(hashValue(bare), hashValue({ a: 1 }));
  });

  it("accepts a shared (non-cyclic) reference appearing twice", () => {
    const shared = { x: [1] };
    assert.equal(hashValue({ a: shared, b: shared, c: [shared, shared] }), hashValue({ a: { x: [1] }, b: { x: [1] }, c: [{ x: [1] }, { x: [1] }] }));
  });

  it("hashes huge sparse arrays by their elements and gaps, without visiting every index", () => {
    const a: unknown[] = new Array(2 ** 32 - 1);
    a[3_000_000_000] = "x";
    a[5] = 1;
    const b: unknown[] = [];
    b[5] = 1;
    b[3_000_000_000] = "x";
    b.length = 2 ** 32 - 1;
    // Count the index reads (get and `in`) the encoder makes, instead of timing it: walking the gaps index by
    // index would take billions of them. Past the budget the trap throws, so such an encoder fails at once.
    const budget = 10_000;
    let indexReads = 0;
    const counted = (target: unknown[]): unknown[] => {
      const count = (key: string | symbol): void => {
        if (typeof key === "string" && /^\d+$/.test(key) && ++indexReads > budget) {
          throw new Error(`the encoder read more than ${budget} indexes of a 2-element sparse array`);
        }
      };
      return new Proxy(target, {
        get: (t, key, receiver) => (count(key), Reflect.get(t, key, receiver)),
        has: (t, key) => (count(key), Reflect.has(t, key)),
      });
    };
    assert.equal(hex(encodeCanonical(counted(a))), "0affffffff0f0b0505020bfabbc1960b080178" + "0bfec3bee904");
    assert.ok(indexReads > 0, "the proxy saw the encoder's reads");
    indexReads = 0;
    assert.equal(hashValue(counted(a)), hashValue(counted(b)));
    assert.equal(hashValue(counted(a)), hashValue(a));
  });

  it("hashes a typed array by its own bytes, not the whole underlying buffer", () => {
    const big = new Uint8Array([9, 1, 2, 3, 9]);
    assert.ok(sameKey(big.subarray(1, 4), new Uint8Array([1, 2, 3])));
    assert.ok(sameKey(Buffer.from("xhello").subarray(1), Buffer.from("hello")));
  });
});

describe("encodeCanonical: distinct values, distinct keys", () => {
  const distinctPairs: [string, unknown, unknown][] = [
    ["0 / -0", 0, -0],
    ["null / undefined", null, undefined],
    ["1 / 1n", 1, 1n],
    ['1 / "1"', 1, "1"],
    ["1 / true", 1, true],
    ['1n / "1"', 1n, "1"],
    ['true / "true"', true, "true"],
    ["Date / its number", new Date(5), 5],
    ["invalid Date / NaN", new Date(NaN), NaN],
    ["invalid Date / Date(0)", new Date(NaN), new Date(0)],
    ["[undefined] / [hole]", [undefined], [,]],
    ["{a: undefined} / {}", { a: undefined }, {}],
    ["Buffer / Uint8Array", Buffer.from([1, 2]), new Uint8Array([1, 2])],
    ["Uint8Array / Int8Array", new Uint8Array([1, 2]), new Int8Array([1, 2])],
    ["Uint8Array / Uint8ClampedArray", new Uint8Array([1]), new Uint8ClampedArray([1])],
    ["Uint8Array / ArrayBuffer", new Uint8Array([1, 2]), new Uint8Array([1, 2]).buffer],
    ["Uint8Array / DataView", new Uint8Array([1, 2]), new DataView(new Uint8Array([1, 2]).buffer)],
    ['["ab","c"] / ["a","bc"]', ["ab", "c"], ["a", "bc"]],
    ['{ab: "c"} / {a: "bc"}', { ab: "c" }, { a: "bc" }],
    ["[] / {}", [], {}],
    ["Map / object", new Map([["a", 1]]), { a: 1 }],
    ["Set / array", new Set([1]), [1]],
    ["Map{1→2} / Set{1,2}", new Map([[1, 2]]), new Set([1, 2])],
    ["/a/g / /a/", /a/g, /a/],
    ['/a/ / "a"', /a/, "a"],
    ["NaN / Infinity", NaN, Infinity],
    ["2**31 / -(2**31)", 2 ** 31, -(2 ** 31)],
    ["lone surrogate / U+FFFD", "\uD800", "\uFFFD"],
    ["[1, [2]] / [[1], 2]", [1, [2]], [[1], 2]],
    ["[[]] / [[], []]", [[]], [[], []]],
    ["-1n / 1n", -1n, 1n],
    ["0n / -0", 0n, -0],
    ["Alpha(1) / 1", new Alpha(1), 1],
    ["Alpha(1) / Beta(1)", new Alpha(1), new Beta(1)],
    ["Alpha(1) / Alpha(2)", new Alpha(1), new Alpha(2)],
  ];
  for (const [name, a, b] of distinctPairs) {
    it(name, () => assert.notEqual(hex(encodeCanonical(a)), hex(encodeCanonical(b))));
  }

  it("all listed values are pairwise distinct", () => {
    const all = distinctPairs.flatMap(([, a, b]) => [a, b]);
    const keys = new Map<string, unknown>();
    for (const v of all) {
      const key = hex(encodeCanonical(v));
      if (keys.has(key)) assert.ok(canonicalEqual(keys.get(key), v), `collision between ${String(keys.get(key))} and ${String(v)}`);
      keys.set(key, v);
    }
  });

  it("is injective: equal bytes iff canonically equal (property)", () => {
    const pair = fc.oneof(
      fc.tuple(valueArb, valueArb),
      fc.tuple(valueArb, fc.integer()).map(([v, seed]) => [v, reordered(v, seeded(seed))] as [unknown, unknown]),
    );
    let equalPairs = 0;
    fc.assert(
      fc.property(pair, ([a, b]) => {
        const equal = canonicalEqual(a, b);
        if (equal) equalPairs++;
        assert.equal(sameKey(a, b), equal);
      }),
      { numRuns: 3000 },
    );
    assert.ok(equalPairs > 300, `only ${equalPairs} equal pairs were generated`);
  });
});

describe("encodeCanonical: declared hashes", () => {
  it("hashes an instance as its constructor name and what [hashKey]() returns", () => {
    assert.equal(hashValue(new Alpha({ a: 1, b: 2 })), hashValue(new Alpha({ b: 2, a: 1 })));
    assert.notEqual(hashValue(new Alpha({ a: 1 })), hashValue({ a: 1 }));
  });

  it("honours a declared hash on a plain object", () => {
    const handle = { conn: () => 0, [hashKey]: () => "db-1" };
    assert.equal(hashValue(handle), hashValue({ [hashKey]: () => "db-1", other: Symbol() }));
  });

  it("may hash while being hashed (re-entrant)", () => {
    class Nested {
      [hashKey](): string {
        return hashValue({ inner: [1, 2, 3] });
      }
    }
    const outer = hashValue([new Nested(), "after"]);
    assert.equal(outer, hashValue([new Nested(), "after"]));
    assert.equal(hashValue({ inner: [1, 2, 3] }), hashValue({ inner: [1, 2, 3] }));
  });

  it("refuses a declared hash that returns itself as a cycle", () => {
    class Selfish {
      [hashKey](): unknown {
        return { me: this };
      }
    }
    assert.throws(() => hashValue({ s: new Selfish() }), {
      message: 'value "s[hashKey]().me": cannot hash a cycle (it refers back to "s")',
    });
  });
});

describe("encodeCanonical: refusals name the path", () => {
  class Agent {}
  const refused = (value: unknown, options?: { label?: string; path?: string }): UnhashableValueError => {
    try {
      encodeCanonical(value, options);
    } catch (error) {
      assert.ok(error instanceof UnhashableValueError, `expected UnhashableValueError, got ${String(error)}`);
      assert.equal(error.code, "CACHET_UNHASHABLE");
      // hashValue refuses the same way.
      assert.throws(() => hashValue(value, options), { message: error.message });
      return error;
    }
    assert.fail("expected a refusal");
  };

  it("names a class instance under a labelled path", () => {
    const error = refused({ agent: new Agent() }, { label: "input", path: "client" });
    assert.equal(error.message, 'input "client.agent": cannot hash an instance of Agent — ignore the input or give its type a hash');
    assert.equal(error.path, "client.agent");
  });

  const cases: [string, unknown, string][] = [
    ["a function", { f: () => 1 }, 'value "f": cannot hash a function'],
    ["the value itself", () => 1, "value: cannot hash a function"],
    ["a symbol", [1, Symbol("s")], 'value "[1]": cannot hash a symbol'],
    ["a promise", { p: Promise.resolve(1) }, 'value "p": cannot hash a promise — await it first'],
    ["a Node stream", { s: Readable.from([]) }, 'value "s": cannot hash a stream (an instance of Readable)'],
    ["a web stream", { s: new ReadableStream() }, 'value "s": cannot hash a stream (an instance of ReadableStream)'],
    ["a WeakMap", { w: new WeakMap() }, 'value "w": cannot hash a WeakMap (its contents cannot be listed)'],
    ["a WeakSet", [new WeakSet()], 'value "[0]": cannot hash a WeakSet (its contents cannot be listed)'],
    ["an odd key", { "odd key": { x: () => 1 } }, 'value "["odd key"].x": cannot hash a function'],
    ["a nested index", { rows: [[0, 1, [() => 1]]] }, 'value "rows[0][2][0]": cannot hash a function'],
    ["a Map value under a string key", { m: new Map([["accept", new Agent()]]) }, 'value "m.get("accept")": cannot hash an instance of Agent — ignore the input or give its type a hash'],
    ["a Map value under a number key", new Map([[3, () => 1]]), 'value "get(3)": cannot hash a function'],
    ["a Map value under an object key", { m: new Map([[{}, () => 1]]) }, 'value "m.values()[0]": cannot hash a function'],
    ["a Map key", { m: new Map<unknown, number>([["a", 1], [() => 1, 2]]) }, 'value "m.keys()[1]": cannot hash a function'],
    ["a Set member", { s: new Set([1, 2, Symbol.iterator]) }, 'value "s.values()[2]": cannot hash a symbol'],
    ["a thenable", { t: new (class Later { then() {} })() }, 'value "t": cannot hash a thenable (an instance of Later with a then method) — await it first'],
    ["a boxed primitive", { n: new Number(1) }, 'value "n": cannot hash an instance of Number — ignore the input or give its type a hash'],
    ["a subclass of a built-in", { d: new (class Stamp extends Date {})() }, 'value "d": cannot hash an instance of Stamp — ignore the input or give its type a hash'],
    ["an Error", { e: new Error("x") }, 'value "e": cannot hash an instance of Error — ignore the input or give its type a hash'],
  ];
  for (const [name, value, message] of cases) {
    it(`names ${name}`, () => assert.equal(refused(value).message, message));
  }

  it("names cycles and where they lead back to", () => {
    const client: Record<string, unknown> = { agent: {} };
    (client.agent as Record<string, unknown>).owner = client;
    assert.equal(
      refused({ client }, { label: "input" }).message,
      'input "client.agent.owner": cannot hash a cycle (it refers back to "client")',
    );
    assert.equal(refused(client, { label: "input", path: "client" }).message, 'input "client.agent.owner": cannot hash a cycle (it refers back to "client")');
    const self: unknown[] = [];
    self.push(self);
    assert.equal(refused(self).message, 'value "[0]": cannot hash a cycle (it refers back to the value itself)');
    const m = new Map<string, unknown>();
    m.set("me", m);
    assert.equal(refused({ m }).message, 'value "m.get("me")": cannot hash a cycle (it refers back to "m")');
  });

  it("finds cycles far below the top", () => {
    let deep: Record<string, unknown> = {};
    const top = deep;
    for (let i = 0; i < 100; i++) deep = deep.next = {};
    deep.next = top;
    const error = refused(top) as Error & { path: string };
    assert.match(error.path, /^next(\.next){100}$/);
    // The message stays one line of bounded length: the long path keeps its start and end.
    assert.match(error.message, /^value "next(\.next)*…\(\d+ more\)…[a-z.]*next": cannot hash a cycle \(it refers back to the value itself\)$/);
    const middle = top.next as Record<string, unknown>;
    let tail = middle;
    for (let i = 0; i < 60; i++) tail = tail.next as Record<string, unknown>;
    tail.next = middle.next;
    assert.match(refused(top).message, /cannot hash a cycle \(it refers back to "next\.next"\)$/);
    // A target deeper than the linearly scanned ancestors.
    let target = top;
    for (let i = 0; i < 50; i++) target = target.next as Record<string, unknown>;
    tail.next = target;
    const deeper = refused(top) as Error & { path: string };
    assert.match(deeper.path, /^next(\.next){61}$/);
    assert.match(deeper.message, /cannot hash a cycle \(it refers back to "next[a-z.]*…\(92 more\)…[a-z.]*next"\)$/);
  });

  it("refuses values nested deeper than the limit with a clear message", () => {
    let deep: unknown = 1;
    for (let i = 0; i < 1001; i++) deep = [deep];
    assert.match(refused(deep).message, /cannot hash a value nested more than 1000 levels deep$/);
    let fine: unknown = 1;
    for (let i = 0; i < 999; i++) fine = { a: fine };
    assert.equal(hashValue(fine).length, 64);
  });

  it("keeps working after a refusal", () => {
    refused({ a: [1, 2, { b: () => 1 }] });
    assert.equal(hashValue({ a: 1 }), hashValue({ a: 1 }));
  });
});

describe("encodeCanonical: golden vectors (a change here changes every cache key)", () => {
  const golden: [string, unknown, string][] = [
    ["undefined", undefined, "01"],
    ["null", null, "02"],
    ["true", true, "04"],
    ["-1", -1, "0501"],
    ["-0", -0, "060000000000000080"],
    ["NaN", NaN, "06000000000000f87f"],
    ["1n", 1n, "07000101"],
    ['"é"', "é", "0802c3a9"],
    ['"\\uD800"', "\uD800", "090100d8"],
    ["[1, , 2]", [1, , 2], "0a0305020b010504"],
    ["{b: 1, a: [true]}", { b: 1, a: [true] }, "0c020801610a0104080162 0502".replace(" ", "")],
    ["Date(0)", new Date(0), "0f0000000000000000"],
    ["/a/g", /a/g, "10080161080167"],
    ["Buffer [1]", Buffer.from([1]), "110c0101"],
    ["Uint16Array [1]", new Uint16Array([1]), "1105020100"],
  ];
  for (const [name, value, bytes] of golden) {
    it(`encodes ${name}`, () => assert.equal(hex(encodeCanonical(value)), bytes));
  }

  it("pins the digests of richer values", () => {
    assert.equal(hashValue(["hello", false]), sha256Hex(Buffer.from("0a02080568656c6c6f03", "hex")));
    const rich = {
      name: "task",
      version: 3,
      inputs: new Map<unknown, unknown>([["b", new Set([2n, -0])], ["a", [null, undefined, , "ü"]]]),
      when: new Date(Date.UTC(2024, 0, 1)),
      bytes: Buffer.from("cafe", "hex"),
      floats: new Float64Array([1.5, -Infinity]),
    };
    assert.equal(hashValue(rich), "1c21b1419e8b6729002eff494daac3ff32a14bef58c8339976f1e976740c4212");
  });
});

describe("sha256Hex", () => {
  it("matches the FIPS 180-2 test vector for strings and bytes", () => {
    const abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    assert.equal(sha256Hex("abc"), abc);
    assert.equal(sha256Hex(new Uint8Array([0x61, 0x62, 0x63])), abc);
  });
});

describe("encodeCanonical: sizes", () => {
  it("encodes long and non-ASCII strings and large values, and shrinks back afterwards", () => {
    const long = "é😀x".repeat(100_000);
    const bytes = encodeCanonical({ long, blob: new Uint8Array(3 << 20).fill(7) });
    assert.ok(bytes.length > 3 << 20);
    assert.notEqual(hashValue(long), hashValue(long + " "));
    assert.ok(sameKey([long], [long.slice(0)]));
    assert.equal(hex(encodeCanonical("x".repeat(43))), "082b" + "78".repeat(43));
    assert.equal(hex(encodeCanonical("x".repeat(200))), "08c801" + "78".repeat(200));
    assert.equal(hashValue({ a: 1 }), hashValue({ a: 1 }));
  });

  it("encodes lone surrogates in long strings as UTF-16", () => {
    const a = "a".repeat(60) + "\uDC00";
    const b = "a".repeat(60) + "\uFFFD";
    assert.notEqual(hashValue(a), hashValue(b));
    assert.equal(hex(encodeCanonical(a)).slice(0, 6), "093d61");
  });
});
