import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { lstat, rm, stat } from "node:fs/promises";
import { resolve } from "node:path";
import { pipeline } from "node:stream/promises";
import type { CacheStore } from "../../store/cache-store.js";
import { restoreFileInto } from "../../store/restore-swap.js";
import { contentEntryKey } from "../../task/content-entries.js";

/** One `--out` path as the run left it: a directory (a tree entry), a file (with its mode), or nothing. */
export type RunOutput = { path: string; kind: "dir" } | { path: string; kind: "file"; mode: number } | { path: string; kind: "absent" };

/** The content entry of output `index`: `<key>.1`, `<key>.2`, … (`<key>.0` is the log). */
export function outputEntryKey(key: string, index: number): string {
  return contentEntryKey(key, index + 1);
}

/**
 * Stores each `--out` path (relative to `cwd`) as a content entry of the run `key`: a directory as a tree, stamped
 * so the next hit leaves it alone while it is unchanged; a file as a value. A path the command did not make is
 * recorded as absent (a hit then removes what is there).
 */
export async function storeOutputs(store: CacheStore, name: string, key: string, outs: readonly string[], cwd: string): Promise<RunOutput[]> {
  const recorded: RunOutput[] = [];
  for (const [index, path] of outs.entries()) {
    const full = resolve(cwd, path);
    const stats = await stat(full).catch(() => undefined);
    if (stats === undefined) {
      recorded.push({ path, kind: "absent" });
    } else if (stats.isDirectory()) {
      await store.putTree(name, outputEntryKey(key, index), full, { origin: "computed", stampSource: true });
      recorded.push({ path, kind: "dir" });
    } else {
      await store.putStream(name, outputEntryKey(key, index), createReadStream(full), { origin: "computed" });
      recorded.push({ path, kind: "file", mode: stats.mode & 0o7777 });
    }
  }
  return recorded;
}

/**
 * True when every stored output of the run is in this machine's cache (checked before anything is restored). An
 * output only the shared tier behind the store holds is brought into the local cache first; one it lacks too
 * makes the run a miss.
 */
export async function outputsStored(store: CacheStore, name: string, key: string, outputs: readonly RunOutput[]): Promise<boolean> {
  for (const [index, output] of outputs.entries()) {
    if (output.kind === "absent") continue;
    const entryKey = outputEntryKey(key, index);
    if (store.info(name, entryKey) !== undefined) continue;
    if (store.local === undefined) return false;
    if (output.kind === "dir") {
      if ((await store.treePath(name, entryKey)) === undefined) return false;
    } else {
      const content = await store.getStream(name, entryKey);
      if (content === undefined) return false;
      content.destroy();
    }
    if (store.info(name, entryKey) === undefined) return false;
  }
  return true;
}

/**
 * Puts each output back at its path (relative to `cwd`), replacing what is there; a directory that still is what
 * the cache holds (a stat per entry) and a file with the same bytes and mode are left alone. False when an entry
 * turned out to be missing or damaged: the caller then runs the command.
 */
export async function restoreOutputs(store: CacheStore, name: string, key: string, outputs: readonly RunOutput[], cwd: string): Promise<boolean> {
  for (const [index, output] of outputs.entries()) {
    const full = resolve(cwd, output.path);
    const entryKey = outputEntryKey(key, index);
    if (output.kind === "absent") {
      await rm(full, { recursive: true, force: true });
    } else if (output.kind === "dir") {
      const tally = await store.linkTree(name, entryKey, full, { replace: true, purpose: "output", keepUnchanged: true });
      if (tally === undefined) return false;
    } else if (!(await restoreFile(store, name, entryKey, full, output.mode))) {
      return false;
    }
  }
  return true;
}

async function restoreFile(store: CacheStore, name: string, entryKey: string, full: string, mode: number): Promise<boolean> {
  const info = store.info(name, entryKey);
  if (info === undefined) return false;
  // Files are compared by content: there is no stamp for them, and an output file is usually small.
  // The file is this machine's: its lock is the local cache's, never a lease other machines would wait on.
  const lock = await (store.local ?? store).lockKey("cachet-run-output", full);
  try {
    const existing = await lstat(full).catch(() => undefined);
    if (existing?.isFile() && existing.size === info.size && (existing.mode & 0o7777) === mode && (await fileDigest(full)) === info.digest) {
      return true;
    }
    const content = await store.getStream(name, entryKey);
    if (content === undefined) return false;
    await restoreFileInto(full, content, mode);
    return true;
  } finally {
    lock.release();
  }
}

async function fileDigest(path: string): Promise<string> {
  const hash = createHash("sha256");
  await pipeline(createReadStream(path), hash);
  return hash.digest("hex");
}
