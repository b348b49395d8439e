/** Units people type and read: binary byte sizes and durations. */

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
