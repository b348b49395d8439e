import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { PackageJsonError, StoreSettingError } from "./errors.js";

/** Where the cache root was found, for `cachet cache dir` and error messages. */
export type CacheDirSource = "no-cache" | "option" | "env" | "package.json" | "xdg" | "home" | "localappdata";

/** A resolved cache root and the rule that chose it. */
export interface ResolvedCacheDir {
  readonly path: string;
  readonly source: CacheDirSource;
  /** True for a `--no-cache` temporary root, which is removed when the process exits. */
  readonly temporary: boolean;
}

/** What the caller asked for; missing values fall through to the environment and defaults. */
export interface CacheDirRequest {
  /** `--cache-dir` / `openStore({ cacheDir })`. */
  cacheDir?: string | undefined;
  /** `--no-cache`: a fresh temporary root for this process only. */
  noCache?: boolean | undefined;
  /** Defaults to `process.env`. */
  env?: NodeJS.ProcessEnv | undefined;
  /** Where to look for package.json; defaults to `process.cwd()`. */
  cwd?: string | undefined;
}

/**
 * Resolves the cache root, first match wins (DESIGN §2): `--no-cache` temporary root · `cacheDir` option ·
 * `CACHET_CACHE_DIR` · `"cachet": {"cacheDir"}` in the nearest package.json (relative to that file) ·
 * `$XDG_CACHE_HOME/cachet` · `~/.cache/cachet` (`%LOCALAPPDATA%\cachet\cache` on Windows).
 */
export function resolveCacheDir(request: CacheDirRequest = {}): ResolvedCacheDir {
  const env = request.env ?? process.env;
  const cwd = request.cwd ?? process.cwd();
  if (request.noCache) return { path: temporaryRoot(), source: "no-cache", temporary: true };
  if (request.cacheDir) return { path: resolve(cwd, request.cacheDir), source: "option", temporary: false };
  if (env.CACHET_CACHE_DIR) return { path: resolve(cwd, env.CACHET_CACHE_DIR), source: "env", temporary: false };
  const fromPackage = packageCacheDir(cwd);
  if (fromPackage) return { path: fromPackage, source: "package.json", temporary: false };
  if (process.platform === "win32" && env.LOCALAPPDATA) {
    return { path: join(env.LOCALAPPDATA, "cachet", "cache"), source: "localappdata", temporary: false };
  }
  if (env.XDG_CACHE_HOME && isAbsolute(env.XDG_CACHE_HOME)) {
    return { path: join(env.XDG_CACHE_HOME, "cachet"), source: "xdg", temporary: false };
  }
  return { path: join(env.HOME || homedir(), ".cache", "cachet"), source: "home", temporary: false };
}

/** The `cachet.cacheDir` of the nearest package.json above `cwd`, resolved against that file's folder. */
function packageCacheDir(cwd: string): string | undefined {
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    const file = join(dir, "package.json");
    let text: string | undefined;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      text = undefined;
    }
    if (text !== undefined) {
      let manifest: unknown;
      try {
        manifest = JSON.parse(text);
      } catch (error) {
        throw new PackageJsonError(file, `invalid JSON: ${(error as Error).message}`);
      }
      const settings = (manifest as { cachet?: unknown } | null)?.cachet;
      if (settings === undefined) return undefined;
      const cacheDir = (settings as { cacheDir?: unknown } | null)?.cacheDir;
      if (cacheDir === undefined) return undefined;
      if (typeof cacheDir !== "string" || cacheDir === "") {
        throw new StoreSettingError(`${file} "cachet.cacheDir"`, cacheDir, "a non-empty path string");
      }
      return resolve(dir, cacheDir);
    }
    if (dirname(dir) === dir) return undefined;
  }
}

const temporaryRoots = new Set<string>();

function temporaryRoot(): string {
  const path = mkdtempSync(join(tmpdir(), "cachet-no-cache-"));
  if (temporaryRoots.size === 0) process.once("exit", removeTemporaryRoots);
  temporaryRoots.add(path);
  return path;
}

/** Removes a `--no-cache` root now (also done at process exit). */
export function removeTemporaryRoot(path: string): void {
  if (!temporaryRoots.delete(path)) return;
  rmSync(path, { recursive: true, force: true });
}

function removeTemporaryRoots(): void {
  for (const path of temporaryRoots) rmSync(path, { recursive: true, force: true });
  temporaryRoots.clear();
}
