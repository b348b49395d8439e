/** Units people type: binary or decimal byte sizes and durations. Formatting for people lives with the CLI's output. */

const SIZE_FACTORS: Record<string, number> = {
  "": 1, b: 1,
  k: 1024, kb: 1000, kib: 1024,
  m: 1024 ** 2, mb: 1000 ** 2, mib: 1024 ** 2,
  g: 1024 ** 3, gb: 1000 ** 3, gib: 1024 ** 3,
  t: 1024 ** 4, tb: 1000 ** 4, tib: 1024 ** 4,
};

/** Parses `"500MiB"`, `"2G"`, `"1.5GB"`, `"4096"` into bytes; `undefined` when the text is not a size. */
export function parseSize(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  if (!match) return undefined;
  const factor = SIZE_FACTORS[match[2]!.toLowerCase()];
  if (factor === undefined) return undefined;
  return Math.floor(Number(match[1]) * factor);
}

const DURATION_FACTORS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/**
 * Parses `"90s"`, `"15m"`, `"12h"`, `"7d"`, `"2w"`, `"1h30m"`, `"1h 30m"`, `".5h"` into milliseconds; parts add
 * up. `undefined` when the text is not a duration (empty, a bare number, an unknown unit, anything left over).
 */
export function parseDuration(text: string): number | undefined {
  const source = text.trim().toLowerCase();
  if (source === "") return undefined;
  const part = /(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h|d|w)/y;
  let total = 0;
  let index = 0;
  while (index < source.length) {
    part.lastIndex = index;
    const match = part.exec(source);
    if (!match) return undefined;
    total += Number(match[1]) * DURATION_FACTORS[match[2]!]!;
    index = part.lastIndex;
    while (source[index] === " ") index++;
  }
  return total;
}
