import { existsSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { checkSettings, readSettings, type CacheRoot, type RefreshSetting, type SettingFlags, type Settings } from "../config/index.js";
import { resolveCacheDir, type ResolvedCacheDir } from "../store/cache-dir.js";
import type { LockWaitHandler, Store, StoreWarning } from "../store/index.js";
import { printNote, type Output } from "./output.js";
import { UsageError } from "./usage-error.js";

/** Global CLI flags as commander parsed them. */
export interface GlobalFlags {
  cacheDir?: string | undefined;
  /** commander turns `--no-cache` into `cache: false`. */
  cache?: boolean | undefined;
  force?: boolean | undefined;
  /** `--remote` (true) or `--remote URL`. */
  remote?: string | boolean | undefined;
  remoteReadOnly?: boolean | undefined;
  /** `--offline`. */
  offline?: boolean | undefined;
  /** `--refresh`: every entry refreshes. */
  refresh?: boolean | undefined;
  /** `--refresh-package NAME`, repeatable: those entries refresh. */
  refreshPackage?: string[] | undefined;
}

/** What every command gets: settings, output streams, and the handlers that turn library events into text. */
export interface CommandContext {
  /** Every setting, read once and checked at start. */
  settings: Settings;
  /** `--force`: do not wait for other processes using the cache. */
  force: boolean;
  /** `--remote` was given: the cache commands act on the shared tier. */
  remote: boolean;
  /** Draw progress bars: stderr is a terminal, and neither `CACHET_NO_PROGRESS`, `CI` nor `TERM=dumb` says no. */
  progress: boolean;
  /** The cache root, resolved once per invocation (so `--no-cache` means one temporary root throughout). */
  root: ResolvedCacheDir;
  output: Output;
  env: NodeJS.ProcessEnv;
  onWarning: (warning: StoreWarning) => void;
  onLockWait: LockWaitHandler;
}

/** How a command uses the cache. */
export interface ContextOptions {
  /** The command does its work without a cache (`cachet run`): a root that cannot be made is its to report, as a warning. */
  cacheOptional?: boolean | undefined;
}

/**
 * Reads and checks every setting (a value that is not understood is one line naming the setting and the accepted
 * values), resolves the cache root and refuses one that is a file (unless the cache is optional to the command).
 */
export function commandContext(flags: GlobalFlags, output: Output, env: NodeJS.ProcessEnv, cwd = process.cwd(), options: ContextOptions = {}): CommandContext {
  const settings = readSettings({
    env,
    cwd,
    flags: {
      cacheDir: flags.cacheDir,
      noCache: flags.cache === false,
      remote: typeof flags.remote === "string" ? flags.remote : undefined,
      remoteReadOnly: flags.remoteReadOnly,
      ...refreshFlags(flags),
    },
  });
  checkSettings(settings);
  const root = settings.noCache ? resolveCacheDir({ noCache: true }) : { path: settings.cacheRoot.path, source: settings.cacheRoot.source, temporary: false };
  if (!root.temporary && options.cacheOptional !== true) refuseFileRoot(settings.cacheRoot);
  return {
    settings,
    force: flags.force ?? false,
    remote: flags.remote !== undefined && flags.remote !== false,
    progress: output.stderr.isTTY === true && !settings.noProgress && !settings.ci && !settings.dumbTerminal,
    root,
    output,
    env,
    onWarning: (warning) => printNote(output, `warning: ${warning.message.replace(/^cachet: /, "")}`),
    onLockWait: ({ path }) =>
      printNote(
        output,
        `The cache is in use by another process (lock ${path}); waiting for it to finish. ` +
          `Pass --force to skip the wait (only safe if nothing else is using the cache).`,
      ),
  };
}

/** `--offline`, `--refresh` and `--refresh-package` as settings flags (unset ones leave the environment's value). */
function refreshFlags(flags: GlobalFlags): Pick<SettingFlags, "offline" | "refresh"> {
  const refresh: RefreshSetting | undefined = flags.refresh
    ? { all: true }
    : flags.refreshPackage !== undefined && flags.refreshPackage.length > 0
      ? { all: false, names: new Set(flags.refreshPackage) }
      : undefined;
  return { offline: flags.offline === true ? true : undefined, refresh };
}

/** A cache root that is a file, or lies under one, cannot be made: say so in one line, naming where it came from. */
function refuseFileRoot(root: CacheRoot): void {
  const file = fileInTheWay(root.path);
  if (file === undefined) return;
  const from = root.source === "option" ? "--cache-dir" : root.setting;
  const what = file === root.path ? `is a file, not a directory` : `cannot be made: ${file} is a file, not a directory`;
  throw new UsageError(`the cache root ${root.path} (from ${from}) ${what}`);
}

/** The path itself or the nearest existing folder above it, when that is not a directory. */
function fileInTheWay(path: string): string | undefined {
  for (let current = path; ; current = dirname(current)) {
    let isDirectory: boolean | undefined;
    try {
      isDirectory = statSync(current).isDirectory();
    } catch {
      isDirectory = undefined; // missing (or unreadable): look further up
    }
    if (isDirectory !== undefined) return isDirectory ? undefined : current;
    if (dirname(current) === current) return undefined;
  }
}

/** The store/maintenance options every command passes through. */
export function storeOptions(context: CommandContext) {
  return {
    cacheDir: context.root.path,
    noCache: false,
    env: context.env,
    onWarning: context.onWarning,
    onLockWait: context.onLockWait,
  };
}

/** The resolved cache root of a command (a temporary one under `--no-cache`). */
export function commandRoot(context: CommandContext): string {
  return context.root.path;
}

/**
 * Opens the cache for a command that only reads it, or says there is none and returns undefined: reading must
 * not create a cache directory as a side effect.
 */
export async function openExistingStore(context: CommandContext): Promise<Store | undefined> {
  const root = commandRoot(context);
  if (!existsSync(root)) {
    printNote(context.output, `No cache found at: ${root}`);
    return undefined;
  }
  const { openStore } = await import("../store/store.js");
  return openStore(storeOptions(context));
}
