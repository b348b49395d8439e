import { describe, test } from "node:test";
import assert from "node:assert/strict";

import { Cache } from "../src/task/cache.js";
import { CacheConfigError, CachePolicyError, FunctionSourceError } from "../src/task/errors.js";
import { ImageSpec } from "../src/task/image-spec.js";
import { PodTemplate } from "../src/task/pod-template.js";
import { ContainerImagePolicy } from "../src/task/policies/container-image.js";
import { EnvPolicy } from "../src/task/policies/env.js";
import { FunctionBodyPolicy } from "../src/task/policies/function-body.js";
import { PodTemplatePolicy } from "../src/task/policies/pod-template.js";

type AnyFn = (...args: never[]) => unknown;

/** A function built from exact source text (indirect eval keeps the text for `toString`). */
function fromSource(source: string): AnyFn {
  return (0, eval)(`(${source})`) as AnyFn;
}

/** An object member (method, getter, setter) built from exact source text. */
function member(source: string, kind: "value" | "get" | "set" = "value"): AnyFn {
  const object = (0, eval)(`({${source}})`) as object;
  const key = Reflect.ownKeys(object)[0]!;
  const descriptor = Object.getOwnPropertyDescriptor(object, key)!;
  return (kind === "value" ? descriptor.value : descriptor[kind]) as AnyFn;
}

const body = new FunctionBodyPolicy();
const version = (fn: AnyFn, salt = ""): string => body.getVersion(salt, { func: fn });

function assertSame(sources: string[], make: (source: string) => AnyFn = fromSource): void {
  const versions = sources.map((source) => version(make(source)));
  for (const [index, v] of versions.entries()) assert.equal(v, versions[0], `variant ${index} differs:\n${sources[index]}`);
}

function assertDifferent(a: string, b: string, make: (source: string) => AnyFn = fromSource): void {
  assert.notEqual(version(make(a)), version(make(b)), `expected different versions:\n${a}\n---\n${b}`);
}

