import { boundMessage } from "../errors.js";
import type { Tally } from "../store/index.js";
import { formatBytes, plural } from "./format.js";

/** Where the CLI writes: data to stdout, messages to stderr. Swappable for tests of formatting. */
export interface Output {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

export const processOutput: Output = { stdout: process.stdout, stderr: process.stderr };

/** A line of data on stdout. */
export function printData(output: Output, line: string): void {
  output.stdout.write(`${line}\n`);
}

/** A human message on stderr (summaries, notices), so stdout stays clean for data. */
export function printNote(output: Output, line: string): void {
  output.stderr.write(`${boundMessage(line)}\n`);
}

/** `Removed 12 files (1.5MiB)` / `Removed 3 entries (3.0KiB)` / `Removed 3 entries, 12 files (1.5MiB)`. */
export function removalSummary(verb: string, tally: Tally): string {
  const parts: string[] = [];
  if (tally.entries > 0 && tally.files === 0) parts.push(plural(tally.entries, "entry", "entries"));
  else if (tally.entries > 0) parts.push(plural(tally.entries, "entry", "entries"), plural(tally.files, "file", "files"));
  else parts.push(plural(tally.files, "file", "files"));
  return `${verb} ${parts.join(", ")} (${formatBytes(tally.bytes)})`;
}
