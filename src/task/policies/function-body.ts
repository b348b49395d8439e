import { sha256Hex } from "../../hash/index.js";

import type { CachePolicy } from "../cache-policy.js";
import { describeValue } from "../errors.js";
import type { VersionParameters } from "../version-parameters.js";
import { digestTokens, functionTokens } from "./source-tokens.js";

/**
 * Versions a task by its function's source text: the sequence of its tokens, hashed with the salt. Comments,
 * whitespace, line breaks, quote style, number spelling and trailing commas do not count; renaming a variable or
 * changing a literal does. Functions without source (native or bound) are refused; give them an explicit version.
 */
export class FunctionBodyPolicy implements CachePolicy {
  getVersion(salt: string, params: VersionParameters): string {
    const fn = params.func;
    if (typeof fn !== "function") {
      throw new TypeError(`FunctionBodyPolicy needs params.func to be a function, got ${describeValue(fn)}`);
    }
    const digest = digestTokens(functionTokens(fn));
    return sha256Hex(JSON.stringify(["function-body", salt, digest]));
  }
}
