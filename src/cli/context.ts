import type { CliSettings } from "../config/index.js";
import type { LockWaitHandler, StoreWarning } from "../store/index.js";
import { printNote, type Output } from "./output.js";

/** What every command gets: settings, output streams, and the handlers that turn library events into text. */
export interface CommandContext {
  settings: CliSettings;
  output: Output;
  env: NodeJS.ProcessEnv;
  onWarning: (warning: StoreWarning) => void;
  onLockWait: LockWaitHandler;
}

export function commandContext(settings: CliSettings, output: Output, env: NodeJS.ProcessEnv): CommandContext {
  return {
    settings,
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
    cacheDir: context.settings.cacheDir,
    noCache: context.settings.noCache,
    env: context.env,
    onWarning: context.onWarning,
    onLockWait: context.onLockWait,
  };
}