describe("FunctionBodyPolicy", () => {
  test("comments, whitespace and reformatting give the same version", () => {
    assertSame([
      "function score(words, weight) { const total = words.length * weight; return total + 1; }",
      "function score(words,weight){const total=words.length*weight;return total+1;}",
      `function score(
        words, // the words
        weight /* a factor */,
      ) {
        /* the total */
        const total =
          words.length * weight;

        return total + 1; // one more
      }`,
      "function   score ( words , weight )\n{\n\tconst total = words . length * weight ;\n\treturn total + 1 ;\n}",
    ]);
  });

  test("quote style, number spelling and trailing commas do not count", () => {
    assertSame([
      `function f() { return g("a", 16, [1, 2]); }`,
      `function f() { return g('a', 0x10, [1, 2,],); }`,
      "function f() { return g('a', 16.0, [1, 2]); }",
    ]);
    assertDifferent("function f() { return [a,,]; }", "function f() { return [a,]; }");
  });

  test("any change of tokens gives a different version", () => {
    const base = "function f(a, b) { const limit = 10; return a + b * limit; }";
    const changes = [
      "function f(x, b) { const limit = 10; return x + b * limit; }",
      "function f(a, b) { const limit = 11; return a + b * limit; }",
      "function f(a, b) { const limit = 10; return a - b * limit; }",
      "function f(a, b) { const limit = 10; return (a + b) * limit; }",
      "function f(a, b) { let limit = 10; return a + b * limit; }",
      "function g(a, b) { const limit = 10; return a + b * limit; }",
      "function f(a, b) { const limit = '10'; return a + b * limit; }",
    ];
    for (const changed of changes) assertDifferent(base, changed);
    assertDifferent("function f() { return `a${x}b`; }", "function f() { return `a${x} b`; }");
    assertDifferent("function f() { return /ab+/g; }", "function f() { return /ab+/i; }");
    assertDifferent("function f() { return 10n; }", "function f() { return 11n; }");
  });

  test("arrow, async and generator functions", () => {
    assertSame(["(a) => a * 2", "(a)=>a*2", "(a) =>\n  // double\n  a * 2"]);
    assertSame(["async (text) => { return await lookup(text); }", "async (text)=>{return await lookup(text);}"]);
    assertSame(["async function load(url) { return fetch(url); }", "async function load( url ){ return fetch( url ) ; }"]);
    assertSame(["function* count(n) { for (let i = 0; i < n; i++) yield i; }", "function *count(n){for(let i=0;i<n;i++)yield i;}"]);
    assertSame(["async function* pages(url) { yield* await get(url); }", "async function *pages (url) { yield * await get(url) ; }"]);
    assertDifferent("(a) => a * 2", "(a) => a * 3");
    assertDifferent("async (a) => a", "(a) => a");
  });

  test("methods, getters, setters and generator methods from object literals", () => {
    assertSame(["run(input) { return input.trim(); }", "run( input ){return input.trim()  ;}"], (s) => member(s));
    assertSame(["async fetchAll(ids) { return Promise.all(ids.map(get)); }", "async fetchAll(ids){return Promise.all(ids.map(get));}"], (s) => member(s));
    assertSame(["*items() { yield 1; }", "* items ( ) { yield 1 ; }"], (s) => member(s));
    assertSame(["async *stream() { yield await next(); }", "async*stream(){yield await next();}"], (s) => member(s));
    assertSame(['["computed" + 1]() { return 1; }', "['computed' + 1]() { return 1; }"], (s) => member(s));
    assertSame(["get size() { return this.items.length; }", "get size(){return this.items.length;}"], (s) => member(s, "get"));
    assertSame(["set size(value) { this.n = value; }", "set size( value ) { this.n = value ; }"], (s) => member(s, "set"));
    assertDifferent("run(input) { return input.trim(); }", "run(input) { return input.trimEnd(); }", (s) => member(s));
  });

  test("class methods, static and private methods, classes and class-bound functions", () => {
    const Klass = (0, eval)(`(class Pipeline {
      #secret() { return 42; }
      static create(config) { return new Pipeline(config); }
      async step(input) { return this.#secret() + input; }
      get ready() { return true; }
      handler = (event) => event.type;
    })`) as { new (): { step: AnyFn; handler: AnyFn }; create: AnyFn; prototype: object };
    const instance = new Klass();
    const getter = Object.getOwnPropertyDescriptor(Klass.prototype, "ready")!.get as AnyFn;
    const fns: AnyFn[] = [Klass.create, instance.step, getter, instance.handler, Klass as unknown as AnyFn, instance.step.bind(instance)];
    for (const fn of fns.slice(0, 5)) assert.match(version(fn), /^[0-9a-f]{64}$/);
    assert.equal(version(instance.step), version(Klass.prototype.constructor.prototype.step));
    const privateMethod = (0, eval)(`(class { #helper(a) { return a; } expose() { return this.#helper; } })`) as new () => { expose(): AnyFn };
    assert.match(version(new privateMethod().expose()), /^[0-9a-f]{64}$/);
    assert.throws(() => version(fns[5]!), (e: unknown) => e instanceof FunctionSourceError && /native or bound/.test(e.message));
  });

  test("functions written in this TypeScript file (compiled by the loader) work too", () => {
    const local = async (items: string[]): Promise<number> => items.filter((item) => item.length > 2).length;
    assert.match(version(local), /^[0-9a-f]{64}$/);
    assert.equal(version(local), version(local));
  });

  test("native and bound functions are refused with advice to set a version", () => {
    for (const fn of [Math.max as AnyFn, Array.prototype.push as AnyFn, fromSource("function f() {}").bind(null)]) {
      assert.throws(() => version(fn), (e: unknown) =>
        e instanceof FunctionSourceError && e.code === "CACHET_FUNCTION_SOURCE" && /explicit version/.test(e.message));
    }
  });

  test("the salt changes the version", () => {
    const fn = fromSource("function f() { return 1; }");
    assert.notEqual(version(fn, "a"), version(fn, "b"));
    assert.equal(version(fn, "a"), version(fn, "a"));
  });
});

