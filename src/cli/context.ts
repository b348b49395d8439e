import type { CliSettings } from "../config/index.js";
import { existsSync } from "node:fs";
import { openStore, resolveCacheDir, type LockWaitHandler, type ResolvedCacheDir, type Store, type StoreWarning } from "../store/index.js";
import { printNote, type Output } from "./output.js";

/** What every command gets: settings, output streams, and the handlers that turn library events into text. */
export interface CommandContext {
  settings: CliSettings;
  /** The cache root, resolved once per invocation (so `--no-cache` means one temporary root throughout). */
  root: ResolvedCacheDir;
  output: Output;
  env: NodeJS.ProcessEnv;
  onWarning: (warning: StoreWarning) => void;
  onLockWait: LockWaitHandler;
}

export function commandContext(settings: CliSettings, output: Output, env: NodeJS.ProcessEnv): CommandContext {
  return {
    settings,
    root: resolveCacheDir({ cacheDir: settings.cacheDir, noCache: settings.noCache, env }),
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
