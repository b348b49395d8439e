import { sha256Hex } from "../hash/index.js";

import { isCachePolicy, policyName, type CachePolicy } from "./cache-policy.js";
import { parseDuration } from "../config/index.js";
import { CacheConfigError, CachePolicyError, describeValue } from "./errors.js";
import { FunctionBodyPolicy } from "./policies/function-body.js";
import { unknownOption } from "./option-names.js";
import type { VersionParameters } from "./version-parameters.js";

/** Options of `new Cache(...)`; every one is optional. */
export interface CacheOptions {
  /** A fixed version. When given it is the version, and no policy is consulted. */
  version?: string;
  /** Compute each key once across processes: one caller runs, the others wait for its result. Default `false`. */
  serialize?: boolean;
  /** Names of the task's inputs that do not enter the key (a single name or a list). */
  ignoredInputs?: string | readonly string[];
  /** Mixed into every policy-derived version; change it to invalidate every entry. Default `""`. */
  salt?: string;
  /** One policy or a list, applied in order. Default `[new FunctionBodyPolicy()]` when no `version` is given. */
  policies?: CachePolicy | readonly CachePolicy[];
  /** Entries older than this are misses: milliseconds, or a duration string such as `"12h"` or `"1h30m"`. */
  maxAge?: number | string;
}

const OPTION_NAMES: readonly string[] = ["version", "serialize", "ignoredInputs", "salt", "policies", "maxAge"];

/**
 * Cache configuration for a task (Flyte's `Cache`): how its version is derived, which inputs are ignored, whether
 * calls are serialized, and how long entries stay fresh. Instances are immutable.
 */
export class Cache {
  /** The explicit version, if one was given. */
  readonly version: string | undefined;
  /** Whether a key is computed once across processes. */
  readonly serialize: boolean;
  /** The ignored input names, always as a list. */
  readonly ignoredInputs: readonly string[];
  /** The salt handed to every policy. */
  readonly salt: string;
  /** The policies, in the order they are applied (empty when a `version` is given and no policies were). */
  readonly policies: readonly CachePolicy[];
  /** `maxAge` as it was given. */
  readonly maxAge: number | string | undefined;
  /** `maxAge` in milliseconds, or `undefined` when entries never expire. */
  readonly maxAgeMs: number | undefined;

  constructor(options: CacheOptions = {}) {
    if (typeof options !== "object" || options === null || Array.isArray(options)) {
      throw new CacheConfigError(`new Cache(options): options must be an object, got ${describeValue(options)}`);
    }
    for (const key of Object.keys(options)) {
      if (!OPTION_NAMES.includes(key)) throw new CacheConfigError(unknownOption("new Cache(options)", key, OPTION_NAMES));
    }
    const { version, serialize = false, ignoredInputs, salt = "", policies, maxAge } = options;

    if (version !== undefined && (typeof version !== "string" || version === "")) {
      throw new CacheConfigError(`Cache option "version" must be a non-empty string, got ${describeValue(version)}`);
    }
    if (typeof serialize !== "boolean") {
      throw new CacheConfigError(`Cache option "serialize" must be a boolean, got ${describeValue(serialize)}`);
    }
    if (typeof salt !== "string") {
      throw new CacheConfigError(`Cache option "salt" must be a string, got ${describeValue(salt)}`);
    }

    this.version = version;
    this.serialize = serialize;
    this.salt = salt;
    this.ignoredInputs = normalizeIgnoredInputs(ignoredInputs);
    this.policies = normalizePolicies(policies, version);
    this.maxAge = maxAge;
    this.maxAgeMs = normalizeMaxAge(maxAge);
    Object.freeze(this);
  }

  /** The names of the inputs that do not enter the key; a single string was turned into a one-item list. */
  getIgnoredInputs(): readonly string[] {
    return this.ignoredInputs;
  }

  /**
   * The task's version. A given `version` is returned unchanged (policies are not consulted); otherwise every
   * policy's `getVersion(salt, params)`, in order, concatenated, and the sha256 hex of that.
   */
  getVersion(params: VersionParameters): string {
    if (this.version !== undefined) return this.version;
    if (typeof params !== "object" || params === null || typeof params.func !== "function") {
      throw new CacheConfigError(
        `Cache.getVersion(params): params.func must be the task function, got ${describeValue(params?.func)}`,
      );
    }
    let combined = "";
    for (const policy of this.policies) {
      combined += runPolicy(policy, this.salt, params);
    }
    return sha256Hex(combined);
  }
}

