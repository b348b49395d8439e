/**
 * Durations for `maxAge`: a number of milliseconds, or a string of one or more `<amount><unit>` parts, e.g.
 * `"90s"`, `"15m"`, `"12h"`, `"7d"`, `"2w"`, `"1h30m"`, `"1.5h"`, `"500ms"`. Units: `ms`, `s`, `m`, `h`, `d`, `w`.
 */

const UNIT_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

const PART = /(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h|d|w)/y;

/**
 * Parses a duration string into milliseconds; parts add up (`"1h30m"`, `"1h 30m"`). Returns `undefined` when the
 * text is not a duration: empty, a bare number without a unit, an unknown unit, or anything left over.
 */
export function parseDuration(text: string): number | undefined {
  const source = text.trim();
  if (source === "") return undefined;
  let total = 0;
  let index = 0;
  while (index < source.length) {
    PART.lastIndex = index;
    const match = PART.exec(source);
    if (!match) return undefined;
    total += Number(match[1]) * (UNIT_MS[match[2]!] ?? Number.NaN);
    index = PART.lastIndex;
    while (source[index] === " ") index++;
  }
  return Number.isFinite(total) ? total : undefined;
}

/** Formats milliseconds back into the largest exact units (`5400000` → `"1h30m"`), for messages. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms <= 0 || !Number.isInteger(ms)) return `${ms}ms`;
  let rest = ms;
  let out = "";
  for (const unit of ["w", "d", "h", "m", "s", "ms"] as const) {
    const size = UNIT_MS[unit]!;
    const count = Math.floor(rest / size);
    if (count > 0) {
      out += `${count}${unit}`;
      rest -= count * size;
    }
  }
  return out;
}
