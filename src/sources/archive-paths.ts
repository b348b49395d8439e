// The path rules every entry of every format goes through before anything is written: an entry names a place
// inside the tree, by relative segments, and a link's target stays inside it.

/** A usable tree-relative path, or why the name is refused (worded to follow `entry "<name>"` in a message). */
export type PathVerdict = { path: string } | { refused: string };

/**
 * The tree-relative path an entry name means, with `.` segments, repeated and trailing slashes dropped (`./a//b/`
 * → `a/b`; the top itself, `./`, is the empty path). Refused: an absolute path, a drive letter (`C:`), a `..`
 * segment anywhere, also between backslashes (`..\x`, which Windows reads as traversal), a segment of only dots and
 * spaces (`...`, which Windows may read as `..`), a NUL byte.
 */
export function entryPath(name: string): PathVerdict {
  if (name.includes("\0")) return { refused: "has a NUL byte in its name" };
  if (name.startsWith("/") || name.startsWith("\\")) return { refused: "has an absolute path" };
  if (/^[A-Za-z]:/.test(name)) return { refused: "has a drive letter in its path" };
  const segments: string[] = [];
  for (const segment of name.split("/")) {
    const parts = segment.split("\\");
    if (parts.includes("..")) return { refused: 'has a ".." segment in its path' };
    // Windows drops trailing dots and spaces from a name, so `...` or `.. ` can mean `..` there.
    if (parts.some((part) => part !== "." && part !== "" && /^[. ]+$/.test(part))) {
      return { refused: "has a path segment of only dots and spaces, which Windows may read as \"..\"" };
    }
    if (segment !== "" && segment !== ".") segments.push(segment);
  }
  return { path: segments.join("/") };
}

/**
 * Whether a symlink's target, read from the link's own directory, stays inside the tree by its text alone: it is
 * relative and never climbs above the top with `..`, at any step. (Symlinks the target passes through are checked
 * on disk once the tree is complete: `symlinkEscapes`.)
 */
export function symlinkTargetVerdict(linkPath: string, target: string): string | undefined {
  if (target === "") return "is a symlink with an empty target";
  if (target.includes("\0")) return "is a symlink whose target has a NUL byte";
  if (target.startsWith("/") || target.startsWith("\\") || /^[A-Za-z]:/.test(target)) {
    return `is a symlink to the absolute path ${JSON.stringify(target)}, outside the unpacked tree`;
  }
  let depth = linkPath.split("/").length - 1;
  for (const segment of target.split("/")) {
    for (const part of segment.split("\\")) {
      if (part !== "..") continue;
      // A backslash is an ordinary character on POSIX, but `..\` climbs on Windows: count it either way.
      if (--depth < 0) return `is a symlink to ${JSON.stringify(target)}, outside the unpacked tree`;
    }
    if (segment !== "" && segment !== "." && !segment.split("\\").includes("..")) depth++;
  }
  return undefined;
}
