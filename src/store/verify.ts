import { rmSync } from "node:fs";
import { rm } from "node:fs/promises";
import { sha256Hex } from "../hash/index.js";
import { readBlob } from "./blobs.js";
import type { Storage } from "./index-rows.js";
import { BlobIntegrityError } from "./errors.js";
import { keptDamagedIndexes, readableRows, type SalvagedRow } from "./index-salvage.js";
import type { CacheLayout } from "./layout.js";
import { rowIsIntact } from "./row-check.js";
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

/** What `verify --repair` recovered from one damaged index kept beside the index. */
export interface RecoveredIndex {
  /** The damaged copy (removed once its rows were recovered). */
  file: string;
  /** Rows that could be read from it. */
  readable: number;
  /** Rows put back into the index (intact, content present and verified, key not taken since). */
  recovered: number;
}

/** What `verifyStore` checked, dropped and repaired. */
export interface VerifyResult {
  checked: number;
  tally: Tally;
  bad: BadEntry[];
  /** Problems SQLite's `quick_check` found in the index file (empty when sound). */
  indexProblems: string[];
  /** Damaged index copies waiting for `repair` (without it), or those it recovered rows from. */
  damagedIndexes: string[];
  /** With `repair`: what each damaged copy gave back. */
  recovered: RecoveredIndex[];
}

export interface VerifyOptions {
  reporter?: Reporter | undefined;
  /**
   * Also repair the index: a damaged index file is replaced (kept as a damaged copy), and the intact rows of
   * every damaged copy whose content is present and verifies are put back, after which the copy is removed.
   */
  repair?: boolean | undefined;
}

/**
 * Checks the index file and every entry's content against its digest (inline values, blobs, trees), drops the
 * entries that fail and deletes their bad content. Runs alongside other processes (it only removes what is
 * provably wrong). With `repair`, first rebuilds what it can from damaged index copies (see {@link VerifyOptions}).
 */
export async function verifyStore(store: Store, options: VerifyOptions = {}): Promise<VerifyResult> {
  const indexProblems = store.checkIndex();
  const recovered: RecoveredIndex[] = [];
  if (options.repair) {
    if (indexProblems.length > 0) store.retireIndex(`quick_check: ${indexProblems[0]}`);
    for (const file of keptDamagedIndexes(store.layout.indexDir)) recovered.push(await recoverFrom(file, store));
  }
  const result = await verifyEntries(store, options.reporter);
  return {
    ...result,
    indexProblems,
    damagedIndexes: options.repair ? recovered.map((r) => r.file) : keptDamagedIndexes(store.layout.indexDir),
    recovered,
  };
}

async function recoverFrom(file: string, store: Store): Promise<RecoveredIndex> {
  let readable = 0;
  let recovered = 0;
  for (const row of readableRows(file)) {
    readable++;
    const storage = row.storage;
    if (storage === undefined || !rowIsIntact(row, row.check)) continue;
    if (!(await contentVerifies(store.layout, storage, row))) continue;
    const inserted = store.insertRecovered({
      name: row.name,
      key: row.key,
      storage,
      digest: row.digest,
      inline: row.inline,
      size: row.size,
      origin: row.origin === "downloaded" ? "downloaded" : "computed",
      costMs: row.costMs,
      createdAt: row.createdAt,
      lastUsedAt: row.lastUsedAt,
      format: row.format,
      components: row.components,
    });
    if (inserted) recovered++;
  }
  for (const suffix of ["", "-wal", "-shm"]) rmSync(file + suffix, { force: true });
  return { file, readable, recovered };
}

async function contentVerifies(layout: CacheLayout, storage: Storage, row: SalvagedRow): Promise<boolean> {
  try {
    if (storage === "inline") return row.inline !== null && sha256Hex(row.inline) === row.digest;
    if (storage === "blob") return (await readBlob(layout, row.digest)) !== undefined;
    const checked = await rebuildManifest(layout, row.digest, readManifest(layout, row.digest));
    return !("missing" in checked) && !("mismatch" in checked);
  } catch {
    return false;
  }
}

async function verifyEntries(store: Store, reporter: Reporter | undefined): Promise<{ checked: number; tally: Tally; bad: BadEntry[] }> {
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
      const data = store.peekInline(entry.name, entry.key);
      if (data !== undefined && sha256Hex(data) !== entry.digest) reason = "inline value does not match its digest";
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
    reporter?.item?.({ path: `${entry.name}/${entry.key}`, bytes: entry.size, tally });
  }
  reporter?.end?.(tally);
  return { checked, tally, bad };
}

