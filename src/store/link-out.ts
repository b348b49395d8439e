import { constants, copyFileSync, linkSync, lstatSync, realpathSync } from "node:fs";
import { lstat, mkdir, readdir, rm } from "node:fs/promises";
import { basename, dirname, join, resolve, sep } from "node:path";
import { readSettings, type LinkMode } from "../config/index.js";
import { ensureDirectory } from "./directories.js";
import { LinkModeError, LinkTargetError, asWriteError } from "./errors.js";
import { releaseReservation, reserveBeside, swapIntoPlace, sweepRestoreLeftovers } from "./restore-swap.js";
import { fillTree } from "./tree-fill.js";
import { describeChange, type ManifestFile, type TreeManifest } from "./tree-manifest.js";

export type { LinkMode };

/**
 * What a restored tree is for, which decides how it may share storage with the cache:
 * - `output` (default): a computed output (a task's `dir()` result) that tools may rewrite in place. Restored
 *   by reflink clone, else a copy; hard links only when forced (`CACHET_LINK_MODE=hardlink`).
 * - `source`: read-only material (an unpacked archive, a checkout). Clone, else hard link, else copy.
 */
export type RestorePurpose = "output" | "source";

/** A warning the store raises; the library hands these to a callback and never prints. */
export interface StoreWarning {
  /** `CACHET_LINK_FALLBACK`, `CACHET_INTEGRITY`, `CACHET_MISSING_CONTENT`, `CACHET_UNSTORABLE_RESULT`, … */
  code: string;
  message: string;
}

/** Receives warnings; the default raises them as Node process warnings (`process.emitWarning`). */
export type WarningHandler = (warning: StoreWarning) => void;

export const emitProcessWarning: WarningHandler = (warning) => process.emitWarning(warning.message, { code: warning.code });

/** The forced link mode from `CACHET_LINK_MODE`, or undefined for automatic (see {@link RestorePurpose}). */
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
  /** The target already held the tree unchanged and was left alone (see `LinkTreeOptions.keepUnchanged`). */
  kept?: boolean;
}

export interface LinkOptions {
  /** Forced mode; automatic when undefined. */
  mode?: LinkMode | undefined;
  /** What the restored tree is for; default `output`. */
  purpose?: RestorePurpose | undefined;
  /** Replace an existing target (file or directory). Without it, an existing non-empty target is refused. */
  replace?: boolean | undefined;
  onWarning?: WarningHandler | undefined;
  /** Called per file linked, for progress. */
  onFile?: ((relativePath: string, bytes: number) => void) | undefined;
  /** @internal Skips the check against the manifest; only for measuring what the check costs (bench/link-out.ts). */
  uncheckedForBenchmark?: boolean | undefined;
}

/** A restore's result: what it did, or how the cached tree differs from its manifest (then nothing was restored). */
export type LinkOutcome = { tally: LinkTally } | { changed: string };

const CLONE_UNSUPPORTED = new Set(["ENOTSUP", "EOPNOTSUPP", "EINVAL", "EXDEV", "ENOSYS", "ENOTTY", "EPERM"]);
const HARDLINK_UNSUPPORTED = new Set(["EXDEV", "EPERM", "EMLINK", "ENOTSUP", "EOPNOTSUPP", "EACCES"]);

/** Automatic mode remembers, per (purpose, cache bucket, target folder), what the filesystems support. */
const learnedMode = new Map<string, LinkMode>();
let copyFallbackWarned = false;

/**
 * Materializes the cached tree at `source`, described by `manifest`, into `target`. The tree is built beside the
 * target and swapped in by rename (see {@link swapIntoPlace}), so the target is whole-old, whole-new or absent,
 * and what dead restores left beside it is removed first. Every cached file and directory is compared with the
 * manifest as it is restored (see {@link fillTree}); if any changed, nothing is restored and the outcome says
 * what. Copies and clones get the mode the file had when stored; hard-linked files are the cache's own, read-only.
 */
