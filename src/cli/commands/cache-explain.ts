import type { EntryInfo, Store } from "../../store/index.js";
import { describeChanges, diffComponents, type KeyComponents } from "../../task/index.js";
import { commandRoot, openExistingStore, type CommandContext } from "../context.js";
import { formatDuration } from "../format.js";
import { printData } from "../output.js";
import { UsageError } from "../usage-error.js";

/**
 * `cachet cache explain NAME [KEY]`: what a task's entry (its most recent, or KEY) was keyed on, and which
 * component differs from the entry before it, i.e. why that call missed.
 */
export async function cacheExplainCommand(context: CommandContext, name: string, key: string | undefined, flags: { json?: boolean }): Promise<number> {
  const store = await openExistingStore(context);
  if (!store) throw new UsageError(`no entries for "${name}": there is no cache at ${commandRoot(context)}`);
  try {
    const entries = await keyedEntries(store, name);
    if (entries.length === 0) throw new UsageError(`no entries for "${name}" in ${store.root}`);
    const index = key === undefined ? 0 : entries.findIndex((entry) => entry.key === key);
    if (index < 0) throw new UsageError(`no entry ${name}/${key} in ${store.root}`);
    const entry = entries[index]!;
    const components = store.components(name, entry.key) as KeyComponents | undefined;
    const previous = entries[index + 1];
    const before = previous ? (store.components(name, previous.key) as KeyComponents | undefined) : undefined;
    const changes = components && before ? diffComponents(before, components) : [];
    const reason = previous === undefined
      ? "it is the only entry of this task"
      : describeChanges(changes, components === undefined || before === undefined).replace("the most recent entry", "the previous entry");
    if (flags.json) {
      printData(context.output, JSON.stringify({ name, key: entry.key, components: components ?? null, previousKey: previous?.key ?? null, changes, reason }, null, 2));
      return 0;
    }
    const now = Date.now();
    const lines = [
      `${name}/${entry.key}`,
      `  created ${formatDuration(now - entry.createdAt.getTime())} ago, last used ${formatDuration(now - entry.lastUsedAt.getTime())} ago, took ${formatDuration(entry.costMs)}`,
    ];
    if (components) {
      lines.push(`  version ${components.version} (${components.versionSource}${components.policies.length ? `: ${components.policies.join(", ")}` : ""})`);
      if (components.salt) lines.push(`  salt ${JSON.stringify(components.salt)}`);
      if (components.ignoredInputs.length) lines.push(`  ignored inputs: ${components.ignoredInputs.join(", ")}`);
      const inputs = Object.entries(components.inputs);
      const topLevel = inputs.filter(([path]) => !/[.[]/.test(path));
      for (const [path, digest] of topLevel) lines.push(`  input ${path} = ${digest.slice(0, 16)}`);
      if (inputs.length > topLevel.length) lines.push(`  (${inputs.length - topLevel.length} nested input paths recorded; --json shows them)`);
      if (components.receiver) lines.push(`  input this = ${components.receiver.slice(0, 16)}`);
      for (const [variable, digest] of Object.entries(components.captured ?? {})) lines.push(`  captured ${variable} = ${digest.slice(0, 16)}`);
    } else lines.push("  (no key components were recorded with this entry)");
    lines.push(previous ? `Compared with ${name}/${previous.key}: ${reason}` : `This is the only entry of ${name}.`);
    for (const change of changes) {
      const what =
        change.component === "input" ? `input ${change.path}` : change.component === "captured" ? `captured variable ${change.path}` : change.component;
      lines.push(`  ${what}: ${change.change}${change.before !== undefined || change.after !== undefined ? ` (${short(change.before)} → ${short(change.after)})` : ""}`);
    }
    for (const line of lines) printData(context.output, line);
    return 0;
  } finally {
    await store.close();
  }
}

/** The task's entries newest first, without the content entries of file/dir results (`<key>.<n>`). */
async function keyedEntries(store: Store, name: string): Promise<EntryInfo[]> {
  const entries: EntryInfo[] = [];
  for await (const entry of store.list(name)) if (!/\.\d+$/.test(entry.key)) entries.push(entry);
  return entries.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
}

function short(value: string | undefined): string {
  if (value === undefined) return "none";
  return value.length > 16 ? value.slice(0, 16) : JSON.stringify(value);
}
