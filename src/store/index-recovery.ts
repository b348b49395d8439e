import { readdirSync, renameSync } from "node:fs";
import { join } from "node:path";
import { corruptIndexName, currentIndexName, isIndexName, newIndexName, pointerStamp, publishIndexName } from "./index-file.js";
import { IndexConnection } from "./index-connection.js";
import { FileLock } from "./locks.js";

/** SQLite result codes that mean the index file itself is damaged (as opposed to busy, full or unreadable). */
const CORRUPTION_CODES = new Set(["SQLITE_CORRUPT", "SQLITE_NOTADB", "SQLITE_IOERR_SHORT_READ"]);

/** True when `error` says the index file is damaged, so the only way on is a fresh index. */
export function isCorruption(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && (CORRUPTION_CODES.has(code) || code.startsWith("SQLITE_CORRUPT"));
}

/** What replacing a corrupt index did. */
export interface IndexReplacement {
  /** The damaged file. */
  file: string;
  /**
   * Where the damaged file (and any other index file no longer in use) is kept for inspection and `cache verify
   * --repair`; undefined when another process replaced it, or when there was nothing to keep.
   */
  keptAs: string | undefined;
  /** The error that showed the damage. */
  reason: string;
}

/** Lock file serializing replacements, so concurrent discoverers of one damage make one fresh index. */
const RECOVERY_LOCK = "recover.lock";

/**
 * Replaces the damaged index file `badName` with a fresh, empty one and returns a connection to the new
 * index. Under a lock: if another process already replaced it (`CURRENT` names another file), that file is
 * opened instead. The damaged file (with its `-wal` and `-shm`) is renamed to `corrupt-<time>.sqlite`.
 * @internal (its connection's SQLite types stay out of the published declarations)
 */
export function replaceCorruptIndex(
  dir: string,
  badName: string,
  reason: unknown,
  options: { busyTimeoutMs: number; lockTimeoutSeconds: number },
): { connection: IndexConnection; replacement: IndexReplacement } {
  const lock = new FileLock(join(dir, RECOVERY_LOCK));
  lock.acquireSync("exclusive", {
    timeoutSeconds: options.lockTimeoutSeconds,
    timeoutAdvice: "another process is replacing the damaged cache index; raise CACHET_LOCK_TIMEOUT",
  });
  try {
    const stamp = pointerStamp(dir);
    const current = currentIndexName(dir);
    const replacement: IndexReplacement = { file: join(dir, badName), keptAs: undefined, reason: describe(reason) };
    if (current !== undefined && current !== badName) {
      return { connection: new IndexConnection(dir, current, stamp, options.busyTimeoutMs), replacement };
    }
    const fresh = newIndexName();
    // Created before it is published, so no process ever finds `CURRENT` naming a missing file.
    new IndexConnection(dir, fresh, stamp, options.busyTimeoutMs).close();
    publishIndexName(dir, fresh);
    // The damaged file, and any other index file no longer named (the one a damaged CURRENT lost track of), is
    // kept aside where `cache verify --repair` reads it and `prune` protects the content it refers to.
    const kept: string[] = [];
    for (const name of readdirSync(dir)) {
      if (name === fresh || (name !== badName && !isIndexName(name))) continue;
      const keptAs = corruptIndexName();
      for (const suffix of ["", "-wal", "-shm"]) renameQuietly(join(dir, name + suffix), join(dir, keptAs + suffix));
      kept.push(join(dir, keptAs));
    }
    replacement.keptAs = kept.length > 0 ? kept.join(", ") : undefined;
    return { connection: new IndexConnection(dir, fresh, pointerStamp(dir), options.busyTimeoutMs), replacement };
  } finally {
    lock.release();
  }
}

function renameQuietly(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch {
    // A missing -wal/-shm is normal; the damaged file staying in place only costs disk space.
  }
}

function describe(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  return typeof code === "string" ? `${code}: ${message}` : message;
}
