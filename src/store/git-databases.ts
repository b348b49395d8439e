import { join } from "node:path";
import { BUCKETS, TMP_DIR } from "./layout.js";
import { stagingPath } from "./staging.js";

/**
 * The key-components field naming the git repository database an entry was checked out from (a sha256 hex of
 * the repository's canonical URL). `prune` and `clean` keep a database while some entry names it.
 */
export const GIT_DATABASE_COMPONENT = "gitDatabase";

const DATABASE_ID = /^[0-9a-f]{64}$/;

/** `git-v1/db/<id>`: the bare repository database of one canonical URL. */
export function gitDatabaseDir(root: string, id: string): string {
  return join(root, BUCKETS.git, "db", id);
}

/** The folder of every git repository database under `root`. */
export function gitDatabasesDir(root: string): string {
  return join(root, BUCKETS.git, "db");
}

/** The database id a row's components (JSON text, as stored) name, or undefined. */
export function gitDatabaseOf(components: string | null): string | undefined {
  if (components === null || !components.includes(`"${GIT_DATABASE_COMPONENT}"`)) return undefined;
  try {
    const id = (JSON.parse(components) as Record<string, unknown> | null)?.[GIT_DATABASE_COMPONENT];
    return typeof id === "string" && DATABASE_ID.test(id) ? id : undefined;
  } catch {
    return undefined;
  }
}

/** The SQL condition that finds rows whose components may name a git database (checked by {@link gitDatabaseOf}). */
export const MAY_NAME_GIT_DATABASE = `components LIKE '%"${GIT_DATABASE_COMPONENT}"%'`;

/** A fresh path in the root's `tmp/` (same filesystem as `git-v1/`, so a database or checkout is published by rename). */
export function gitStagingPath(root: string, label: string): string {
  return stagingPath(join(root, TMP_DIR), label);
}
