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
  constructor(readonly moduleName: string, cause: unknown) {
    const reason = cause instanceof Error ? cause.message.split("\n")[0] : String(cause);
    super(
      `the native module ${moduleName} could not be loaded (${reason}); run \`npm rebuild ${moduleName}\` ` +
        `(npm 11 runs its build only when package.json "allowScripts" lists it)`,
      { cause },
    );
  }
}

/** The part of `fs-ext` cachet uses. */
export interface FlockModule {
  flockSync(fd: number, flags: "sh" | "ex" | "shnb" | "exnb" | "un"): void;
}

const require = createRequire(import.meta.url);
let sqlite: typeof BetterSqlite3 | undefined;
let flock: FlockModule | undefined;

/** better-sqlite3's `Database` constructor. */
export function loadSqlite(): typeof BetterSqlite3 {
  if (sqlite) return sqlite;
  try {
    const Database = require("better-sqlite3") as typeof BetterSqlite3;
    // The binding loads on the first connection; open one in memory so a missing build is reported here.
    new Database(":memory:").close();
    sqlite = Database;
  } catch (error) {
    throw new NativeModuleError("better-sqlite3", error);
  }
  return sqlite;
}

/** `fs-ext`, for `flock(2)`. */
export function loadFlock(): FlockModule {
  if (flock) return flock;
  try {
    flock = require("fs-ext") as FlockModule;
  } catch (error) {
    throw new NativeModuleError("fs-ext", error);
  }
  return flock;
}
