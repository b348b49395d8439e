import { CachetError } from "../errors.js";

/** A cache key that cannot be understood: a bad `--key` form, a glob that does not parse. */
export class CacheKeySpecError extends CachetError {
  readonly code = "CACHET_BAD_CACHE_KEY";
  /**
   * `problem` continues the sentence `cache key "…" …`: `is not valid: …`, `is absolute: …`. With `json`, `spec` is
   * already JSON (a spec object as given) and is shown as it is.
   */
  constructor(readonly spec: string, problem: string, options: { json?: boolean } = {}) {
    super(`cache key ${options.json ? spec : JSON.stringify(spec)} ${problem}`);
  }
}

/** A cache key whose files cannot be read (a `file:` naming a directory, a file without read permission). */
export class CacheKeyReadError extends CachetError {
  readonly code = "CACHET_CACHE_KEY_READ";
  constructor(readonly path: string, reason: string, options?: { cause?: unknown }) {
    super(`cannot compute the cache key of ${path}: ${reason}`, options);
  }
}

/** A `.git` that cachet cannot read without running git (a reftable repository, a broken `gitdir:` file). */
export class GitStateError extends CachetError {
  readonly code = "CACHET_GIT_STATE";
  constructor(readonly gitDir: string, reason: string) {
    super(`cannot read the git state at ${gitDir}: ${reason}`);
  }
}

/** A local source path that names nothing, or something that is neither a file nor a directory. */
export class LocalSourceError extends CachetError {
  readonly code = "CACHET_LOCAL_SOURCE";
  constructor(readonly path: string, reason: string) {
    super(`local source ${path}: ${reason}`);
  }
}
