import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { chmod, readdir, rename, rm } from "node:fs/promises";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { basename, dirname, join } from "node:path";
import { ensureDirectory } from "./directories.js";
import { LinkTargetError } from "./errors.js";

// A restore builds its result beside the target (same filesystem, so the last step is a rename) under a name
// that says which target, which role, and which process: `.<target>.cachet-stage-<pid>-<hex>` for the new
// content, `.<target>.cachet-old-<pid>-<hex>` for the old one moved aside. A process killed mid-restore leaves
// those behind; the next restore of that target removes the ones whose process is gone.

/** Staging and set-aside paths this process is using right now (never swept, even though the pid is alive). */
const inProgress = new Set<string>();

/** Target names are cut to this length in leftover names, which must stay under NAME_MAX (255). */
const NAME_ROOM = 200;

function leftoverPrefix(target: string): string {
  return `.${basename(target).slice(0, NAME_ROOM)}.cachet-`;
}

/** A fresh path beside `target` for a restore's new content (`stage`) or the old content moved aside (`old`). */
export function reserveBeside(target: string, role: "stage" | "old"): string {
  const path = join(dirname(target), `${leftoverPrefix(target)}${role}-${process.pid}-${randomBytes(6).toString("hex")}`);
  inProgress.add(path);
  return path;
}

/** Ends this process's use of a path from {@link reserveBeside}; if it still exists, it is a leftover now. */
export function releaseReservation(path: string): void {
  inProgress.delete(path);
}

const LEFTOVER = /^(?:stage|old)-(\d+)-[0-9a-f]+$/;
/** Staging folders of builds before target-named leftovers; they name no target, only the process. */
const OLD_BUILD_LEFTOVER = /^\.cachet-restore-(\d+)-[0-9a-f]+$/;

/**
 * Removes what dead restores of `target` left beside it: staging and set-aside entries whose process no longer
 * runs (or this process's own that no restore is using). Another live process's restore in progress is left alone.
 * Returns how many it removed.
 */
export async function sweepRestoreLeftovers(target: string): Promise<number> {
  const parent = dirname(target);
  const prefix = leftoverPrefix(target);
  let names: string[];
  try {
    names = await readdir(parent);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    const match = name.startsWith(prefix) ? LEFTOVER.exec(name.slice(prefix.length)) : OLD_BUILD_LEFTOVER.exec(name);
    if (match === null) continue;
    const path = join(parent, name);
    const pid = Number(match[1]);
    const abandoned = pid === process.pid ? !inProgress.has(path) : !isRunning(pid);
    if (!abandoned) continue;
    await rm(path, { recursive: true, force: true });
    removed++;
  }
  return removed;
}

function isRunning(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"; // alive, but another user's
  }
}

/** rename(2) failures that mean something is already at the destination. */
const IN_THE_WAY = new Set(["ENOTEMPTY", "EEXIST", "EISDIR", "ENOTDIR"]);
const SWAP_ATTEMPTS = 8;

/**
 * Moves `staged` to `target`. Whatever is in the way is, with `replace`, renamed aside first and removed after;
 * so at every moment `target` is the old content whole, absent, or the new content whole. Without `replace`
 * only an absent target or an empty directory is taken over. Concurrent restores of one target: the last wins.
 */
export async function swapIntoPlace(staged: string, target: string, replace: boolean): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await rename(staged, target);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? "";
      if (!IN_THE_WAY.has(code)) throw error;
      if (!replace) throw new LinkTargetError(target, "it already exists and is not an empty directory (pass replace to overwrite it)");
      if (attempt === SWAP_ATTEMPTS) throw error;
    }
    const aside = reserveBeside(target, "old");
    try {
      // Another restore of the same target may move it, or put its own in, between these steps: go round again.
      if (!(await renameUnlessGone(target, aside))) continue;
      if (await renameUnlessInTheWay(staged, target)) return;
    } finally {
      // Failing to remove it only leaves a leftover that the next restore of this target sweeps.
      await rm(aside, { recursive: true, force: true }).catch(() => {});
      releaseReservation(aside);
    }
  }
}

async function renameUnlessGone(from: string, to: string): Promise<boolean> {
  try {
    await rename(from, to);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
}

async function renameUnlessInTheWay(from: string, to: string): Promise<boolean> {
  try {
    await rename(from, to);
    return true;
  } catch (error) {
    if (IN_THE_WAY.has((error as NodeJS.ErrnoException).code ?? "")) return false;
    throw error;
  }
}

/**
 * Writes `content` to the file `target` with `mode`, by the same rules as a tree restore: written beside it,
 * then swapped in by rename (a file in the way is replaced atomically, a directory moved aside), after sweeping
 * dead restores' leftovers. If `content` fails (an integrity error, say), `target` is left as it was.
 */
export async function restoreFileInto(target: string, content: Readable, mode: number): Promise<void> {
  try {
    ensureDirectory(dirname(target));
    await sweepRestoreLeftovers(target);
  } catch (error) {
    content.destroy();
    throw error;
  }
  const staged = reserveBeside(target, "stage");
  try {
    await pipeline(content, createWriteStream(staged, { flags: "wx", mode }));
    await chmod(staged, mode); // the umask may have narrowed the mode given to open
    await swapIntoPlace(staged, target, true);
  } finally {
    await rm(staged, { force: true }).catch(() => {});
    releaseReservation(staged);
  }
}
