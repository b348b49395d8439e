import { CachetError } from "../errors.js";

/** The shared tier could not be used (unreachable, refused, timed out, a failed query); the message never holds a password. */
export class RemoteError extends CachetError {
  readonly code: string = "CACHET_REMOTE";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * The server refused this one request for what it carries (a key it cannot index, a NUL in text, a value out of
 * range: SQLSTATE classes 22 and 54), not because it is down; the entry stays local and the breaker is not moved.
 */
export class RemoteRefusedError extends RemoteError {
  override readonly code = "CACHET_REMOTE_REFUSED";
}

/** A call to the shared tier took longer than its time limit. */
export class RemoteTimeoutError extends RemoteError {
  override readonly code = "CACHET_REMOTE_TIMEOUT";
}

/**
 * A result made under a lease was not committed: the lease was taken over (it expired while the holder was
 * paused or cut off), so a newer holder's result stands.
 */
export class LeaseLostError extends CachetError {
  readonly code = "CACHET_LEASE_LOST";
  constructor(name: string, key: string, token: bigint | string) {
    super(`the shared lease on ${name}/${key} (token ${token}) was taken over by another holder; this result was not committed to the shared cache`);
  }
}

/** A remote entry whose signature is missing or wrong (see `CACHET_SIGNING_KEY`); it is treated as a miss. */
export class SignatureError extends CachetError {
  readonly code = "CACHET_BAD_SIGNATURE";
  constructor(name: string, key: string, reason: string) {
    super(`the shared entry ${name}/${key} is ${reason}; it is ignored (a writer without the signing key, or tampering)`);
  }
}

/** Remote content that does not match its digest (damaged or tampered chunks); it is never returned. */
export class RemoteIntegrityError extends CachetError {
  readonly code = "CACHET_INTEGRITY";
  constructor(what: string, expected: string, actual: string) {
    super(`shared ${what} is corrupt: expected sha256 ${expected}, found ${actual}`);
  }
}

/** A write attempted through a read-only remote (`CACHET_REMOTE_WRITE=0`, `--remote-read-only`). */
export class RemoteReadOnlyError extends CachetError {
  readonly code = "CACHET_REMOTE_READ_ONLY";
  constructor(what: string) {
    super(`cannot ${what}: the shared cache is read-only here (CACHET_REMOTE_WRITE=0 or --remote-read-only)`);
  }
}
