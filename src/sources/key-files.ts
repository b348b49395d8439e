import { readdirSync, statSync, type Dirent, type Stats } from "node:fs";
import { join } from "node:path";
import picomatch from "picomatch";
import { TimeSlices } from "../store/index.js";
import { CacheKeyReadError, CacheKeySpecError } from "./cache-key-errors.js";

/** A file a pattern matched. */
export interface FoundFile {
  /** Relative to the base directory, with `/`. */
  path: string;
  /** Its `stat` where finding it took one (a literal path, a symbolic link); a plain file is not `stat`ed here. */
  stats?: Stats | undefined;
}

/** What the patterns name: the files found, and the literal paths that name nothing (keyed as absent). */
export interface KeyFiles {
  files: FoundFile[];
  absent: string[];
  /** Every literal (non-glob) path named, unescaped: keyed as absent if it vanishes before it is read. */
  literals: string[];
}

interface GlobPattern {
  /** The directory the glob starts from, relative to the base directory (`""` for the base itself). */
  base: string;
  /** Tests a path relative to {@link base}. */
  matches: (path: string) => boolean;
  /** Whether it can match at any depth (`**`, or a brace that may hold a `/`). */
  recursive: boolean;
  /** For a non-recursive glob: how many path segments below {@link base} it matches. */
  depth: number;
  /** Folders it names as a whole path segment among those not walked by default (`node_modules`, `.git`). */
  names: Set<string>;
}

/** Folders not walked unless a pattern names them: their contents are managed by tools, not by the package. */
const UNWALKED = new Set(["node_modules", ".git"]);

const MATCH_OPTIONS = { dot: true } as const;

/**
 * The files `patterns` name under `baseDir`. A literal path is `stat`ed directly (and is
 * "absent" if it names nothing); globs are grouped by the directory they start from, and each directory is read
 * once however many globs cover it. Dot files match (`**` includes `.env`); `node_modules` and `.git` are entered
 * only when a pattern names them; symbolic links to files count as their targets, links to directories are not
 * followed (no cycles). `!pattern` removes what it matches from the rest. Sorted by path.
 */
export async function findKeyFiles(baseDir: string, patterns: readonly string[]): Promise<KeyFiles> {
  const slices = new TimeSlices();
  const found = new Map<string, Stats | undefined>();
  const absent: string[] = [];
  const literals: string[] = [];
  const globs: GlobPattern[] = [];
  const excludes = patterns.filter((pattern) => pattern.startsWith("!")).map((pattern) => pattern.slice(1));
  for (const pattern of patterns) {
    if (pattern.startsWith("!")) continue;
    const scan = picomatch.scan(pattern);
    if (!scan.isGlob) {
      const literal = pattern.replace(/\\(.)/g, "$1");
      literals.push(literal);
      const stats = statIfPresent(join(baseDir, literal), literal);
      if (stats?.isDirectory()) {
        throw new CacheKeySpecError(pattern, `names a directory, ${join(baseDir, literal)}: use "${pattern}/**" for its files or dir:${pattern} for its existence`);
      }
      if (stats?.isFile()) found.set(literal, stats);
      else absent.push(literal);
      continue;
    }
    globs.push(compileGlob(pattern, scan.base, scan.glob));
  }
  const roots = [...new Set(globs.map((glob) => glob.base))].filter(
    (base, _, all) => !all.some((other) => other !== base && isWithin(base, other)),
  );
  for (const root of roots) await walk(baseDir, root, globs, found, slices);
  if (excludes.length > 0) {
    const excluded = picomatch(excludes, MATCH_OPTIONS);
    for (const path of [...found.keys()]) if (excluded(path)) found.delete(path);
  }
  // The default sort compares strings by UTF-16 code units, as `<` does, without calling back into JavaScript.
  const files = [...found.keys()].sort().map((path) => ({ path, stats: found.get(path) }));
  return { files, absent: absent.filter((path) => !found.has(path)).sort(), literals };
}

