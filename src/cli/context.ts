import { existsSync } from "node:fs";
import { checkSettings, readSettings, type Settings } from "../config/index.js";
import { openStore, resolveCacheDir, type LockWaitHandler, type ResolvedCacheDir, type Store, type StoreWarning } from "../store/index.js";
import { printNote, type Output } from "./output.js";

/** Global CLI flags as commander parsed them. */
export interface GlobalFlags {
  cacheDir?: string | undefined;
  /** commander turns `--no-cache` into `cache: false`. */
  cache?: boolean | undefined;
  force?: boolean | undefined;
}

/** What every command gets: settings, output streams, and the handlers that turn library events into text. */
export interface CommandContext {
  /** Every setting, read once and checked at start. */
  settings: Settings;
  /** `--force`: do not wait for other processes using the cache. */
  force: boolean;
  /** Draw progress bars: stderr is a terminal, and neither `CACHET_NO_PROGRESS`, `CI` nor `TERM=dumb` says no. */
  progress: boolean;
  /** The cache root, resolved once per invocation (so `--no-cache` means one temporary root throughout). */
  root: ResolvedCacheDir;
  output: Output;
  env: NodeJS.ProcessEnv;
  onWarning: (warning: StoreWarning) => void;
  onLockWait: LockWaitHandler;
}

/**
 * Reads and checks every setting (a value that is not understood is one line naming the setting and the accepted
 * values) and resolves the cache root.
 */
export function commandContext(flags: GlobalFlags, output: Output, env: NodeJS.ProcessEnv, cwd = process.cwd()): CommandContext {
  const settings = readSettings({ env, cwd, flags: { cacheDir: flags.cacheDir, noCache: flags.cache === false } });
  checkSettings(settings);
  const root = settings.noCache ? resolveCacheDir({ noCache: true }) : { path: settings.cacheRoot.path, source: settings.cacheRoot.source, temporary: false };
  return {
    settings,
    force: flags.force ?? false,
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
  return openStore(storeOptions(context));
}
