import { createHash } from "node:crypto";
import { rm } from "node:fs/promises";
import { readBlob } from "./blobs.js";
import { BlobIntegrityError } from "./errors.js";
import type { Store } from "./store.js";
import { emptyTally, type Reporter, type Tally } from "./tally.js";
import { readManifest, treeManifestPath } from "./tree-manifest.js";
import { rebuildManifest } from "./tree-rebuild.js";

/** One entry that failed verification and was dropped. */
export interface BadEntry {
  name: string;
  key: string;
  reason: string;
}

/** What `verifyStore` checked and dropped. */
export interface VerifyResult {
  checked: number;
  tally: Tally;
  bad: BadEntry[];
}

/**
 * Checks every entry's content against its digest (inline values, blobs, trees), drops the entries that fail
 * and deletes their bad content. Runs alongside other processes (only removes what is provably wrong).
 */
export async function verifyStore(store: Store, options: { reporter?: Reporter } = {}): Promise<VerifyResult> {
  const tally = emptyTally();
  const bad: BadEntry[] = [];
  let checked = 0;
  const entries = [];
  for await (const entry of store.list()) entries.push(entry);
  for (const entry of entries) {
    checked++;
    let reason: string | undefined;
    let badContent: string | undefined;
    if (entry.storage === "inline") {
      const data = await store.get(entry.name, entry.key).catch(() => undefined);
      if (data !== undefined && createHash("sha256").update(data).digest("hex") !== entry.digest) {
        reason = "inline value does not match its digest";
      }
    } else if (entry.storage === "blob") {
      const path = store.layout.blob(entry.digest);
      try {
        await readBlob(store.layout, entry.digest);
      } catch (error) {
        if (error instanceof BlobIntegrityError) {
          reason = `blob ${path} does not match its digest (found ${error.actual})`;
          badContent = path;
        } else if ((error as NodeJS.ErrnoException).code === "ENOENT") reason = `blob ${path} is missing`;
        else throw error;
      }
    } else {
      // Re-hashed as a whole; a sound tree whose manifest is missing or out of date gets a fresh one.
      const path = store.layout.tree(entry.digest);
      const checked = await rebuildManifest(store.layout, entry.digest, readManifest(store.layout, entry.digest));
      if ("missing" in checked) reason = `tree ${path} is missing`;
      else if ("mismatch" in checked) {
        reason = `tree ${path}: ${checked.mismatch}`;
        badContent = path;
      }
    }
    if (reason !== undefined) {
      bad.push({ name: entry.name, key: entry.key, reason });
      await store.deleteIfDigest(entry.name, entry.key, entry.digest);
      if (badContent) await rm(badContent, { recursive: true, force: true });
      if (entry.storage === "tree") await rm(treeManifestPath(store.layout, entry.digest), { force: true });
    } else {
      tally.entries++;
      tally.bytes += entry.size;
    }
    options.reporter?.item?.({ path: `${entry.name}/${entry.key}`, bytes: entry.size, tally });
  }
  options.reporter?.end?.(tally);
  return { checked, tally, bad };
}
