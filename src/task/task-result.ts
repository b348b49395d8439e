import { stat } from "node:fs/promises";
import { createReadStream } from "node:fs";
import { VALUE_FORMAT, deserializeValue, serializeValue } from "../hash/index.js";
import type { CacheStore, PutOptions, StoredValue } from "../store/index.js";
import { restoreFileInto } from "../store/restore-swap.js";
import { contentEntryKey } from "./content-entries.js";
import { DirRef, FileRef, assertRestorableDir, findRefs, refFailure, type ContentRef, type RefPath } from "./file-refs.js";

/** Format of a result holding file or directory references: an envelope (in `cachet-value/1`) plus content entries. */
export const RESULT_WITH_REFS_FORMAT = "cachet-task-result/1";

/** The formats a task can read back. Anything else is a miss, never a crash. */
export const KNOWN_RESULT_FORMATS: ReadonlySet<string> = new Set([VALUE_FORMAT, RESULT_WITH_REFS_FORMAT]);

interface StoredRef {
  path: RefPath;
  kind: "file" | "dir";
  target: string;
  key: string;
  executable: boolean;
  /** The file's mode when stored (absent in envelopes of older builds: then `executable` decides). */
  mode?: number;
}

interface Envelope {
  value: unknown;
  refs: StoredRef[];
}

/**
 * Stores a task's result under `key`: plain values as one `cachet-value/1` entry; values holding
 * `file()`/`dir()` results store each file or tree as its own entry (`<key>.<n>`) first and then the
 * envelope, so the envelope is never visible before its content. Throws `UnserializableValueError` for values
 * that cannot be stored, and `FileRefError` for a reference to a file that is not there (or not of its kind).
 */
export async function storeResult(store: CacheStore, name: string, key: string, value: unknown, options: PutOptions): Promise<void> {
  const refs = findRefs(value);
  if (refs.length === 0) {
    await store.put(name, key, serializeValue(value), { ...options, format: VALUE_FORMAT });
    return;
  }
  for (const [path, ref] of refs) assertRestorableDir(path, ref);
  const stored: StoredRef[] = [];
  let stripped = value;
  for (const [index, [path, ref]] of refs.entries()) {
    try {
      stored.push(await storeRef(store, name, contentEntryKey(key, index), path, ref, options));
    } catch (error) {
      throw await refFailure("result", path, ref, error);
    }
    stripped = replaceAt(stripped, path, null);
  }
  const envelope: Envelope = { value: stripped, refs: stored };
  await store.put(name, key, serializeValue(envelope), { ...options, format: RESULT_WITH_REFS_FORMAT });
}

/** Stores one file or directory of a result as content entry `refKey`. */
async function storeRef(store: CacheStore, name: string, refKey: string, path: RefPath, ref: ContentRef, options: PutOptions): Promise<StoredRef> {
  if (ref instanceof DirRef) {
    await store.putTree(name, refKey, ref.path, { origin: options.origin });
    return { path, kind: ref.kind, target: ref.path, key: refKey, executable: false };
  }
  const mode = (await stat(ref.path)).mode & 0o7777;
  await store.putStream(name, refKey, createReadStream(ref.path), { origin: options.origin });
  return { path, kind: ref.kind, target: ref.path, key: refKey, executable: (mode & 0o100) !== 0, mode };
}

/**
 * Decodes a stored result; for results with file/dir references, restores each one at its original path, with
 * its original modes (trees as writable outputs: cloned or copied, hard-linked only if `CACHET_LINK_MODE` says
 * so; files copied from their verified blob), each swapped in whole by rename. Returns undefined when any part
 * is missing, unreadable or changed in the cache: the caller treats that as a miss.
 */
export function loadResult(store: CacheStore, name: string, stored: StoredValue): { value: unknown } | undefined | Promise<{ value: unknown } | undefined> {
  let decoded: unknown;
  try {
    decoded = deserializeValue(stored.data);
  } catch {
    return undefined;
  }
  if (stored.format === VALUE_FORMAT) return { value: decoded };
  return restoreRefs(store, name, decoded as Envelope);
}

async function restoreRefs(store: CacheStore, name: string, envelope: Envelope): Promise<{ value: unknown } | undefined> {
  for (const ref of envelope.refs) {
    if (ref.kind === "dir") {
      const restored = await store.linkTree(name, ref.key, ref.target, { replace: true, purpose: "output" });
      if (!restored) return undefined;
    } else if (!(await restoreFile(store, name, ref))) return undefined;
  }
  let value = envelope.value;
  for (const ref of envelope.refs) value = replaceAt(value, ref.path, ref.kind === "dir" ? new DirRef(ref.target) : new FileRef(ref.target));
  return { value };
}

async function restoreFile(store: CacheStore, name: string, ref: StoredRef): Promise<boolean> {
  const stream = await store.getStream(name, ref.key);
  if (!stream) return false;
  const mode = ref.mode ?? (ref.executable ? 0o755 : 0o644);
  try {
    await restoreFileInto(ref.target, stream, mode);
    return true;
  } catch (error) {
    if ((error as { code?: string }).code === "CACHET_INTEGRITY") return false;
    throw error;
  }
}

/** A copy of `root` with the value at `path` replaced; containers along the path are copied, the rest shared. */
function replaceAt(root: unknown, path: RefPath, replacement: unknown): unknown {
  if (path.length === 0) return replacement;
  const [head, ...rest] = path;
  if (Array.isArray(root)) {
    const copy = root.slice();
    copy[head as number] = replaceAt(root[head as number], rest, replacement);
    return copy;
  }
  const object = root as Record<string, unknown>;
  return { ...object, [head as string]: replaceAt(object[head as string], rest, replacement) };
}
