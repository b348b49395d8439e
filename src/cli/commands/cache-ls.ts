import type { EntryInfo } from "../../store/index.js";
import { openExistingStore, type CommandContext } from "../context.js";
import { formatBytes, formatDuration } from "../format.js";
import { printNote } from "../output.js";

/** `cachet cache ls [NAME] [--json]`: entries with name, key, size, origin, age and last use. */
export async function cacheLsCommand(context: CommandContext, name: string | undefined, flags: { json?: boolean }): Promise<number> {
  const store = await openExistingStore(context);
  const out = context.output.stdout;
  if (!store) {
    if (flags.json) out.write("[]\n");
    return 0;
  }
  try {
    const now = Date.now();
    let count = 0;
    let buffer = "";
    const flushAt = 64 * 1024;
    const emit = (text: string): void => {
      buffer += text;
      if (buffer.length >= flushAt) {
        out.write(buffer);
        buffer = "";
      }
    };
    if (flags.json) emit("[");
    for await (const entry of store.list(name)) {
      if (flags.json) emit(`${count === 0 ? "\n" : ",\n"}${JSON.stringify(jsonEntry(entry))}`);
      else {
        if (count === 0) emit(`${["NAME", "KEY", "SIZE", "ORIGIN", "AGE", "LAST USE"].join("\t")}\n`);
        emit(`${textRow(entry, now)}\n`);
      }
      count++;
    }
    if (flags.json) emit(count === 0 ? "]\n" : "\n]\n");
    out.write(buffer);
    if (!flags.json && count === 0) printNote(context.output, name === undefined ? "No entries" : `No entries for ${name}`);
    return 0;
  } finally {
    await store.close();
  }
}

function jsonEntry(entry: EntryInfo) {
  return {
    name: entry.name,
    key: entry.key,
    size: entry.size,
    storage: entry.storage,
    origin: entry.origin,
    digest: entry.digest,
    costMs: entry.costMs,
    format: entry.format ?? null,
    createdAt: entry.createdAt.toISOString(),
    lastUsedAt: entry.lastUsedAt.toISOString(),
  };
}

function textRow(entry: EntryInfo, now: number): string {
  return [
    entry.name,
    entry.key,
    formatBytes(entry.size),
    entry.origin,
    age(now - entry.createdAt.getTime(), ""),
    age(now - entry.lastUsedAt.getTime(), " ago"),
  ].join("\t");
}

/** A duration since a time; a time in the future (written under a clock that was ahead) says so. */
function age(ms: number, suffix: string): string {
  return ms < 0 ? "in the future" : `${formatDuration(ms)}${suffix}`;
}