function compileGlob(pattern: string, base: string, glob: string): GlobPattern {
  let matches: (path: string) => boolean;
  try {
    // The regular expression itself: picomatch's matcher function adds per-call work this walk does not need.
    const regex = picomatch.makeRe(glob, { ...MATCH_OPTIONS, strictBrackets: true });
    matches = (path) => regex.test(path);
  } catch (error) {
    throw new CacheKeySpecError(pattern, `is not a glob picomatch reads: ${(error as Error).message}`);
  }
  const recursive = glob.includes("**") || /\{[^}]*\/[^}]*\}/.test(glob);
  const names = new Set([...UNWALKED].filter((name) => pattern.split("/").includes(name)));
  return { base: base === "." ? "" : base, matches, recursive, depth: glob.split("/").length, names };
}

/** A glob's progress down one branch of the walk: how far below its base the current directory is. */
interface ActiveGlob {
  glob: GlobPattern;
  level: number;
}

async function walk(baseDir: string, root: string, globs: readonly GlobPattern[], found: Map<string, Stats | undefined>, slices: TimeSlices): Promise<void> {
  const pending: Array<{ dir: string; active: ActiveGlob[] }> = [{ dir: root, active: [] }];
  while (pending.length > 0) {
    const { dir, active: inherited } = pending.pop()!;
    const active = [...inherited, ...globs.filter((glob) => glob.base === dir).map((glob) => ({ glob, level: 0 }))];
    const entries = readDirIfPresent(dir === "" ? baseDir : `${baseDir}/${dir}`);
    const prefix = dir === "" ? "" : `${dir}/`;
    // Each active glob tests the path relative to its base: the part after this many characters.
    const cuts = active.map(({ glob }) => (glob.base === "" ? 0 : glob.base.length + 1));
    for (let i = 0; i < entries.length; i++) {
      if ((i & 63) === 63 && slices.due()) await slices.yield();
      const entry = entries[i]!;
      const path = prefix + entry.name;
      let isDir = entry.isDirectory();
      let stats: Stats | undefined;
      if (entry.isSymbolicLink()) {
        stats = statIfPresent(`${baseDir}/${path}`, path);
        if (!stats?.isFile()) continue; // a link to a directory is not followed; a dangling link names nothing
        isDir = false;
      }
      if (isDir) {
        const below = active.filter(({ glob, level }) => (glob.recursive || level + 1 < glob.depth) && (!UNWALKED.has(entry.name) || glob.names.has(entry.name)));
        const towardBase = globs.some((glob) => glob.base !== path && isWithin(glob.base, path));
        const isBase = globs.some((glob) => glob.base === path);
        if (below.length > 0 || towardBase || isBase) pending.push({ dir: path, active: below.map(({ glob, level }) => ({ glob, level: level + 1 })) });
        continue;
      }
      if (!entry.isFile() && !stats) continue;
      let matched = false;
      for (let g = 0; g < active.length && !matched; g++) matched = active[g]!.glob.matches(cuts[g] === 0 ? path : path.slice(cuts[g]));
      if (matched) found.set(path, stats);
    }
  }
}

/** True when `path` is `dir` or lies inside it (both relative, `""` being the base directory). */
function isWithin(path: string, dir: string): boolean {
  if (dir === "") return path !== ".." && !path.startsWith("../");
  return path === dir || path.startsWith(`${dir}/`);
}

function readDirIfPresent(dir: string): Dirent[] {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return [];
    throw new CacheKeyReadError(dir, `cannot list it (${code ?? (error as Error).message})`, { cause: error });
  }
}

/** The `stat` of `path`, or undefined if it names nothing (or a dangling link). */
export function statIfPresent(absolute: string, shown: string): Stats | undefined {
  try {
    return statSync(absolute, { throwIfNoEntry: false });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw new CacheKeyReadError(shown, `cannot stat ${absolute} (${code ?? (error as Error).message})`, { cause: error });
  }
}