describe("ContainerImagePolicy", () => {
  const policy = new ContainerImagePolicy();
  const func = (): number => 1;

  test("no image gives a fixed marker that differs from any image", () => {
    const none = policy.getVersion("", { func });
    assert.equal(policy.getVersion("", { func }), none);
    assert.notEqual(policy.getVersion("", { func, containerImage: "" }), none);
    assert.notEqual(policy.getVersion("", { func, containerImage: "null" }), none);
  });

  test("an image name counts as given; an ImageSpec by its imageName()", () => {
    const a = policy.getVersion("", { func, containerImage: "ghcr.io/org/app:1" });
    assert.notEqual(a, policy.getVersion("", { func, containerImage: "ghcr.io/org/app:2" }));
    const spec = new ImageSpec({ name: "app", registry: "ghcr.io/org", packages: ["a"] });
    assert.equal(policy.getVersion("", { func, containerImage: spec }), policy.getVersion("", { func, containerImage: spec.imageName() }));
    assert.notEqual(
      policy.getVersion("", { func, containerImage: spec }),
      policy.getVersion("", { func, containerImage: spec.withPackages("b") }),
    );
    assert.notEqual(policy.getVersion("x", { func, containerImage: spec }), policy.getVersion("y", { func, containerImage: spec }));
  });

  test("a wrong containerImage fails through Cache with the policy's name", () => {
    const cache = new Cache({ policies: [new ContainerImagePolicy()] });
    assert.throws(() => cache.getVersion({ func, containerImage: 5 as never }), (e: unknown) =>
      e instanceof CachePolicyError && e.policyName === "ContainerImagePolicy");
  });
});

describe("PodTemplatePolicy", () => {
  const policy = new PodTemplatePolicy();
  const func = (): number => 1;
  const spec = { containers: [{ name: "primary", image: "app:1", resources: { limits: { cpu: "1", memory: "1Gi" } } }] };

  test("counts the template's versionHash, insensitive to key order", () => {
    const a = new PodTemplate({ podSpec: spec, labels: { team: "ml", tier: "gpu" } });
    const b = new PodTemplate({
      labels: { tier: "gpu", team: "ml" },
      podSpec: { containers: [{ resources: { limits: { memory: "1Gi", cpu: "1" } }, image: "app:1", name: "primary" }] },
    });
    assert.equal(policy.getVersion("", { func, podTemplate: a }), policy.getVersion("", { func, podTemplate: b }));
    const c = new PodTemplate({ podSpec: spec, labels: { team: "ml", tier: "cpu" } });
    assert.notEqual(policy.getVersion("", { func, podTemplate: a }), policy.getVersion("", { func, podTemplate: c }));
  });

  test("counts podTemplateName, and none at all is a fixed marker", () => {
    const none = policy.getVersion("", { func });
    assert.equal(policy.getVersion("", { func }), none);
    assert.notEqual(policy.getVersion("", { func, podTemplateName: "gpu" }), none);
    assert.notEqual(policy.getVersion("", { func, podTemplateName: "gpu" }), policy.getVersion("", { func, podTemplateName: "cpu" }));
    assert.notEqual(policy.getVersion("a", { func }), policy.getVersion("b", { func }));
  });
});

describe("EnvPolicy", () => {
  const func = (): number => 1;

  test("the values of the named variables count; unset differs from empty", () => {
    const policy = new EnvPolicy(["CACHET_TEST_MODEL", "CACHET_TEST_REGION"]);
    const saved = { ...process.env };
    try {
      delete process.env.CACHET_TEST_MODEL;
      delete process.env.CACHET_TEST_REGION;
      const unset = policy.getVersion("", { func });
      process.env.CACHET_TEST_MODEL = "";
      const empty = policy.getVersion("", { func });
      assert.notEqual(unset, empty);
      process.env.CACHET_TEST_MODEL = "large";
      const large = policy.getVersion("", { func });
      assert.notEqual(large, empty);
      process.env.CACHET_UNRELATED_VARIABLE = "x";
      assert.equal(policy.getVersion("", { func }), large, "other variables do not count");
      assert.equal(new EnvPolicy(["CACHET_TEST_REGION", "CACHET_TEST_MODEL"]).getVersion("", { func }), large, "order does not count");
      assert.notEqual(policy.getVersion("salt", { func }), large);
    } finally {
      for (const name of ["CACHET_TEST_MODEL", "CACHET_TEST_REGION", "CACHET_UNRELATED_VARIABLE"]) {
        if (saved[name] === undefined) delete process.env[name];
        else process.env[name] = saved[name];
      }
    }
  });

  test("a single name is accepted; bad names are refused", () => {
    assert.deepEqual(new EnvPolicy("HOME").names, ["HOME"]);
    assert.throws(() => new EnvPolicy(["A", ""]), (e: unknown) => e instanceof CacheConfigError && /names\[1\]/.test(e.message));
    assert.throws(() => new EnvPolicy(["A=B"]), CacheConfigError);
    assert.throws(() => new EnvPolicy(42 as never), /must be a list of variable names, got a number/);
  });
});
