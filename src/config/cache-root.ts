import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { SettingError } from "./errors.js";
import { readPackageSettings } from "./package-settings.js";

/** The rule that chose the cache root. */
export type CacheRootSource = "option" | "env" | "package.json" | "xdg" | "home" | "localappdata";

/** The cache root and where it came from. */
export interface CacheRoot {
  readonly path: string;
  readonly source: CacheRootSource;
  /**
   * What named it, for messages: `cacheDir` (the option or flag), `CACHET_CACHE_DIR`, `<file> "cachet.cacheDir"`,
   * `XDG_CACHE_HOME`, `HOME` or `LOCALAPPDATA`.
   */
  readonly setting: string;
}

/** What the caller asked for; missing values fall through to the environment, package.json and defaults. */
export interface CacheRootRequest {
  /** `--cache-dir` / `openStore({ cacheDir })`, relative to `cwd`. */
  cacheDir?: string | undefined;
  env: NodeJS.ProcessEnv;
  /** Where relative paths start and the package.json search begins. */
  cwd: string;
  /** Defaults to this process's platform. */
  platform?: NodeJS.Platform | undefined;
}

/**
 * The cache root, first match wins: the `cacheDir` option (`--cache-dir`) · `CACHET_CACHE_DIR` · the
 * `"cachet": {"cacheDir"}` of the nearest package.json (relative to that file) · `%LOCALAPPDATA%\cachet\cache`
 * on Windows · `$XDG_CACHE_HOME/cachet` (an absolute XDG_CACHE_HOME only, as the XDG spec says) ·
 * `~/.cache/cachet`. An empty option or variable counts as unset.
 */
export function resolveCacheRoot(request: CacheRootRequest): CacheRoot {
  const { env, cwd } = request;
  if (request.cacheDir !== undefined && request.cacheDir !== "") {
    return { path: resolve(cwd, request.cacheDir), source: "option", setting: "cacheDir" };
  }
  if (env.CACHET_CACHE_DIR) {
    return { path: resolve(cwd, env.CACHET_CACHE_DIR), source: "env", setting: "CACHET_CACHE_DIR" };
  }
  const fromPackage = readPackageSettings(cwd);
  if (fromPackage?.cacheDir !== undefined) {
    return { path: fromPackage.cacheDir, source: "package.json", setting: `${fromPackage.file} "cachet.cacheDir"` };
  }
  if ((request.platform ?? process.platform) === "win32" && env.LOCALAPPDATA) {
    return { path: join(env.LOCALAPPDATA, "cachet", "cache"), source: "localappdata", setting: "LOCALAPPDATA" };
  }
  if (env.XDG_CACHE_HOME && isAbsolute(env.XDG_CACHE_HOME)) {
    return { path: join(env.XDG_CACHE_HOME, "cachet"), source: "xdg", setting: "XDG_CACHE_HOME" };
  }
  const home = env.HOME || homedir();
  if (!home) throw new SettingError("HOME", env.HOME ?? "", "a home directory, or set CACHET_CACHE_DIR");
  return { path: join(home, ".cache", "cachet"), source: "home", setting: "HOME" };
}
