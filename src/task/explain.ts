import type { CacheStore, EntryInfo } from "../store/index.js";
import { TaskDefinitionError } from "./errors.js";
import { asKeyComponents, type KeyComponents } from "./task-key.js";
import { cut } from "./cache-failures.js";
import { isContentEntryKey } from "./content-entries.js";
import { taskDefinition, type TaskDefinition } from "./task.js";

/** One key component that differs between two calls of a task. */
export interface KeyChange {
  component: "task" | "version" | "salt" | "policies" | "ignoredInputs" | "captured" | "input";
  /** For inputs: the input path (`text`, `config.model`, `items[2]`, `this`); for captured variables: the name. */
  path?: string;
  /** What changed, in words (`added`, `removed`, `changed`). */
  change: "changed" | "added" | "removed";
  before?: string;
  after?: string;
}

/** The answer of {@link explain}. */
export interface Explanation {
  task: string;
  key: string;
  wouldHit: boolean;
  /** One sentence: why it would hit or miss. */
  reason: string;
  /** Against the task's most recent entry, when the call would miss. */
  changes: KeyChange[];
  /** The entry compared against. */
  comparedWith?: { key: string; createdAt: Date; lastUsedAt: Date };
}

/** The answer of {@link explainEntry}. */
export interface EntryExplanation {
  task: string;
  key: string;
  createdAt: Date;
  lastUsedAt: Date;
  /** How long the call that made the entry ran. */
  costMs: number;
  /** What the entry was keyed on; undefined when its writer recorded nothing. */
  components: KeyComponents | undefined;
  /** One sentence: how it differs from the entry compared with. */
  reason: string;
  changes: KeyChange[];
  /** The task's most recently used other entry, the one compared with (as {@link explain} compares a call). */
  comparedWith?: { key: string; createdAt: Date; lastUsedAt: Date };
}

/**
 * Says whether `taskFn(...args)` would hit, and if not, which key components differ from the task's most
 * recently used entry (its version, salt, policies, a captured variable, or which input, by path). Runs nothing
 * and changes nothing. For a task whose function uses `this`, call it as `explain.call(receiver, taskFn, …args)`.
 * A cache that cannot be read is not an error here either: the answer is a miss whose reason says why.
 */
export async function explain<A extends unknown[]>(this: unknown, taskFn: (...args: A) => unknown, ...args: A): Promise<Explanation> {
  const definition = taskDefinition(taskFn);
  if (!definition) throw new TaskDefinitionError("explain(fn, …args): fn is not a function made by task()");
  if (!definition.cache) {
    return { task: definition.name, key: "", wouldHit: false, reason: "the task is defined with cache: false", changes: [] };
  }
  const { key, components } = await definition.keyOf(args, this);
  try {
    return await compare(definition, key, components());
  } catch (error) {
    const reason = `the cache cannot be read, so the call would run: ${cut(error instanceof Error ? error.message : String(error), 300)}`;
    return { task: definition.name, key, wouldHit: false, reason, changes: [] };
  }
}

async function compare(definition: TaskDefinition, key: string, current: KeyComponents): Promise<Explanation> {
  const store = await definition.store();
  const exact = store.info(definition.name, key);
  if (exact && definition.usable(exact) && !definition.refresh) {
    return { task: definition.name, key, wouldHit: true, reason: `an entry for this call exists (created ${exact.createdAt.toISOString()})`, changes: [] };
  }
  if (exact && definition.refresh) {
    return { task: definition.name, key, wouldHit: false, reason: "refresh is on for this task, so it runs and replaces the entry", changes: [] };
  }
  if (exact) {
    const created = exact.createdAt.getTime();
    const reason = !definition.usable(exact, created)
      ? `its entry was written in a format this version cannot read (${exact.format ?? "none"})`
      : created > Date.now()
        ? `its entry is dated in the future (created ${exact.createdAt.toISOString()}), so its age cannot be trusted against maxAge`
        : `its entry is older than maxAge (created ${exact.createdAt.toISOString()})`;
    return { task: definition.name, key, wouldHit: false, reason, changes: [] };
  }
  const previous = await mostRecentOther(store, definition.name, key);
  if (!previous) {
    return { task: definition.name, key, wouldHit: false, reason: `there are no entries for task "${definition.name}" yet`, changes: [] };
  }
  const before = asKeyComponents(store.components(definition.name, previous.key));
  const changes = before ? diffComponents(before, current) : [];
  return {
    task: definition.name,
    key,
    wouldHit: false,
    reason: describeChanges(changes, before === undefined),
    changes,
    comparedWith: { key: previous.key, createdAt: previous.createdAt, lastUsedAt: previous.lastUsedAt },
  };
}

/**
 * Explains a stored entry of task `name` without the task function: what it was keyed on, and which key
 * components differ from the task's most recently used other entry (the entry {@link explain} compares a call
 * with, so both mean the same by "the most recent entry"). `key` defaults to the task's most recently used
 * entry. Undefined when the task has no such entry. Reads only; a use is not recorded.
 */
