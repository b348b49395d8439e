import { CachetError } from "../errors.js";

/** A bad flag, a bad flag value or a missing argument: one line, exit code 2. */
export class UsageError extends CachetError {
  readonly code = "CACHET_USAGE";
}
