import type { VersionParameters } from "./version-parameters.js";

/**
 * Derives one component of a task's cache version. `Cache` calls every policy in order, concatenates what they
 * return and hashes the result, so a policy should return a fixed-length digest (the built-in ones return sha256
 * hex) and must fold `salt` in. It must be deterministic: the same code and configuration give the same string in
 * every process.
 */
export interface CachePolicy {
  getVersion(salt: string, params: VersionParameters): string;
}

/** True when `value` can serve as a cache policy: a non-null object (or function) with a `getVersion` method. */
export function isCachePolicy(value: unknown): value is CachePolicy {
  return (
    (typeof value === "object" || typeof value === "function") &&
    value !== null &&
    typeof (value as { getVersion?: unknown }).getVersion === "function"
  );
}

/** The name a policy goes by in messages: its class name, or `"an object policy"` for a plain object. */
export function policyName(policy: CachePolicy): string {
  const ctor = (Object.getPrototypeOf(policy) as { constructor?: { name?: string } } | null)?.constructor;
  const name = ctor?.name;
  return name && name !== "Object" ? name : "an object policy";
}
