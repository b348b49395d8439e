/**
 * The base of every error cachet raises on purpose. It sits below all layers (it imports nothing), so each
 * layer can define its own failure classes on it and the CLI can tell a user's mistake from a bug.
 *
 * `code` is stable and machine-readable (`CACHET_LOCK_TIMEOUT`, …); `message` is one line that says what
 * went wrong and where.
 */
export abstract class CachetError extends Error {
  abstract readonly code: string;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** True for errors cachet raised deliberately (as opposed to bugs or foreign errors). */
export function isCachetError(error: unknown): error is CachetError {
  return error instanceof CachetError;
}
