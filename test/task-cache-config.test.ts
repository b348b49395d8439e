import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";

import { Cache, resolveCache } from "../src/task/cache.js";
import { isCachePolicy, type CachePolicy } from "../src/task/cache-policy.js";
import { parseDuration } from "../src/config/index.js";
import { formatDuration } from "../src/cli/format.js";
import { CacheConfigError, CachePolicyError } from "../src/task/errors.js";
import { FunctionBodyPolicy } from "../src/task/policies/function-body.js";
import type { VersionParameters } from "../src/task/version-parameters.js";

async function embed(text: string): Promise<string> {
  return text.toUpperCase();
}
const params: VersionParameters = { func: embed };

/** A policy that returns a fixed string and counts its calls. */
class Fixed implements CachePolicy {
  calls = 0;
  constructor(readonly value: string) {}
  getVersion(salt: string): string {
    this.calls++;
    return `${this.value}|${salt}`;
  }
}

class Exploding implements CachePolicy {
  getVersion(): string {
    throw new Error("kaboom");
  }
}

const sha256 = (text: string): string => createHash("sha256").update(text).digest("hex");

describe("Cache.getVersion", () => {
  test("a given version is returned unchanged and policies are not consulted", () => {
    const counting = new Fixed("a");
    const cache = new Cache({ version: "v7", policies: [counting, new Exploding()] });
    assert.equal(cache.getVersion(params), "v7");
    assert.equal(counting.calls, 0);
  });

  test("without a version: sha256 of the policies' versions concatenated in order", () => {
    const a = new Fixed("a");
    const b = new Fixed("b");
    const cache = new Cache({ policies: [a, b], salt: "s" });
    assert.equal(cache.getVersion(params), sha256("a|sb|s"));
    assert.equal(a.calls, 1);
    assert.equal(b.calls, 1);
  });

  test("the order of policies matters", () => {
    const ab = new Cache({ policies: [new Fixed("a"), new Fixed("b")] }).getVersion(params);
    const ba = new Cache({ policies: [new Fixed("b"), new Fixed("a")] }).getVersion(params);
    assert.notEqual(ab, ba);
  });

  test("the salt changes every policy-derived version", () => {
    const plain = new Cache().getVersion(params);
    const salted = new Cache({ salt: "2024-06" }).getVersion(params);
    assert.notEqual(plain, salted);
    assert.equal(new Cache({ salt: "2024-06" }).getVersion(params), salted);
    assert.equal(new Cache({ salt: "" }).getVersion(params), plain, "salt defaults to the empty string");
  });

  test("a single policy is the same as a one-item list", () => {
    const single = new Cache({ policies: new Fixed("x") });
    const list = new Cache({ policies: [new Fixed("x")] });
    assert.equal(single.policies.length, 1);
    assert.equal(single.getVersion(params), list.getVersion(params));
  });

  test("no policies and no version: the default is [FunctionBodyPolicy]", () => {
    const cache = new Cache();
    assert.equal(cache.policies.length, 1);
    assert.ok(cache.policies[0] instanceof FunctionBodyPolicy);
    assert.equal(cache.getVersion(params), new Cache({ policies: [new FunctionBodyPolicy()] }).getVersion(params));
    assert.match(cache.getVersion(params), /^[0-9a-f]{64}$/);
  });

  test("a version with no policies keeps the policy list empty", () => {
    assert.deepEqual(new Cache({ version: "1" }).policies, []);
  });

  test("a policy that throws becomes a CachePolicyError naming the policy and the function, with the cause", () => {
    const cache = new Cache({ policies: [new Fixed("ok"), new Exploding()] });
    assert.throws(
      () => cache.getVersion(params),
      (error: unknown) => {
        assert.ok(error instanceof CachePolicyError);
        assert.equal(error.code, "CACHET_CACHE_POLICY");
        assert.equal(error.policyName, "Exploding");
        assert.equal(error.functionName, "embed");
        assert.match(error.message, /Exploding/);
        assert.match(error.message, /"embed"/);
        assert.match(error.message, /kaboom/);
        assert.match(error.message, /explicit version/);
        assert.ok(error.cause instanceof Error && error.cause.message === "kaboom");
        return true;
      },
    );
  });

  test("a policy that returns a non-string is refused with a CachePolicyError", () => {
    const bad = { getVersion: () => 42 as unknown as string };
    assert.throws(() => new Cache({ policies: bad }).getVersion(params), /returned a number \(42\) instead of a string/);
  });

  test("a native function under the default policy fails with advice to set a version", () => {
    assert.throws(
      () => new Cache().getVersion({ func: Math.max }),
      (error: unknown) =>
        error instanceof CachePolicyError &&
        error.policyName === "FunctionBodyPolicy" &&
        /native or bound/.test(error.message) &&
        /explicit version/.test(error.message),
    );
  });
});

