/** Formatting for people: sizes, durations, counts and keys as the CLI prints them. */

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

/** `1 file`, `2 files`. */
export function plural(count: number, one: string, many: string): string {
  return `${count} ${count === 1 ? one : many}`;
}
