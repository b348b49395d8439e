import { chmod, mkdir, rename, rm, stat } from "node:fs/promises";
import { createWriteStream, createReadStream } from "node:fs";
import { dirname, join, basename } from "node:path";
import { pipeline } from "node:stream/promises";
import { randomBytes } from "node:crypto";
import { VALUE_FORMAT, deserializeValue, serializeValue } from "../hash/index.js";
import type { PutOptions, Store, StoredValue } from "../store/index.js";
import { DirRef, FileRef, findRefs, type RefPath } from "./file-refs.js";

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
}

interface Envelope {
  value: unknown;
  refs: StoredRef[];
}

/**
 * Stores a task's result under `key`: plain values as one `cachet-value/1` entry; values holding
 * `file()`/`dir()` results store each file or tree as its own entry (`<key>.<n>`) first and then the
 * envelope, so the envelope is never visible before its content. Throws `UnserializableValueError` for values
 * that cannot be stored.
 */
export async function storeResult(store: Store, name: string, key: string, value: unknown, options: PutOptions): Promise<void> {
  const refs = findRefs(value);
  if (refs.length === 0) {
    await store.put(name, key, serializeValue(value), { ...options, format: VALUE_FORMAT });
    return;
  }
  const stored: StoredRef[] = [];
  let stripped = value;
  for (const [index, [path, ref]] of refs.entries()) {
    const refKey = `${key}.${index}`;
    let executable = false;
    if (ref instanceof DirRef) await store.putTree(name, refKey, ref.path, { origin: options.origin });
    else {
      executable = ((await stat(ref.path)).mode & 0o100) !== 0;
      await store.putStream(name, refKey, createReadStream(ref.path), { origin: options.origin });
    }
    stored.push({ path, kind: ref.kind, target: ref.path, key: refKey, executable });
    stripped = replaceAt(stripped, path, null);
  }
  const envelope: Envelope = { value: stripped, refs: stored };
  await store.put(name, key, serializeValue(envelope), { ...options, format: RESULT_WITH_REFS_FORMAT });
}

/**
 * Decodes a stored result; for results with file/dir references, restores each one at its original path
 * (trees linked out of the cache, files copied from their verified blob). Returns undefined when any part is
 * missing or unreadable: the caller treats that as a miss.
 */
export function loadResult(store: Store, name: string, stored: StoredValue): { value: unknown } | undefined | Promise<{ value: unknown } | undefined> {
  let decoded: unknown;
  try {
    decoded = deserializeValue(stored.data);
  } catch {
    return undefined;
  }
  if (stored.format === VALUE_FORMAT) return { value: decoded };
  return restoreRefs(store, name, decoded as Envelope);
}

async function restoreRefs(store: Store, name: string, envelope: Envelope): Promise<{ value: unknown } | undefined> {
  for (const ref of envelope.refs) {
    if (ref.kind === "dir") {
      const restored = await store.linkTree(name, ref.key, ref.target, { replace: true });
      if (!restored) return undefined;
    } else if (!(await restoreFile(store, name, ref))) return undefined;
  }
  let value = envelope.value;
  for (const ref of envelope.refs) value = replaceAt(value, ref.path, ref.kind === "dir" ? new DirRef(ref.target) : new FileRef(ref.target));
  return { value };
}

async function restoreFile(store: Store, name: string, ref: StoredRef): Promise<boolean> {
  const stream = await store.getStream(name, ref.key);
  if (!stream) return false;
  await mkdir(dirname(ref.target), { recursive: true });
  const staged = join(dirname(ref.target), `.${basename(ref.target)}.cachet-${randomBytes(4).toString("hex")}`);
  try {
    await pipeline(stream, createWriteStream(staged));
    if (ref.executable) await chmod(staged, 0o755);
    await rename(staged, ref.target);
    return true;
  } catch (error) {
    await rm(staged, { force: true });
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
