/**
 * The naming rule of content entries. A task result holding `file()`/`dir()` references is stored as one content
 * entry per reference, `<key>.0`, `<key>.1`, …, plus the envelope entry `<key>` (format `cachet-task-result/1`).
 * Everything that makes or recognizes such a key goes through these functions, so the rule has one owner.
 */

const CONTENT_SUFFIX = /\.(\d+)$/;

/** The key of content entry `index` of the result stored under `key`. */
export function contentEntryKey(key: string, index: number): string {
  return `${key}.${index}`;
}

/** The envelope key and index of a content entry's key (`abc.2` → `{ owner: "abc", index: 2 }`), or undefined. */
export function contentEntryOwner(key: string): { owner: string; index: number } | undefined {
  const match = CONTENT_SUFFIX.exec(key);
  if (!match || match.index === 0) return undefined;
  return { owner: key.slice(0, match.index), index: Number(match[1]) };
}

/** True for a key shaped like a content entry's (`<key>.<n>`). */
export function isContentEntryKey(key: string): boolean {
  return contentEntryOwner(key) !== undefined;
}
