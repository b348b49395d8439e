/**
 * The base of every error cachet raises on purpose. It sits below all layers (it imports nothing), so each
 * layer can define its own failure classes on it and the CLI can tell a user's mistake from a bug.
 *
 * `code` is stable and machine-readable (`CACHET_LOCK_TIMEOUT`, …); `message` is one line of bounded length
 * that says what went wrong and where (see {@link boundMessage}).
 */
export abstract class CachetError extends Error {
  abstract readonly code: string;

  constructor(message: string, options?: { cause?: unknown }) {
    super(boundMessage(message), options);
    this.name = new.target.name;
  }
}

/** True for errors cachet raised deliberately (as opposed to bugs or foreign errors). */
export function isCachetError(error: unknown): error is CachetError {
  return error instanceof CachetError;
}

/** Longest run of non-blank characters (a name, a path, a value) kept whole in a message. */
const MAX_WORD = 160;
/** Longest message. */
const MAX_MESSAGE = 1000;

/**
 * One line of bounded length: line breaks become spaces, a very long word (a 10 000-character name, a 2 KB
 * path) keeps its start and end around `…(N more)…`, and the whole line is cut at 1000 characters.
 */
export function boundMessage(message: string): string {
  let line = message.replace(/\s*[\r\n]+\s*/g, " ");
  if (line.length <= MAX_WORD) return line;
  line = line.replace(new RegExp(`\\S{${MAX_WORD + 1},}`, "g"), (word) => {
    const keep = MAX_WORD / 2;
    return `${word.slice(0, keep)}…(${word.length - 2 * keep} more)…${word.slice(-keep)}`;
  });
  if (line.length > MAX_MESSAGE) line = `${line.slice(0, MAX_MESSAGE - 1)}…`;
  return line;
}