/** The `Cache` a task runs with: `true` means `new Cache()` (default policies); a `Cache` is used as is. */
export function resolveCache(option: true | Cache): Cache {
  if (option === true) return new Cache();
  if (option instanceof Cache) return option;
  throw new CacheConfigError(`task option "cache" must be true or a Cache, got ${describeValue(option)}`);
}

function runPolicy(policy: CachePolicy, salt: string, params: VersionParameters): string {
  const name = policyName(policy);
  const fnName = params.func.name || "<anonymous>";
  const advice = `give the task's Cache an explicit version (new Cache({ version: "1" })) to skip policies`;
  let result: unknown;
  try {
    result = policy.getVersion(salt, params);
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new CachePolicyError(
      `cache policy ${name} failed for task function "${fnName}": ${reason}; ${advice}`,
      name,
      fnName,
      { cause },
    );
  }
  if (typeof result !== "string") {
    throw new CachePolicyError(
      `cache policy ${name} returned ${describeValue(result)} instead of a string for task function "${fnName}"; ${advice}`,
      name,
      fnName,
    );
  }
  return result;
}

function normalizeIgnoredInputs(value: unknown): readonly string[] {
  if (value === undefined) return Object.freeze([]);
  if (typeof value !== "string" && !Array.isArray(value)) {
    throw new CacheConfigError(
      `Cache option "ignoredInputs" must be a string or a list of strings, got ${describeValue(value)}`,
    );
  }
  const list: unknown[] = typeof value === "string" ? [value] : value;
  const names: string[] = [];
  for (const [index, item] of list.entries()) {
    if (typeof item !== "string" || item === "") {
      throw new CacheConfigError(
        `Cache option "ignoredInputs"[${index}] must be a non-empty string, got ${describeValue(item)}`,
      );
    }
    if (!names.includes(item)) names.push(item);
  }
  return Object.freeze(names);
}

function normalizePolicies(value: unknown, version: string | undefined): readonly CachePolicy[] {
  if (value === undefined) {
    return Object.freeze(version === undefined ? [new FunctionBodyPolicy()] : []);
  }
  if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) {
      if (!isCachePolicy(item)) {
        throw new CacheConfigError(
          `Cache option "policies"[${index}] is not a cache policy (an object with a getVersion(salt, params) method), got ${describeValue(item)}${classHint(item)}`,
        );
      }
    }
    if (value.length === 0 && version === undefined) {
      throw new CacheConfigError(
        `Cache option "policies" is an empty list and no "version" is given, so there is nothing to derive a version from; give a version or at least one policy`,
      );
    }
    return Object.freeze([...(value as CachePolicy[])]);
  }
  if (!isCachePolicy(value)) {
    throw new CacheConfigError(
      `Cache option "policies" must be a cache policy or a list of them (objects with a getVersion(salt, params) method), got ${describeValue(value)}${classHint(value)}`,
    );
  }
  return Object.freeze([value]);
}

/** For a policy class passed where an instance belongs: a hint to construct it. */
function classHint(value: unknown): string {
  if (typeof value !== "function") return "";
  const prototype = (value as { prototype?: unknown }).prototype;
  return isCachePolicy(prototype) ? ` (did you mean new ${value.name || "Policy"}()?)` : "";
}

function normalizeMaxAge(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "number") {
    if (!Number.isFinite(value) || value <= 0) {
      throw new CacheConfigError(
        `Cache option "maxAge" must be a positive number of milliseconds or a duration string, got ${describeValue(value)}`,
      );
    }
    return value;
  }
  if (typeof value === "string") {
    const ms = parseDuration(value);
    if (ms === undefined || ms <= 0) {
      throw new CacheConfigError(
        `Cache option "maxAge" is not a duration: ${JSON.stringify(value)} (use milliseconds or e.g. "90s", "15m", "12h", "7d", "2w", "1h30m")`,
      );
    }
    return ms;
  }
  throw new CacheConfigError(
    `Cache option "maxAge" must be a number of milliseconds or a duration string, got ${describeValue(value)}`,
  );
}
