import { constants } from "node:fs";
import { copyFile, link, lstat, mkdir, readdir, readlink, rename, rm, symlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import { readSettings, type LinkMode } from "../config/index.js";
import { LinkTargetError, asWriteError } from "./errors.js";
import { stagingPath } from "./staging.js";

export type { LinkMode };

/** A warning the store raises; the library hands these to a callback and never prints. */
export interface StoreWarning {
  /** `CACHET_LINK_FALLBACK`, `CACHET_INTEGRITY`, `CACHET_MISSING_CONTENT`, `CACHET_UNSTORABLE_RESULT`, … */
  code: string;
  message: string;
}

/** Receives warnings; the default raises them as Node process warnings (`process.emitWarning`). */
export type WarningHandler = (warning: StoreWarning) => void;

export const emitProcessWarning: WarningHandler = (warning) => process.emitWarning(warning.message, { code: warning.code });

/** The forced link mode from `CACHET_LINK_MODE`, or undefined for automatic (clone → hardlink → copy). */
export function linkModeFromEnv(env: NodeJS.ProcessEnv = process.env): LinkMode | undefined {
  return readSettings({ env }).linkMode;
}

/** What a link-out did. */
export interface LinkTally {
  files: number;
  directories: number;
  symlinks: number;
  bytes: number;
  /** The mode that was used for the files (the last one, if it changed on the way). */
  mode: LinkMode;
}

export interface LinkOptions {
  /** Forced mode; automatic when undefined. */
  mode?: LinkMode | undefined;
  /** Replace an existing target (file or directory). Without it, an existing non-empty target is refused. */
  replace?: boolean | undefined;
  onWarning?: WarningHandler | undefined;
  /** Called per file linked, for progress. */
  onFile?: ((relativePath: string, bytes: number) => void) | undefined;
}

const CLONE_UNSUPPORTED = new Set(["ENOTSUP", "EOPNOTSUPP", "EINVAL", "EXDEV", "ENOSYS", "ENOTTY", "EPERM"]);
const HARDLINK_UNSUPPORTED = new Set(["EXDEV", "EPERM", "EMLINK", "ENOTSUP", "EOPNOTSUPP", "EACCES"]);
const LINK_CONCURRENCY = 32;

/** Automatic mode remembers, per (cache bucket, target folder), what the filesystems support. */
const learnedMode = new Map<string, LinkMode>();
let copyFallbackWarned = false;

/**
 * Materializes the immutable tree at `source` into `target`: every file by reflink clone, else hard link,
 * else copy. The tree is built beside the target and renamed into place, so the target is whole or absent.
 * Hard-linked files share their inode with the cache: edit them by replacing, not in place.
 */
export async function linkTreeOut(source: string, target: string, options: LinkOptions = {}): Promise<LinkTally> {
  await prepareTarget(target, options.replace ?? false);
  const staged = stagingPath(dirname(target), ".cachet-restore");
  const learnedKey = `${dirname(source)}\0${dirname(target)}`;
  const state: LinkState = {
    mode: options.mode ?? learnedMode.get(learnedKey) ?? "clone",
    forced: options.mode !== undefined,
    onWarning: options.onWarning ?? emitProcessWarning,
  };
  const tally: LinkTally = { files: 0, directories: 0, symlinks: 0, bytes: 0, mode: state.mode };
  try {
    await mkdir(staged);
    const files: Array<[string, string, string, number]> = [];
    await walk(source, staged, "", files, tally);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < files.length) {
        const [from, to, relative, bytes] = files[next++]!;
        await linkFile(from, to, state);
        tally.files++;
        tally.bytes += bytes;
        options.onFile?.(relative, bytes);
      }
    };
    // The first file settles the mode (clone may fall back), then the rest go in parallel.
    if (files.length > 0) {
      const [from, to, relative, bytes] = files[next++]!;
      await linkFile(from, to, state);
      tally.files++;
      tally.bytes += bytes;
      options.onFile?.(relative, bytes);
    }
    await Promise.all(Array.from({ length: Math.min(LINK_CONCURRENCY, files.length) }, worker));
    if (!state.forced) learnedMode.set(learnedKey, state.mode);
    if (options.replace) await rm(target, { recursive: true, force: true });
    await rename(staged, target);
  } catch (error) {
    await rm(staged, { recursive: true, force: true });
    throw asWriteError(target, error);
  }
  tally.mode = state.mode;
  return tally;
}

