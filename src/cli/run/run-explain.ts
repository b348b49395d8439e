import { diffCacheKeyComponents } from "../../sources/cache-keys.js";
import type { CacheStore } from "../../store/index.js";
import { isContentEntryKey } from "../../task/content-entries.js";
import type { RunKeyComponents } from "../commands/run-key.js";

/** True for the components a `cachet run` entry records. */
export function isRunKeyComponents(value: unknown): value is RunKeyComponents {
  const candidate = value as Partial<RunKeyComponents> | null;
  return (
    typeof candidate === "object" &&
    candidate !== null &&
    candidate.version === "cachet-run-key/2" &&
    Array.isArray(candidate.keySpecs) &&
    Array.isArray(candidate.command) &&
    typeof candidate.cwd === "string" &&
    Array.isArray(candidate.outs) &&
    typeof candidate.env === "object" &&
    candidate.env !== null
  );
}

/** The most recently used other run entry of `name` with recorded components, to compare a key with. */
export async function previousRunEntry(store: CacheStore, name: string, key: string): Promise<{ key: string; components: RunKeyComponents } | undefined> {
  for await (const entry of store.list(name)) {
    if (entry.key === key || isContentEntryKey(entry.key)) continue;
    const components = store.components(name, entry.key);
    if (isRunKeyComponents(components)) return { key: entry.key, components };
  }
  return undefined;
}

/** What differs between two run keys, one line each (`--env NODE_ENV changed`, `the command changed: …`). */
export function describeRunKeyChanges(before: RunKeyComponents, after: RunKeyComponents): string[] {
  const changes: string[] = [];
  const words = (command: readonly string[]) => JSON.stringify(command.join(" "));
  if (JSON.stringify(before.command) !== JSON.stringify(after.command)) changes.push(`the command changed: ${words(before.command)} → ${words(after.command)}`);
  if (before.cwd !== after.cwd) changes.push(`the working directory changed: ${before.cwd} → ${after.cwd}`);
  if (JSON.stringify(before.outs) !== JSON.stringify(after.outs)) changes.push(`the --out paths changed: ${before.outs.join(" ") || "none"} → ${after.outs.join(" ") || "none"}`);
  for (const name of [...new Set([...Object.keys(before.env), ...Object.keys(after.env)])].sort()) {
    const was = before.env[name];
    const now = after.env[name];
    if (was === now) continue;
    if (was === undefined) changes.push(`--env ${name} was added (${stateOf(now!)})`);
    else if (now === undefined) changes.push(`--env ${name} was removed (it was ${stateOf(was)})`);
    else if (was === "unset" || now === "unset") changes.push(`--env ${name} changed: ${stateOf(was)} → ${stateOf(now)}`);
    else changes.push(`--env ${name} changed value`);
  }
  if (JSON.stringify(before.keySpecs) !== JSON.stringify(after.keySpecs)) {
    changes.push(`the --key specifications changed: ${before.keySpecs.join(" ") || "none"} → ${after.keySpecs.join(" ") || "none"}`);
  } else if (before.keys !== undefined && after.keys !== undefined) {
    changes.push(...diffCacheKeyComponents(before.keys, after.keys).map((line) => `--key: ${line}`));
  }
  if (before.packageKeys !== undefined && after.packageKeys !== undefined) {
    changes.push(...diffCacheKeyComponents(before.packageKeys, after.packageKeys).map((line) => `package cache keys: ${line}`));
  }
  return changes;
}

function stateOf(value: string): string {
  return value === "unset" ? "unset" : "set";
}
