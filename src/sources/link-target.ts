import { realpathSync } from "node:fs";
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { SourceOptionError } from "./errors.js";

/**
 * `linkTo` replaces its target whole, so a target that is the current directory or holds it (`.`, `..`) would
 * delete every file there and leave the process in a removed folder: refused before anything is fetched
 * (symlinks resolved).
 */
export function assertLinkTargetClear(call: string, target: string): void {
  const linked = realPathOf(resolve(target));
  const fromTarget = relative(linked, realPathOf(process.cwd()));
  if (fromTarget === "" || (fromTarget !== ".." && !fromTarget.startsWith(`..${sep}`) && !isAbsolute(fromTarget))) {
    throw new SourceOptionError(`${call}: linkTo ${target} is the current directory or holds it; it would be replaced whole (name a folder for it, such as vendor/lib)`);
  }
}

/** The real path of `path`, or of its nearest existing ancestor with the rest appended. */
function realPathOf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    const parent = dirname(path);
    return parent === path ? path : join(realPathOf(parent), basename(path));
  }
}
