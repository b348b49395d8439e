import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readSettings, type CacheRootSource } from "../config/index.js";

/** Where the cache root was found, for `cachet cache dir` and error messages. */
export type CacheDirSource = "no-cache" | CacheRootSource;

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
 * Resolves the cache root: with `noCache` a fresh temporary root (removed at exit); otherwise the settings
 * module's order (`config/cache-root.ts`): `cacheDir` option · `CACHET_CACHE_DIR` · package.json
 * `"cachet": {"cacheDir"}` · `$XDG_CACHE_HOME/cachet` · `~/.cache/cachet`.
 */
export function resolveCacheDir(request: CacheDirRequest = {}): ResolvedCacheDir {
  if (request.noCache) return { path: temporaryRoot(), source: "no-cache", temporary: true };
  const root = readSettings({ env: request.env, cwd: request.cwd, flags: { cacheDir: request.cacheDir } }).cacheRoot;
  return { path: root.path, source: root.source, temporary: false };
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
