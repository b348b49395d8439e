import { createRequire } from "node:module";
import type BetterSqlite3 from "better-sqlite3";
import { CachetError } from "../errors.js";

/**
 * The two native modules the store needs, loaded on first use rather than at import: importing cachet must
 * never fail because a native build is missing (a task then runs uncached with one warning), and the error
 * says which module and how to build it.
 */

/** A native module cachet needs could not be loaded (not built, built for another Node.js, wrong platform). */
export class NativeModuleError extends CachetError {
  readonly code = "CACHET_NATIVE_MODULE";
  /** How to build it: `npm rebuild <module>`, and the package.json "allowScripts" entry npm may need for that. */
  readonly fix: string;
  constructor(readonly moduleName: string, cause: unknown) {
    let reason = (cause instanceof Error ? cause.message : String(cause)).split("\n")[0]!.trim();
    // The first line of a list ("Could not locate the bindings file. Tried:") ends at its last whole sentence.
    if (reason.endsWith(":")) reason = reason.slice(0, reason.lastIndexOf(". ") + 1 || undefined);
    const fix =
      `run \`npm rebuild ${moduleName}\` with this Node.js ` +
      `(if npm skips its install script, list "${moduleName}": true in your package.json "allowScripts")`;
    super(`the native module ${moduleName} could not be loaded (${reason}); ${fix}`, { cause });
    this.fix = fix;
  }
}

/** The part of `fs-ext-extra-prebuilt` (a fork of `fs-ext` that ships prebuilt binaries) cachet uses. */
export interface FlockModule {
  flockSync(fd: number, flags: "sh" | "ex" | "shnb" | "exnb" | "un"): void;
}

/** The two native modules, by package name (what `npm rebuild` takes). */
export const SQLITE_MODULE = "better-sqlite3";
export const FLOCK_MODULE = "fs-ext-extra-prebuilt";

const require = createRequire(import.meta.url);
let sqlite: typeof BetterSqlite3 | undefined;
let flock: FlockModule | undefined;

/** better-sqlite3's `Database` constructor. */
export function loadSqlite(): typeof BetterSqlite3 {
  if (sqlite) return sqlite;
  try {
    const Database = require(SQLITE_MODULE) as typeof BetterSqlite3;
    // The binding loads on the first connection; open one in memory so a missing build is reported here.
    new Database(":memory:").close();
    sqlite = Database;
  } catch (error) {
    throw new NativeModuleError(SQLITE_MODULE, error);
  }
  return sqlite;
}

/**
 * `fs-ext-extra-prebuilt`, for `flock(2)`. It loads a binary shipped in the package for the platform and Node.js
 * major (no install script or compiler needed), else one built by its install script (`node-gyp`).
 */
export function loadFlock(): FlockModule {
  if (flock) return flock;
  try {
    flock = require(FLOCK_MODULE) as FlockModule;
  } catch (error) {
    throw new NativeModuleError(FLOCK_MODULE, error);
  }
  return flock;
}
