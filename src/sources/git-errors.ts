import { CachetError } from "../errors.js";

/** A repository URL that cannot be used (empty, malformed, starting with `-`). */
export class GitUrlError extends CachetError {
  readonly code = "CACHET_GIT_URL";
  constructor(readonly url: string, reason: string) {
    super(`invalid git URL ${JSON.stringify(url)}: ${reason}`);
  }
}

/** The `git` program could not be started. */
export class GitNotInstalledError extends CachetError {
  readonly code = "CACHET_GIT_NOT_INSTALLED";
  constructor(cause: unknown) {
    super("git sources need the git program, and it could not be started (is git installed and on PATH?)", { cause });
  }
}

/** Fetching from the remote failed (unreachable, refused, timed out); `detail` is git's reason (its first fatal or error line), redacted. */
export class GitFetchError extends CachetError {
  readonly code = "CACHET_GIT_FETCH_FAILED";
  constructor(readonly url: string, readonly detail: string) {
    super(`git fetch from ${url} failed: ${detail}`);
  }
}

/** The remote has no branch, tag or commit of that name. */
export class GitRefNotFoundError extends CachetError {
  readonly code = "CACHET_GIT_REF_NOT_FOUND";
  constructor(readonly url: string, readonly ref: string) {
    super(`${url} has no branch, tag or commit ${JSON.stringify(ref)}`);
  }
}

/** Offline (`CACHET_OFFLINE`, `--offline`), and the ref is not known without the network. */
export class GitOfflineError extends CachetError {
  readonly code = "CACHET_GIT_OFFLINE";
  constructor(readonly url: string, readonly ref: string) {
    super(
      `cannot resolve ${JSON.stringify(ref)} of ${url}: the network is disabled (CACHET_OFFLINE / --offline) and it is not in the cache`,
    );
  }
}

/** A local git command on the cache's repository database failed (git's reason: its first fatal or error line, redacted). */
export class GitCommandError extends CachetError {
  readonly code = "CACHET_GIT_FAILED";
  constructor(readonly command: string, readonly detail: string) {
    super(`git ${command} failed: ${detail}`);
  }
}

/** A ref that git would read as an option or a refspec, or that no branch, tag or commit can be named. */
export class GitRefError extends CachetError {
  readonly code = "CACHET_GIT_REF_INVALID";
  constructor(readonly url: string, readonly ref: string, reason: string) {
    super(`invalid ref ${JSON.stringify(ref)} for ${url}: ${reason}`);
  }
}

/** A checkout the cache dropped (its check failed) between being stored and being used; the next call makes it again. */
export class GitCheckoutError extends CachetError {
  readonly code = "CACHET_GIT_CHECKOUT";
  constructor(readonly entryName: string, readonly commit: string) {
    super(`the checkout ${entryName}/${commit} was changed or removed in the cache while it was being used; call again`);
  }
}