export async function linkTreeOut(source: string, manifest: TreeManifest, target: string, options: LinkOptions = {}): Promise<LinkOutcome> {
  const replace = options.replace ?? false;
  const purpose = options.purpose ?? "output";
  await prepareTarget(target, replace);
  await sweepRestoreLeftovers(target);
  const learnedKey = `${purpose}\0${dirname(source)}\0${dirname(target)}`;
  const state: LinkState = {
    mode: options.mode ?? learnedMode.get(learnedKey) ?? "clone",
    forced: options.mode !== undefined,
    purpose,
    source,
    target,
    onWarning: options.onWarning ?? emitProcessWarning,
  };
  const tally: LinkTally = { files: 0, directories: 0, symlinks: 0, bytes: 0, mode: state.mode };
  const staged = reserveBeside(target, "stage");
  try {
    await mkdir(staged);
    const changed = await fillTree(
      {
        source,
        manifest,
        staged,
        check: options.uncheckedForBenchmark !== true,
        settle: (file) => settleMode(file, staged, state),
        onFile: options.onFile,
      },
      tally,
    );
    if (changed !== undefined) return { changed };
    if (!state.forced) learnedMode.set(learnedKey, state.mode);
    await swapIntoPlace(staged, target, replace);
  } catch (error) {
    throw asWriteError(target, error);
  } finally {
    // Gone after a swap; after a failure, a leftover that fails to go is swept by the next restore.
    await rm(staged, { recursive: true, force: true }).catch(() => {});
    releaseReservation(staged);
  }
  return { tally };
}

interface LinkState {
  mode: LinkMode;
  forced: boolean;
  purpose: RestorePurpose;
  source: string;
  target: string;
  onWarning: WarningHandler;
}

async function prepareTarget(target: string, replace: boolean): Promise<void> {
  let existing;
  try {
    existing = await lstat(target);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw targetError(target, error);
    try {
      ensureDirectory(dirname(target));
    } catch (mkdirError) {
      throw targetError(target, mkdirError);
    }
    return;
  }
  if (replace || (existing.isDirectory() && (await readdir(target)).length === 0)) return;
  throw new LinkTargetError(target, "it already exists and is not an empty directory (pass replace to overwrite it)");
}

/**
 * Refuses a restore target that is the cache root, inside it, or holds it (also through symlinks): replacing it
 * would remove what the cache holds, the tree being restored included.
 */
export function assertTargetOutsideCache(root: string, target: string): void {
  const cache = realPath(root);
  const to = realPath(target);
  const within = (path: string, dir: string) => path === dir || path.startsWith(dir.endsWith(sep) ? dir : dir + sep);
  if (within(to, cache) || within(cache, to)) {
    throw new LinkTargetError(target, `it is the cache (${root}), inside it or holds it, and restoring there would replace what the cache holds`);
  }
}

/** The real path of `path`, through its nearest existing ancestor when it does not exist yet. */
function realPath(path: string): string {
  const missing: string[] = [];
  for (let at = resolve(path); ; at = dirname(at)) {
    try {
      return join(realpathSync(at), ...missing.reverse());
    } catch {
      if (dirname(at) === at) return resolve(path);
      missing.push(basename(at));
    }
  }
}

/** A target that cannot be looked at or made, as one line (a full disk stays a write error). */
function targetError(target: string, error: unknown): unknown {
  const written = asWriteError(target, error);
  if (written !== error) return written;
  const code = (error as NodeJS.ErrnoException).code;
  const reason =
    code === "ENOTDIR" ? "a folder on its path is a file" : code === "ENAMETOOLONG" ? "the path is too long" : code === "ENOENT" ? "a folder on its path cannot be created" : (error as Error).message;
  return new LinkTargetError(target, reason);
}

/**
 * Materializes the first file with the current mode, stepping down the purpose's chain (output: clone → copy;
 * source: clone → hardlink → copy) while the filesystems refuse; a forced mode that is refused throws
 * {@link LinkModeError}. Says so if the file is missing from the cache.
 */
function settleMode(file: ManifestFile, staged: string, state: LinkState): { mode: LinkMode } | { changed: string } {
  const from = `${state.source}/${file.path}`;
  const to = `${staged}/${file.path}`;
  // Checked before the first copy, which would block forever on a FIFO put in the file's place.
  const change = describeChange(file, lstatSync(from, { throwIfNoEntry: false }));
  if (change !== undefined) return { changed: change };
  for (;;) {
    try {
      if (state.mode === "clone") copyFileSync(from, to, constants.COPYFILE_FICLONE_FORCE);
      else if (state.mode === "hardlink") linkSync(from, to);
      else copyFileSync(from, to);
      return { mode: state.mode };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? "";
      if (code === "ENOENT") return { changed: `"${file.path}" is missing` };
      const unsupported = state.mode === "clone" ? CLONE_UNSUPPORTED : state.mode === "hardlink" ? HARDLINK_UNSUPPORTED : undefined;
      if (unsupported === undefined || !unsupported.has(code)) throw error;
      if (state.forced) throw new LinkModeError(state.mode, state.source, state.target, code);
      if (state.mode === "clone") state.mode = state.purpose === "source" ? "hardlink" : "copy";
      else {
        state.mode = "copy";
        warnCopyFallback(state.onWarning, code);
      }
    }
  }
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
