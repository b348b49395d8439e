import { sha256Hex } from "../../hash/index.js";

import type { CachePolicy } from "../cache-policy.js";
import { CacheConfigError, describeValue } from "../errors.js";
import type { VersionParameters } from "../version-parameters.js";

/**
 * Versions a task by the values of the named environment variables, read each time a version is derived. An
 * unset variable is distinct from one set to the empty string; the order of the names does not matter.
 */
export class EnvPolicy implements CachePolicy {
  /** The variable names, sorted and without duplicates. */
  readonly names: readonly string[];

  constructor(names: string | readonly string[]) {
    if (typeof names !== "string" && !Array.isArray(names)) {
      throw new CacheConfigError(`EnvPolicy(names): names must be a list of variable names, got ${describeValue(names)}`);
    }
    const list: unknown[] = typeof names === "string" ? [names] : [...(names as readonly unknown[])];
    for (const [index, name] of list.entries()) {
      if (typeof name !== "string" || name === "" || name.includes("=") || name.includes("\0")) {
        throw new CacheConfigError(
          `EnvPolicy(names): names[${index}] must be an environment variable name, got ${describeValue(name)}`,
        );
      }
    }
    this.names = Object.freeze([...new Set(list as string[])].sort());
    Object.freeze(this);
  }

  getVersion(salt: string, _params?: VersionParameters): string {
    const values = this.names.map((name) => [name, process.env[name] ?? null]);
    return sha256Hex(JSON.stringify(["env", salt, values]));
  }
}