export async function explainEntry(store: CacheStore, name: string, key?: string): Promise<EntryExplanation | undefined> {
  const entry = key === undefined ? await mostRecentOther(store, name, undefined) : store.info(name, key);
  if (!entry || isContentEntryKey(entry.key)) return undefined;
  const components = asKeyComponents(store.components(name, entry.key));
  const base = { task: name, key: entry.key, createdAt: entry.createdAt, lastUsedAt: entry.lastUsedAt, costMs: entry.costMs, components };
  const other = await mostRecentOther(store, name, entry.key);
  if (!other) return { ...base, reason: `it is the only entry of task "${name}"`, changes: [] };
  const comparedWith = { key: other.key, createdAt: other.createdAt, lastUsedAt: other.lastUsedAt };
  if (!components) return { ...base, reason: "this entry has no recorded key components to compare", changes: [], comparedWith };
  const before = asKeyComponents(store.components(name, other.key));
  const changes = before ? diffComponents(before, components) : [];
  return { ...base, reason: describeChanges(changes, before === undefined), changes, comparedWith };
}

/**
 * The task's most recently used entry other than `key`: what a call or an entry is compared with. Content
 * entries of file/dir results (`<key>.<n>`) have no key components and do not count.
 */
async function mostRecentOther(store: CacheStore, name: string, key: string | undefined): Promise<EntryInfo | undefined> {
  for await (const entry of store.list(name)) {
    if (entry.key !== key && !isContentEntryKey(entry.key)) return entry;
  }
  return undefined;
}

/** Component-by-component differences between two calls (inputs by their deepest differing paths). */
export function diffComponents(before: KeyComponents, after: KeyComponents): KeyChange[] {
  const changes: KeyChange[] = [];
  if (before.task !== after.task) changes.push({ component: "task", change: "changed", before: before.task, after: after.task });
  if (before.salt !== after.salt) changes.push({ component: "salt", change: "changed", before: before.salt, after: after.salt });
  if (JSON.stringify(before.policies) !== JSON.stringify(after.policies)) {
    changes.push({ component: "policies", change: "changed", before: before.policies.join(", "), after: after.policies.join(", ") });
  }
  // With captured variables the version mixes in their values; the policies' own version says whether the code changed.
  const codeBefore = before.policyVersion ?? before.version;
  const codeAfter = after.policyVersion ?? after.version;
  if (codeBefore !== codeAfter && before.salt === after.salt) {
    changes.push({ component: "version", change: "changed", before: codeBefore, after: codeAfter });
  }
  const capturedBefore = before.captured ?? {};
  const capturedAfter = after.captured ?? {};
  for (const name of [...new Set([...Object.keys(capturedBefore), ...Object.keys(capturedAfter)])].sort()) {
    if (capturedBefore[name] === capturedAfter[name]) continue;
    const change = !(name in capturedBefore) ? "added" : !(name in capturedAfter) ? "removed" : "changed";
    changes.push({ component: "captured", path: name, change, before: capturedBefore[name], after: capturedAfter[name] });
  }
  if (JSON.stringify([...before.ignoredInputs].sort()) !== JSON.stringify([...after.ignoredInputs].sort())) {
    changes.push({
      component: "ignoredInputs",
      change: "changed",
      before: before.ignoredInputs.join(", "),
      after: after.ignoredInputs.join(", "),
    });
  }
  if (before.receiver !== after.receiver) {
    const change = before.receiver === undefined ? "added" : after.receiver === undefined ? "removed" : "changed";
    changes.push({ component: "input", path: "this", change, before: before.receiver, after: after.receiver });
  }
  const paths = new Set([...Object.keys(before.inputs), ...Object.keys(after.inputs)]);
  const differing = [...paths].filter((path) => before.inputs[path] !== after.inputs[path]);
  // Report the deepest paths only: `config.model` rather than also `config`.
  for (const path of differing) {
    const deeper = differing.some((other) => other !== path && (other.startsWith(`${path}.`) || other.startsWith(`${path}[`)));
    if (deeper) continue;
    const change = !(path in before.inputs) ? "added" : !(path in after.inputs) ? "removed" : "changed";
    changes.push({ component: "input", path, change, before: before.inputs[path], after: after.inputs[path] });
  }
  return changes;
}

/** One sentence for a list of changes. */
export function describeChanges(changes: KeyChange[], unknown = false): string {
  if (unknown) return "the most recent entry has no recorded key components to compare with";
  if (changes.length === 0) return "no component differs from the most recent entry (it may have been removed)";
  const parts = changes.map((change) => {
    if (change.component === "input") return `input "${change.path}" ${change.change}`;
    if (change.component === "captured") return `captured variable "${change.path}" ${change.change}`;
    if (change.component === "version") return "the version changed (the function or what its policies hash changed)";
    return `the ${change.component === "ignoredInputs" ? "ignored inputs" : change.component} changed`;
  });
  return `it differs from the most recent entry: ${parts.join("; ")}`;
}
