import { mkdirSync, statSync } from "node:fs";
import { dirname } from "node:path";

/**
 * Creates `path` and its missing parents, each level tried once. Node's own `mkdir({ recursive: true })`
 * loops forever at full CPU under `/proc` (`/proc/nonexist/cache`), where creating a child keeps failing with
 * ENOENT; this fails with that ENOENT instead. Existing non-directories fail with ENOTDIR.
 */
export function ensureDirectory(path: string): void {
  try {
    mkdirSync(path);
    return;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EEXIST") {
      if (!statSync(path).isDirectory()) throw notADirectory(path);
      return;
    }
    if (code !== "ENOENT") throw error;
  }
  const parent = dirname(path);
  if (parent === path) throw notADirectory(path);
  ensureDirectory(parent);
  try {
    mkdirSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    if (!statSync(path).isDirectory()) throw notADirectory(path);
  }
}

function notADirectory(path: string): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(`ENOTDIR: not a directory, mkdir '${path}'`);
  error.code = "ENOTDIR";
  error.path = path;
  return error;
}