describe("Cache construction", () => {
  test("read-only properties hold the options", () => {
    const policy = new Fixed("p");
    const cache = new Cache({ version: "3", serialize: true, ignoredInputs: ["a", "b"], salt: "s", policies: policy, maxAge: "1h" });
    assert.equal(cache.version, "3");
    assert.equal(cache.serialize, true);
    assert.deepEqual(cache.ignoredInputs, ["a", "b"]);
    assert.equal(cache.salt, "s");
    assert.deepEqual(cache.policies, [policy]);
    assert.equal(cache.maxAge, "1h");
    assert.equal(cache.maxAgeMs, 3_600_000);
    assert.ok(Object.isFrozen(cache));
    assert.throws(() => {
      (cache as { salt: string }).salt = "other";
    }, TypeError);
  });

  test("defaults", () => {
    const cache = new Cache();
    assert.equal(cache.version, undefined);
    assert.equal(cache.serialize, false);
    assert.equal(cache.salt, "");
    assert.deepEqual(cache.getIgnoredInputs(), []);
    assert.equal(cache.maxAge, undefined);
    assert.equal(cache.maxAgeMs, undefined);
  });

  test("getIgnoredInputs: a single string becomes a one-item list", () => {
    assert.deepEqual(new Cache({ ignoredInputs: "verbose" }).getIgnoredInputs(), ["verbose"]);
    assert.deepEqual(new Cache({ ignoredInputs: ["verbose", "client"] }).getIgnoredInputs(), ["verbose", "client"]);
  });

  test("anything that is not a policy is refused, alone or in a list", () => {
    assert.throws(() => new Cache({ policies: "FunctionBodyPolicy" as never }), (e: unknown) =>
      e instanceof CacheConfigError && /"policies" must be a cache policy/.test(e.message) && /a string/.test(e.message));
    assert.throws(() => new Cache({ policies: [new Fixed("a"), {} as never] }), (e: unknown) =>
      e instanceof CacheConfigError && /"policies"\[1\] is not a cache policy/.test(e.message) && /a plain object/.test(e.message));
    assert.throws(() => new Cache({ policies: [FunctionBodyPolicy as never] }), /"policies"\[0\] is not a cache policy.*a function \(FunctionBodyPolicy\) \(did you mean new FunctionBodyPolicy\(\)\?\)/);
    assert.throws(() => new Cache({ policies: null as never }), /"policies" must be a cache policy.*null/);
  });

  test("an empty policy list without a version is refused; with a version it is fine", () => {
    assert.throws(() => new Cache({ policies: [] }), (e: unknown) =>
      e instanceof CacheConfigError && /nothing to derive a version from/.test(e.message));
    assert.equal(new Cache({ policies: [], version: "1" }).getVersion(params), "1");
  });

  test("every option's type is checked, naming the option and what was given", () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ serialize: "yes" }, /"serialize" must be a boolean, got a string \("yes"\)/],
      [{ version: 3 }, /"version" must be a non-empty string, got a number \(3\)/],
      [{ version: "" }, /"version" must be a non-empty string/],
      [{ salt: 1 }, /"salt" must be a string, got a number \(1\)/],
      [{ ignoredInputs: 5 }, /"ignoredInputs" must be a string or a list of strings, got a number \(5\)/],
      [{ ignoredInputs: ["a", 2] }, /"ignoredInputs"\[1\] must be a non-empty string, got a number \(2\)/],
      [{ maxAge: true }, /"maxAge" must be a number of milliseconds or a duration string, got a boolean/],
      [{ maxAge: -5 }, /"maxAge" must be a positive number/],
      [{ maxAge: Number.NaN }, /"maxAge" must be a positive number/],
      [{ maxAge: "soon" }, /"maxAge" is not a duration: "soon"/],
      [{ maxAge: "15" }, /"maxAge" is not a duration: "15"/],
      [{ maxAge: "3 parsecs" }, /"maxAge" is not a duration/],
      [{ ignoreInputs: "x" }, /unknown option "ignoreInputs"/],
    ];
    for (const [options, message] of cases) {
      assert.throws(() => new Cache(options as never), (e: unknown) => e instanceof CacheConfigError && message.test(e.message), String(message));
    }
    assert.throws(() => new Cache("v1" as never), /options must be an object, got a string/);
  });

  test("maxAge: milliseconds or duration strings", () => {
    const cases: Array<[number | string, number]> = [
      [1500, 1500],
      ["90s", 90_000],
      ["15m", 900_000],
      ["12h", 43_200_000],
      ["7d", 604_800_000],
      ["2w", 1_209_600_000],
      ["1h30m", 5_400_000],
      ["1h 30m", 5_400_000],
      ["500ms", 500],
      ["1.5h", 5_400_000],
      ["1d2h3m4s", 93_784_000],
    ];
    for (const [given, ms] of cases) assert.equal(new Cache({ maxAge: given }).maxAgeMs, ms, String(given));
  });
});

describe("isCachePolicy, resolveCache, parseDuration", () => {
  test("isCachePolicy accepts objects with getVersion and nothing else", () => {
    assert.equal(isCachePolicy(new FunctionBodyPolicy()), true);
    assert.equal(isCachePolicy({ getVersion: () => "x" }), true);
    assert.equal(isCachePolicy({ getVersion: "x" }), false);
    assert.equal(isCachePolicy(null), false);
    assert.equal(isCachePolicy("policy"), false);
    assert.equal(isCachePolicy(FunctionBodyPolicy), false);
  });

  test("resolveCache: true is a default Cache, a Cache is itself, anything else is refused", () => {
    const cache = new Cache({ version: "1" });
    assert.equal(resolveCache(cache), cache);
    const fresh = resolveCache(true);
    assert.ok(fresh instanceof Cache);
    assert.ok(fresh.policies[0] instanceof FunctionBodyPolicy);
    assert.throws(() => resolveCache({ version: "1" } as never), /"cache" must be true or a Cache, got a plain object/);
    assert.throws(() => resolveCache(false as never), CacheConfigError);
  });

  test("parseDuration refuses leftovers and bare numbers; formatDuration shows the two largest units", () => {
    assert.equal(parseDuration("10m"), 600_000);
    assert.equal(parseDuration("10"), undefined);
    assert.equal(parseDuration("10mx"), undefined);
    assert.equal(parseDuration(""), undefined);
    assert.equal(parseDuration("h"), undefined);
    assert.equal(formatDuration(5_400_000), "1h 30m");
    assert.equal(parseDuration("2w1d500ms"), 2 * 604_800_000 + 86_400_000 + 500);
  });
});
