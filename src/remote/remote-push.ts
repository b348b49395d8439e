import { createHash } from "node:crypto";
import { hashTree, sha256Hex } from "../hash/index.js";
import type { CacheStore, EntryInfo, PutOptions } from "../store/cache-store.js";
import { MACHINE_LOCAL_NAMES } from "../store/machine-local.js";
import type { RemoteStore } from "./remote-store.js";
import { packTree } from "./tree-archive.js";

/** Options of {@link pushToRemote}. */
export interface PushOptions {
  /** Only entries of these names (default: every name). */
  names?: readonly string[] | undefined;
  /** Names never pushed, besides the machine-local ones (the file-stat memo of cache keys), which never are. */
  exclude?: readonly string[] | undefined;
  /** Say what would be sent, and send nothing. */
  dryRun?: boolean | undefined;
  /** Called once per entry looked at, with what happened to it. */
  onEntry?: ((entry: EntryInfo, outcome: PushOutcome) => void) | undefined;
}

/** What happened to one local entry: sent (or would be, in a dry run), already there, or not readable here. */
export type PushOutcome = { kind: "pushed" } | { kind: "present" } | { kind: "skipped"; reason: string };

/** What {@link pushToRemote} did. */
export interface PushResult {
  /** Entries sent (or, in a dry run, that would be). */
  pushed: number;
  /** Their bytes. */
  bytes: number;
  /** Entries the shared tier already held with the same content. */
  present: number;
  /** Local entries that could not be read (damaged or removed meanwhile): nothing sent for them. */
  skipped: number;
}

/**
 * Sends the local entries the shared tier lacks, or holds with other content, most recently used first: what the
 * background uploads dropped (the remote was down, the queue full, the process ended before its flush). Each entry
 * is read through the local store's checks, so a damaged local entry is skipped, never sent (as is one removed or
 * replaced after it was listed); the remote commits each one whole. A failure of the remote itself is thrown.
 */
export async function pushToRemote(local: CacheStore, remote: RemoteStore, options: PushOptions = {}): Promise<PushResult> {
  const result: PushResult = { pushed: 0, bytes: 0, present: 0, skipped: 0 };
  const excluded = new Set([...MACHINE_LOCAL_NAMES, ...(options.exclude ?? [])]);
  // A name given twice is walked once (its entries would be counted twice).
  const names = options.names?.length ? [...new Set(options.names)] : [undefined];
  for (const name of names) {
    for await (const entry of local.list(name)) {
      if (excluded.has(entry.name)) continue;
      const outcome = await pushEntry(local, remote, entry, options.dryRun === true);
      if (outcome.kind === "pushed") {
        result.pushed++;
        result.bytes += entry.size;
      } else result[outcome.kind]++;
      options.onEntry?.(entry, outcome);
    }
  }
  return result;
}

const REMOVED: PushOutcome = { kind: "skipped", reason: "removed from the local cache meanwhile" };
const REPLACED: PushOutcome = { kind: "skipped", reason: "replaced in the local cache meanwhile (a later push sends the new entry)" };

async function pushEntry(local: CacheStore, remote: RemoteStore, entry: EntryInfo, dryRun: boolean): Promise<PushOutcome> {
  const { name, key } = entry;
  const there = await remote.lookup(name, key);
  if (holds(there, entry)) return { kind: "present" };
  if (entry.storage === "tree" && there?.storage === "tree" && (await packsTo(local, entry, there.digest))) return { kind: "present" };
  if (dryRun) return { kind: "pushed" };
  // The listing is a snapshot: the entry may have gone, or been replaced (by another kind, too), since it was
  // listed. Only the listed entry is sent, with its own metadata; a replacement is the next push's to send.
  const current = local.info(name, key);
  if (current === undefined) return REMOVED;
  if (current.storage !== entry.storage || current.digest !== entry.digest || current.format !== entry.format) return REPLACED;
  try {
    return await sendEntry(local, remote, entry);
  } catch (error) {
    if ((error as { code?: unknown }).code === "CACHET_ENTRY_KIND") return REPLACED;
    throw error;
  }
}

async function sendEntry(local: CacheStore, remote: RemoteStore, entry: EntryInfo): Promise<PushOutcome> {
  const { name, key } = entry;
  const meta: PutOptions = { origin: entry.origin, costMs: entry.costMs, format: entry.format, components: local.components(name, key) };
  if (entry.storage === "tree") {
    const dir = await local.treePath(name, key);
    if (dir === undefined) return local.info(name, key) === undefined ? { kind: "skipped", reason: "the local tree no longer matches its manifest" } : REPLACED;
    // The local check is by stats (a file edited in place with its size and mtime put back passes it). What goes to
    // the shared tier is served to every machine, so the tree is re-hashed against its digest first.
    const actual = await hashTree(dir).then(
      (hashed) => hashed.digest,
      (error: unknown) => `unreadable (${(error as Error).message})`,
    );
    if (actual !== entry.digest) {
      // As a blob that fails its digest: the entry is dropped here too (unless it was replaced meanwhile).
      if (local.info(name, key)?.digest !== entry.digest) return REPLACED;
      await local.delete(name, key);
      return { kind: "skipped", reason: `the local tree no longer matches its digest (found ${actual}); the entry was dropped` };
    }
    await remote.putTree(name, key, dir, meta);
    return { kind: "pushed" };
  }
  if (entry.storage === "inline") {
    const value = await local.getValue(name, key);
    if (value === undefined) return REMOVED;
    if (sha256Hex(value.data) !== entry.digest) return REPLACED;
    await remote.put(name, key, value.data, { ...meta, digest: entry.digest });
    return { kind: "pushed" };
  }
  const stream = await local.getStream(name, key);
  if (stream === undefined) return REMOVED;
  try {
    // The remote checks the bytes against the listed digest: a replacement read instead is refused, not sent.
    await remote.putStream(name, key, stream, { ...meta, digest: entry.digest });
  } catch (error) {
    // The local bytes failed their digest as they were read: the entry is dropped locally and nothing was committed.
    if ((error as { code?: unknown }).code === "CACHET_INTEGRITY") return { kind: "skipped", reason: (error as Error).message };
    throw error;
  } finally {
    stream.destroy();
  }
  return { kind: "pushed" };
}

/**
 * Whether the local tree packs to the archive `archiveDigest` the remote holds for its key: a tree this machine
 * got from the shared tier is newer here than there, and is not sent back. Any failure is a "no" (the push then
 * reads the tree through its checks and reports what is wrong).
 */
async function packsTo(local: CacheStore, entry: EntryInfo, archiveDigest: string): Promise<boolean> {
  try {
    const dir = await local.treePath(entry.name, entry.key);
    if (dir === undefined) return false;
    const hash = createHash("sha256");
    for await (const piece of packTree(dir)) hash.update(piece);
    return hash.digest("hex") === archiveDigest;
  } catch {
    return false;
  }
}

/**
 * Whether the remote's entry of the key is the local one. Values compare by content digest. A tree is stored
 * remotely as an archive, whose digest is not the tree's: it counts as there when the remote's tree was written no
 * earlier than the local one (a later local rewrite of the key, as `--refresh` makes, is sent again), or, when
 * the remote's is older, when the local tree packs to the same archive (see packsTo).
 */
function holds(remote: EntryInfo | undefined, entry: EntryInfo): boolean {
  if (remote === undefined) return false;
  if (entry.storage === "tree") return remote.storage === "tree" && remote.createdAt.getTime() >= entry.createdAt.getTime();
  return remote.storage !== "tree" && remote.digest === entry.digest;
}
