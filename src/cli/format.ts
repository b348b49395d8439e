/** Formatting for people: sizes, durations, counts and keys as the CLI prints them. */
import { contentEntryOwner } from "../task/content-entries.js";

const BINARY_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"] as const;

/** `1536` → `"1.5KiB"`, `0` → `"0B"`: binary units, one decimal, the way `du -h` style summaries read. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < BINARY_UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value}B` : `${value.toFixed(1)}${BINARY_UNITS[unit]}`;
}

/** `93_000` → `"1m 33s"`: the largest two units, for ages and waits in human output. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const units: Array<[string, number]> = [["d", 86_400_000], ["h", 3_600_000], ["m", 60_000], ["s", 1000]];
  const parts: string[] = [];
  let rest = ms;
  for (const [label, size] of units) {
    const amount = Math.floor(rest / size);
    if (amount > 0 || parts.length > 0) {
      if (amount > 0) parts.push(`${amount}${label}`);
      rest -= amount * size;
    }
    if (parts.length === 2) break;
  }
  return parts.join(" ");
}

/** The time since `ms` ago; a time in the future (written under a clock that was ahead) says so. */
export function formatAge(ms: number, suffix = ""): string {
  return ms < 0 ? "in the future" : `${formatDuration(ms)}${suffix}`;
}

/** `1 file`, `2 files`. */
export function plural(count: number, one: string, many: string): string {
  return `${count} ${count === 1 ? one : many}`;
}

/** How much of a digest key (64 hex characters, a task key) is kept: 12 characters, as short git and docker ids. */
const SHORT_DIGEST = 12;
/** Other keys (URLs, paths) longer than this are cut. */
const LONG_KEY = 40;

/**
 * A key as a terminal shows it: `3f2a9c81d0e4…` for a hex digest, the first 39 characters and `…` for another
 * long key, short keys whole. `cachet cache explain` takes such a start of a key back.
 */
export function shortKey(key: string): string {
  if (/^[0-9a-f]{32,}$/.test(key)) return `${key.slice(0, SHORT_DIGEST)}…`;
  return key.length <= LONG_KEY ? key : `${key.slice(0, LONG_KEY - 1)}…`;
}

/** {@link shortKey} that keeps a content entry's `.<n>` (`3f2a9c81d0e4….0`). */
export function shortEntryKey(key: string): string {
  const owner = contentEntryOwner(key);
  return owner ? `${shortKey(owner.owner)}.${owner.index}` : shortKey(key);
}
