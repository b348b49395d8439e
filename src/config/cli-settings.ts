import { envBoolean } from "./env-flags.js";

/** Global CLI flags as commander parsed them. */
export interface GlobalFlags {
  cacheDir?: string | undefined;
  /** commander turns `--no-cache` into `cache: false`. */
  cache?: boolean | undefined;
  force?: boolean | undefined;
}

/** The CLI's effective settings: flag > environment > default (the cache root's own order is the store's). */
export interface CliSettings {
  cacheDir: string | undefined;
  noCache: boolean;
  force: boolean;
  /** Draw progress bars: stderr is a terminal, not CI, not `CACHET_NO_PROGRESS`. */
  progress: boolean;
}

export function cliSettings(flags: GlobalFlags, env: NodeJS.ProcessEnv, stderrIsTerminal: boolean): CliSettings {
  const noCache = flags.cache === false || (envBoolean(env, "CACHET_NO_CACHE") ?? false);
  const progress = stderrIsTerminal && !(envBoolean(env, "CACHET_NO_PROGRESS") ?? false) && !isCi(env);
  return { cacheDir: flags.cacheDir, noCache, force: flags.force ?? false, progress };
}

function isCi(env: NodeJS.ProcessEnv): boolean {
  const ci = env.CI;
  return ci !== undefined && ci !== "" && ci !== "0" && ci.toLowerCase() !== "false";
}
