/** What happened on one call of a cached task. */
export type TaskEventKind =
  /** Served from the cache without running. */
  | "hit"
  /** Not in the cache (or expired): ran and stored. */
  | "miss"
  /** Refresh asked (`refresh: true` or `CACHET_REFRESH`): ran and replaced the entry. */
  | "refresh"
  /** `serialize: true`: waited for another caller running the same key, then took its result. */
  | "waited"
  /** Caching is off (`CACHET_NO_CACHE=1`): ran without looking or storing. */
  | "bypass";

/** Reported to `onEvent` after every call. */
export interface TaskEvent {
  task: string;
  kind: TaskEventKind;
  /** The call's key (sha256 hex); empty for `bypass`. */
  key: string;
  /** Wall time of the whole call, in milliseconds. */
  durationMs: number;
  /** Set when the function ran and threw (the error is rethrown and nothing is cached). */
  error?: unknown;
}

export type TaskEventHandler = (event: TaskEvent) => void;
