import { randomBytes } from "node:crypto";
import { readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * Which database file in `index-v1/` is the entry index. `CURRENT` names it (as LevelDB's CURRENT names its
 * manifest); without `CURRENT` it is `index.sqlite`. Replacing a corrupt index writes a new file under a new,
 * never reused name and then swaps `CURRENT` by rename: processes still connected to the old file keep using
 * (and eventually close) their own file and its `-wal`/`-shm`, which SQLite deletes by name, so nothing they do
 * can touch the new index.
 */

export const INITIAL_INDEX = "index.sqlite";
export const CURRENT_FILE = "CURRENT";
const INDEX_NAME = /^index(-[0-9a-z-]+)?\.sqlite$/;

/** True for the name of an index database file (the one in use or another): `index.sqlite`, `index-<id>.sqlite`. */
export function isIndexName(name: string): boolean {
  return INDEX_NAME.test(name);
}
/** Copies of replaced corrupt indexes, kept for inspection and for `cache verify --repair`. */
export const CORRUPT_INDEX = /^corrupt-[0-9a-zA-Z-]+\.sqlite$/;

/** The index file `CURRENT` names, `index.sqlite` without `CURRENT`, or undefined when `CURRENT` is garbage. */
export function currentIndexName(dir: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(join(dir, CURRENT_FILE), "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return INITIAL_INDEX;
    throw error;
  }
  const name = text.trim();
  return INDEX_NAME.test(name) ? name : undefined;
}

/** Identifies the current `CURRENT` file (its inode), so a process can tell that another one swapped it. */
export function pointerStamp(dir: string): number {
  // No exception for a missing file (the usual case): building one costs ten times the stat.
  return statSync(join(dir, CURRENT_FILE), { throwIfNoEntry: false })?.ino ?? 0;
}

/** A fresh, never reused index file name. */
export function newIndexName(now = new Date()): string {
  return `index-${timeStamp(now)}-${randomBytes(4).toString("hex")}.sqlite`;
}

/** The name a replaced corrupt index is kept under. */
export function corruptIndexName(now = new Date()): string {
  return `corrupt-${timeStamp(now)}-${randomBytes(2).toString("hex")}.sqlite`;
}

/** Makes `name` the index by writing `CURRENT` beside it and renaming it into place. */
export function publishIndexName(dir: string, name: string): void {
  const staged = join(dir, `.${CURRENT_FILE}-${process.pid}-${randomBytes(4).toString("hex")}`);
  try {
    writeFileSync(staged, `${name}\n`, { flag: "wx" });
    renameSync(staged, join(dir, CURRENT_FILE));
  } catch (error) {
    rmSync(staged, { force: true });
    throw error;
  }
}

function timeStamp(date: Date): string {
  return date.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z").toLowerCase();
}
