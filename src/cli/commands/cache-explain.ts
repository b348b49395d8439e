import { explainCacheKeyEntry, explainGitSource, formatCacheKeySpec, type CacheKeyExplanation, type GitSourceExplanation } from "../../sources/index.js";
import type { Store } from "../../store/index.js";
import { explainEntry, isContentEntryKey, type EntryExplanation } from "../../task/index.js";
import { commandRoot, openExistingStore, type CommandContext } from "../context.js";
import { formatDuration } from "../format.js";
import { printData } from "../output.js";
import { UsageError } from "../usage-error.js";
import { describeRunKeyChanges, isRunKeyComponents, previousRunEntry } from "../run/run-explain.js";

/**
 * `cachet cache explain NAME [KEY]`: what a task's (or a `cachet run`'s) entry (its most recently used, or KEY, which may be a unique
 * prefix as `cache ls` shows it) was keyed on, and which components differ from the task's most recently used
 * other entry. The library's {@link explainEntry} answers; this only finds the key and prints. An entry keyed by
 * cache keys (a local source, `cachet run`) is explained by {@link explainCacheKeyEntry} instead: what differs
 * between the files, directories, variables and commit it was keyed on and their state now.
 */
export async function cacheExplainCommand(context: CommandContext, name: string, key: string | undefined, flags: { json?: boolean }): Promise<number> {
  const store = await openExistingStore(context);
  if (!store) throw new UsageError(`no entries for "${name}": there is no cache at ${commandRoot(context)}`);
  try {
    const fullKey = key === undefined ? undefined : await resolveKey(store, name, key);
    const runLines = await explainRunEntry(store, name, fullKey, flags);
    if (runLines !== undefined) {
      for (const line of runLines) printData(context.output, line);
      return 0;
    }
    const gitExplanation = await explainGitSource(store, name, fullKey);
    if (gitExplanation) {
      if (flags.json) printData(context.output, JSON.stringify(jsonGitExplanation(gitExplanation), null, 2));
      else for (const line of textGitExplanation(gitExplanation)) printData(context.output, line);
      return 0;
    }
    const sourceExplanation = await explainCacheKeyEntry(store, name, fullKey);
    if (sourceExplanation) {
      if (flags.json) printData(context.output, JSON.stringify(jsonSourceExplanation(sourceExplanation), null, 2));
      else for (const line of textSourceExplanation(sourceExplanation)) printData(context.output, line);
      return 0;
    }
    const explanation = await explainEntry(store, name, fullKey);
    if (!explanation) {
      throw new UsageError(fullKey === undefined ? `no entries for "${name}" in ${store.root}` : `no task entry ${name}/${fullKey} in ${store.root}`);
    }
    if (flags.json) printData(context.output, JSON.stringify(jsonExplanation(explanation), null, 2));
    else for (const line of textExplanation(explanation)) printData(context.output, line);
    return 0;
  } finally {
    await store.close();
  }
}

/**
 * A `cachet run` entry (the most recent of `name`, or `key`): its key components and what differs from the name's
 * most recently used other run entry; undefined when the entry is not a run's.
 */
async function explainRunEntry(store: Store, name: string, key: string | undefined, flags: { json?: boolean }): Promise<string[] | undefined> {
  let entryKey = key;
  if (entryKey === undefined) {
    for await (const entry of store.list(name)) {
      if (!isContentEntryKey(entry.key)) {
        entryKey = entry.key;
        break;
      }
    }
  }
  if (entryKey === undefined) return undefined;
  const components = store.components(name, entryKey);
  if (!isRunKeyComponents(components)) return undefined;
  const info = store.info(name, entryKey)!;
  const previous = await previousRunEntry(store, name, entryKey);
  const changes = previous === undefined ? [] : describeRunKeyChanges(previous.components, components);
  if (flags.json) {
    const json = { ...entryJson({ name, key: entryKey, createdAt: info.createdAt, lastUsedAt: info.lastUsedAt }), components, comparedWith: previous?.key ?? null, changes };
    return [JSON.stringify(json, null, 2)];
  }
  const lines = [
    ...entryHeadLines({ name, key: entryKey, createdAt: info.createdAt, lastUsedAt: info.lastUsedAt }, " (cachet run)"),
    `  command ${JSON.stringify(components.command.join(" "))} in ${components.cwd}`,
  ];
  if (components.outs.length > 0) lines.push(`  outputs ${components.outs.join(" ")}`);
  for (const [variable, state] of Object.entries(components.env)) lines.push(`  env ${variable} ${state === "unset" ? "unset" : "set"}`);
  if (previous === undefined) lines.push(`This is the only entry of ${name}.`);
  else if (changes.length === 0) lines.push(`Compared with ${name}/${previous.key}: the same key components`);
  else lines.push(`Compared with ${name}/${previous.key}:`, ...changes.map((change) => `  ${change}`));
  return lines;
}

/** What every kind of explained entry has: its name, key, times and cost. */
interface ExplainedEntry {
  name: string;
  key: string;
  createdAt: Date;
  lastUsedAt: Date;
  costMs?: number | undefined;
}

