import type { EntryInfo } from "../../store/index.js";
import { contentEntryOwner } from "../../task/index.js";
import { ContentEntries } from "../content-entries.js";
import { openExistingStore, type CommandContext } from "../context.js";
import { formatAge, formatBytes, shortEntryKey } from "../format.js";
import { printNote } from "../output.js";
import { TableWriter } from "../table.js";

const HEADER = ["NAME", "KEY", "SIZE", "ORIGIN", "AGE", "LAST USE"] as const;

/**
 * `cachet cache ls [NAME] [--json]`: entries with name, key, size, origin, age and last use, most recently used
 * first. A task result with files shows its content entries on lines under it (and its size includes them). On a
 * terminal the columns are aligned and long keys shortened; piped, rows are tab-separated with whole keys.
 */
export async function cacheLsCommand(context: CommandContext, name: string | undefined, flags: { json?: boolean }): Promise<number> {
  const store = await openExistingStore(context);
  const out = context.output.stdout;
  if (!store) {
    if (flags.json) out.write("[]\n");
    return 0;
  }
  try {
    const contents = new ContentEntries(store);
    const terminal = out.isTTY === true;
    const table = new TableWriter(out, terminal, HEADER, ["left", "left", "right"]);
    const json = flags.json ? new JsonArrayWriter(out) : undefined;
    const now = Date.now();
    let count = 0;
    for await (const entry of store.list(name)) {
      if (contents.claimed(entry)) continue;
      const content = contents.of(entry);
      count++;
      if (json) json.item(jsonEntry(entry, content));
      else {
        table.row(textRow(entry, content, now, terminal));
        for (const part of content) table.row(contentRow(part, terminal));
      }
    }
    json?.end();
    table.end();
    if (!flags.json && count === 0) printNote(context.output, name === undefined ? "No entries" : `No entries for ${name}`);
    return 0;
  } finally {
    await store.close();
  }
}

function textRow(entry: EntryInfo, content: readonly EntryInfo[], now: number, terminal: boolean): string[] {
  const size = content.reduce((total, part) => total + part.size, entry.size);
  return [
    entry.name,
    terminal ? shortEntryKey(entry.key) : entry.key,
    formatBytes(size),
    entry.origin,
    formatAge(now - entry.createdAt.getTime()),
    formatAge(now - entry.lastUsedAt.getTime(), " ago"),
  ];
}

/** A content entry's line under its task entry: `.0 dir  4.0MiB`. */
function contentRow(part: EntryInfo, terminal: boolean): string[] {
  const index = contentEntryOwner(part.key)?.index ?? 0;
  const label = `.${index} ${part.storage === "tree" ? "dir" : "file"}`;
  return ["", terminal ? `  ${label}` : label, formatBytes(part.size), "", "", ""];
}

function jsonEntry(entry: EntryInfo, content: readonly EntryInfo[]) {
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
    ...(content.length > 0 && {
      content: content.map((part) => ({ key: part.key, size: part.size, storage: part.storage, digest: part.digest })),
    }),
  };
}

/** A JSON array written item by item (a listing can be long), in 64 KiB writes. */
class JsonArrayWriter {
  private pending = "[";
  private count = 0;

  constructor(private readonly out: { write(text: string): unknown }) {}

  item(value: unknown): void {
    this.pending += `${this.count === 0 ? "\n" : ",\n"}${JSON.stringify(value)}`;
    this.count++;
    if (this.pending.length >= 64 * 1024) {
      this.out.write(this.pending);
      this.pending = "";
    }
  }

  end(): void {
    this.out.write(`${this.pending}${this.count === 0 ? "]\n" : "\n]\n"}`);
    this.pending = "";
  }
}
