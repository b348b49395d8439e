import type { CacheStore, EntryInfo } from "../store/index.js";
import type { GitSourceComponents } from "./git-source.js";

/** What differs between two checkouts of a git source: the URL, the ref asked for, or the commit. */
export interface GitSourceChange {
  component: "url" | "ref" | "commit";
  before: string;
  after: string;
}

/** A git source's entry, what it was keyed on, and how it differs from the name's most recently used other entry. */
export interface GitSourceExplanation {
  name: string;
  /** The commit. */
  key: string;
  createdAt: Date;
  lastUsedAt: Date;
  costMs: number;
  components: GitSourceComponents;
  comparedWith?: { key: string; components: GitSourceComponents | undefined } | undefined;
  changes: GitSourceChange[];
  /** One sentence: how it differs from the entry compared with. */
  reason: string;
}

/** `value` when it is the key components {@link gitSource} records, else undefined. */
export function asGitSourceComponents(value: unknown): GitSourceComponents | undefined {
  const candidate = value as Partial<GitSourceComponents> | null | undefined;
  if (typeof candidate !== "object" || candidate === null || candidate.source !== "git") return undefined;
  const fields = [candidate.url, candidate.ref, candidate.commit, candidate.gitDatabase];
  return fields.every((field) => typeof field === "string") ? (candidate as GitSourceComponents) : undefined;
}

/**
 * Explains a git source's entry (`key` a commit; default the name's most recently used entry): its URL, ref and
 * commit, and which of them differ from the name's most recently used other entry. Undefined when the entry is
 * not a git source's. Reads only; a use is not recorded.
 */
export async function explainGitSource(store: CacheStore, name: string, key?: string): Promise<GitSourceExplanation | undefined> {
  const entry = key === undefined ? await mostRecentOther(store, name, undefined) : store.info(name, key);
  if (!entry) return undefined;
  const components = asGitSourceComponents(store.components(name, entry.key));
  if (!components) return undefined;
  const base = { name, key: entry.key, createdAt: entry.createdAt, lastUsedAt: entry.lastUsedAt, costMs: entry.costMs, components };
  const other = await mostRecentOther(store, name, entry.key);
  if (!other) return { ...base, changes: [], reason: `it is the only checkout of "${name}"` };
  const before = asGitSourceComponents(store.components(name, other.key));
  const comparedWith = { key: other.key, components: before };
  if (!before) return { ...base, comparedWith, changes: [], reason: "the entry compared with is not a git checkout" };
  const changes = (["url", "ref", "commit"] as const)
    .filter((component) => before[component] !== components[component])
    .map((component) => ({ component, before: before[component], after: components[component] }));
  return { ...base, comparedWith, changes, reason: describe(changes) };
}

function describe(changes: GitSourceChange[]): string {
  const url = changes.find((change) => change.component === "url");
  if (url) return `the repository URL changed (${url.before} → ${url.after})`;
  const ref = changes.find((change) => change.component === "ref");
  if (ref) return `the ref asked for changed (${ref.before} → ${ref.after})`;
  return changes.length > 0 ? `the ref moved to another commit` : "nothing recorded differs";
}

async function mostRecentOther(store: CacheStore, name: string, key: string | undefined): Promise<EntryInfo | undefined> {
  for await (const entry of store.list(name)) if (entry.key !== key) return entry;
  return undefined;
}