interface LinkState {
  mode: LinkMode;
  forced: boolean;
  onWarning: WarningHandler;
}

async function prepareTarget(target: string, replace: boolean): Promise<void> {
  let existing;
  try {
    existing = await lstat(target);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    await mkdir(dirname(target), { recursive: true });
    return;
  }
  if (replace) return;
  if (existing.isDirectory() && (await readdir(target)).length === 0) {
    await rm(target, { recursive: true });
    return;
  }
  throw new LinkTargetError(target, "it already exists and is not an empty directory (pass replace to overwrite it)");
}

async function walk(
  sourceDir: string,
  targetDir: string,
  relative: string,
  files: Array<[string, string, string, number]>,
  tally: LinkTally,
): Promise<void> {
  for (const entry of await readdir(sourceDir, { withFileTypes: true })) {
    const from = join(sourceDir, entry.name);
    const to = join(targetDir, entry.name);
    const rel = relative === "" ? entry.name : `${relative}/${entry.name}`;
    if (entry.isDirectory()) {
      await mkdir(to);
      tally.directories++;
      await walk(from, to, rel, files, tally);
    } else if (entry.isSymbolicLink()) {
      await symlink(await readlink(from), to);
      tally.symlinks++;
    } else {
      files.push([from, to, rel, (await lstat(from)).size]);
    }
  }
}

async function linkFile(from: string, to: string, state: LinkState): Promise<void> {
  if (state.mode === "clone") {
    try {
      await copyFile(from, to, constants.COPYFILE_FICLONE_FORCE);
      return;
    } catch (error) {
      if (state.forced || !CLONE_UNSUPPORTED.has((error as NodeJS.ErrnoException).code ?? "")) throw error;
      if (state.mode === "clone") state.mode = "hardlink";
    }
  }
  if (state.mode === "hardlink") {
    try {
      await link(from, to);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? "";
      if (state.forced || !HARDLINK_UNSUPPORTED.has(code)) throw error;
      if (state.mode === "hardlink") {
        state.mode = "copy";
        warnCopyFallback(state.onWarning, code);
      }
    }
  }
  await copyFile(from, to);
}

function warnCopyFallback(onWarning: WarningHandler, code: string): void {
  if (copyFallbackWarned) return;
  copyFallbackWarned = true;
  const why = code === "EXDEV" ? "the cache and the target are on different filesystems" : `hard links failed (${code})`;
  onWarning({
    code: "CACHET_LINK_FALLBACK",
    message:
      `cachet: falling back to copying files out of the cache because ${why}; this is slower. ` +
      `Keep the cache on the target's filesystem, or set CACHET_LINK_MODE=copy to silence this warning.`,
  });
}

/** Copies a user's directory into a staging directory (clone when possible, never hard links: the source stays mutable). */
export async function copyTreeIn(source: string, target: string): Promise<void> {
  await mkdir(target);
  for (const entry of await readdir(source, { withFileTypes: true })) {
    const from = join(source, entry.name);
    const to = join(target, entry.name);
    if (entry.isDirectory()) await copyTreeIn(from, to);
    else if (entry.isSymbolicLink()) await symlink(await readlink(from), to);
    else if (entry.isFile()) await copyFile(from, to, constants.COPYFILE_FICLONE);
    else throw new LinkTargetError(from, "only regular files, directories and symbolic links can be cached");
  }
}