/** The first lines of an explanation: the entry and its age (and, when recorded, how long it took to make). */
function entryHeadLines(entry: ExplainedEntry, label = ""): string[] {
  const now = Date.now();
  const took = entry.costMs === undefined ? "" : `, took ${formatDuration(entry.costMs)}`;
  return [
    `${entry.name}/${entry.key}${label}`,
    `  created ${formatDuration(now - entry.createdAt.getTime())} ago, last used ${formatDuration(now - entry.lastUsedAt.getTime())} ago${took}`,
  ];
}

/** The JSON fields every kind of explained entry has. */
function entryJson(entry: ExplainedEntry) {
  return {
    name: entry.name,
    key: entry.key,
    createdAt: entry.createdAt.toISOString(),
    lastUsedAt: entry.lastUsedAt.toISOString(),
    ...(entry.costMs === undefined ? {} : { costMs: entry.costMs }),
  };
}

/** `key` itself when it names an entry of the task, else the one task entry whose key starts with it. */
async function resolveKey(store: Store, name: string, key: string): Promise<string> {
  if (store.info(name, key)) return key;
  const prefix = key.replace(/…$/, "");
  const matches: string[] = [];
  if (prefix !== "") {
    for await (const entry of store.list(name)) {
      if (entry.key.startsWith(prefix) && !isContentEntryKey(entry.key)) matches.push(entry.key);
      if (matches.length > 1) break;
    }
  }
  if (matches.length === 1) return matches[0]!;
  if (matches.length > 1) throw new UsageError(`key ${JSON.stringify(key)} matches several entries of "${name}": give more of it`);
  throw new UsageError(`no entry ${name}/${key} in ${store.root}`);
}

function jsonExplanation(explanation: EntryExplanation) {
  return {
    ...entryJson({ ...explanation, name: explanation.task }),
    components: explanation.components ?? null,
    comparedWith: explanation.comparedWith?.key ?? null,
    changes: explanation.changes,
    reason: explanation.reason,
  };
}

function textExplanation(explanation: EntryExplanation): string[] {
  const { task, components, comparedWith, changes } = explanation;
  const lines = entryHeadLines({ ...explanation, name: task });
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
  lines.push(comparedWith ? `Compared with ${task}/${comparedWith.key}: ${explanation.reason}` : `This is the only entry of ${task}.`);
  for (const change of changes) {
    const what = change.component === "input" ? `input ${change.path}` : change.component === "captured" ? `captured variable ${change.path}` : change.component;
    const values = change.before !== undefined || change.after !== undefined ? ` (${short(change.before)} → ${short(change.after)})` : "";
    lines.push(`  ${what}: ${change.change}${values}`);
  }
  return lines;
}

function jsonSourceExplanation(explanation: CacheKeyExplanation) {
  return {
    ...entryJson(explanation),
    components: explanation.components,
    currentKey: explanation.current?.key ?? null,
    changes: explanation.changes,
    reason: explanation.reason,
  };
}

function textSourceExplanation(explanation: CacheKeyExplanation): string[] {
  const { components, current, changes } = explanation;
  const lines = [
    ...entryHeadLines(explanation),
    `  cache keys in ${components.baseDir}: ${components.specs.map(formatCacheKeySpec).join(" ") || "none"}`,
  ];
  if (current) {
    lines.push(`Compared with the files now: ${explanation.reason}`);
    for (const change of changes) lines.push(`  ${change}`);
    return lines;
  }
  lines.push(`Cannot compare with the files now: ${explanation.reason}. Recorded:`);
  const files = Object.entries(components.files);
  for (const [path, digest] of files.slice(0, 20)) lines.push(`  file ${path} ${digest === null ? "absent" : digest.slice(0, 16)}`);
  if (files.length > 20) lines.push(`  (${files.length - 20} more files; --json shows them)`);
  for (const [path, exists] of Object.entries(components.dirs)) lines.push(`  directory ${path} ${exists ? "exists" : "absent"}`);
  if (components.git) {
    if (!components.git.repository) lines.push("  git: no repository");
    if (components.git.commit !== undefined) lines.push(`  git commit ${components.git.commit ?? "none"}`);
    for (const [tag, id] of Object.entries(components.git.tags ?? {})) lines.push(`  git tag ${tag} ${id.slice(0, 12)}`);
  }
  for (const [variable, digest] of Object.entries(components.env)) lines.push(`  env ${variable} ${digest === null ? "unset" : "set"}`);
  return lines;
}

function short(value: string | undefined): string {
  if (value === undefined) return "none";
  return value.length > 16 ? value.slice(0, 16) : JSON.stringify(value);
}

function jsonGitExplanation(explanation: GitSourceExplanation) {
  return {
    ...entryJson(explanation),
    components: explanation.components,
    comparedWith: explanation.comparedWith?.key ?? null,
    changes: explanation.changes,
    reason: explanation.reason,
  };
}

/** A git source's checkout: its URL, ref and commit, and what moved since the entry compared with. */
function textGitExplanation(explanation: GitSourceExplanation): string[] {
  const { name, components, comparedWith, changes } = explanation;
  const lines = [
    ...entryHeadLines(explanation),
    `  git ${components.url} ref ${components.ref} = commit ${components.commit}`,
  ];
  lines.push(comparedWith ? `Compared with ${name}/${comparedWith.key}: ${explanation.reason}` : `This is the only entry of ${name}.`);
  for (const change of changes) lines.push(`  ${change.component}: changed (${change.before} → ${change.after})`);
  return lines;
}
