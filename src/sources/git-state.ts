import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { GitStateError } from "./cache-key-errors.js";

/** What a `{ git }` cache key saw, read from `.git` without running git. */
export interface GitState {
  /** Whether a repository was found at or above the directory. */
  repository: boolean;
  /** The commit HEAD points at (null for a branch with no commit yet), when the key asks for it. */
  commit?: string | null;
  /** Every tag and the object it names (the tag object for an annotated tag), when the key asks for them. */
  tags?: Record<string, string>;
}

const OBJECT_ID = /^[0-9a-f]{40}(?:[0-9a-f]{24})?$/;
/** Refs that live in a worktree's own git directory rather than the shared one. */
const PER_WORKTREE = /^(?:HEAD|refs\/bisect\/|refs\/worktree\/|refs\/rewritten\/)/;

/**
 * The git state of the repository that holds `dir` (its `.git` is searched upwards, as git does), read from
 * files: `HEAD`, loose refs, `packed-refs`, and for a linked worktree the `.git` file's `gitdir:` and the
 * `commondir` it names. A repository using the reftable format cannot be read this way and is an error.
 */
export function readGitState(dir: string, want: { commit: boolean; tags: boolean }): GitState {
  const found = findGitDir(dir);
  if (!found) return { repository: false, ...(want.commit ? { commit: null } : {}), ...(want.tags ? { tags: {} } : {}) };
  const { gitDir, commonDir } = found;
  if (existsSync(join(commonDir, "reftable"))) {
    throw new GitStateError(commonDir, "it stores refs as a reftable, which cachet reads only through git (use a file or env cache key instead)");
  }
  const refs = new RefReader(gitDir, commonDir);
  return {
    repository: true,
    ...(want.commit ? { commit: refs.resolve("HEAD") } : {}),
    ...(want.tags ? { tags: refs.tags() } : {}),
  };
}

function findGitDir(start: string): { gitDir: string; commonDir: string } | undefined {
  for (let dir = resolve(start); ; dir = dirname(dir)) {
    const dotGit = join(dir, ".git");
    let isFile: boolean | undefined;
    try {
      const stats = statSync(dotGit); // a .git that is a symbolic link counts as what it points to
      isFile = stats.isFile();
      if (!isFile && !stats.isDirectory()) isFile = undefined;
    } catch {
      isFile = undefined;
    }
    if (isFile === false) return { gitDir: dotGit, commonDir: commonDirOf(dotGit) };
    if (isFile === true) {
      const pointer = /^gitdir:\s*(.+?)\s*$/m.exec(readText(dotGit) ?? "");
      if (!pointer) throw new GitStateError(dotGit, 'the .git file has no "gitdir:" line');
      const gitDir = resolve(dir, pointer[1]!);
      if (!existsSync(join(gitDir, "HEAD"))) throw new GitStateError(dotGit, `its gitdir ${gitDir} has no HEAD`);
      return { gitDir, commonDir: commonDirOf(gitDir) };
    }
    if (dirname(dir) === dir) return undefined;
  }
}

function commonDirOf(gitDir: string): string {
  const common = readText(join(gitDir, "commondir"))?.trim();
  return common ? resolve(gitDir, common) : gitDir;
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR" || code === "EISDIR") return undefined;
    throw new GitStateError(file, `cannot read it (${code ?? (error as Error).message})`);
  }
}

class RefReader {
  private packed: Map<string, string> | undefined;

  constructor(
    private readonly gitDir: string,
    private readonly commonDir: string,
  ) {}

  /** The object id `name` points at, following symbolic refs; null if it points at nothing yet. */
  resolve(name: string, depth = 0): string | null {
    if (depth > 10) throw new GitStateError(this.gitDir, `symbolic ref ${name} is part of a loop`);
    const loose = readText(join(PER_WORKTREE.test(name) ? this.gitDir : this.commonDir, name))?.trim();
    if (loose !== undefined) {
      const target = /^ref:\s*(\S+)$/.exec(loose);
      if (target) return this.resolve(target[1]!, depth + 1);
      if (OBJECT_ID.test(loose)) return loose;
      throw new GitStateError(this.gitDir, `ref ${name} holds neither an object id nor "ref:"`);
    }
    return this.packedRefs().get(name) ?? null;
  }

  /** Tag name (without `refs/tags/`) → object id; a loose ref overrides a packed one, as in git. */
  tags(): Record<string, string> {
    const tags = new Map<string, string>();
    for (const [name, id] of this.packedRefs()) if (name.startsWith("refs/tags/")) tags.set(name.slice("refs/tags/".length), id);
    const walk = (folder: string, prefix: string): void => {
      let entries;
      try {
        entries = readdirSync(folder, { withFileTypes: true });
      } catch {
        return;
      }
      for (const entry of entries) {
        const name = `${prefix}${entry.name}`;
        if (entry.isDirectory()) walk(join(folder, entry.name), `${name}/`);
        else if (entry.isFile() && !entry.name.endsWith(".lock")) {
          const id = this.resolve(`refs/tags/${name}`);
          if (id !== null) tags.set(name, id);
        }
      }
    };
    walk(join(this.commonDir, "refs", "tags"), "");
    return Object.fromEntries([...tags].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  private packedRefs(): Map<string, string> {
    if (this.packed) return this.packed;
    this.packed = new Map();
    for (const line of (readText(join(this.commonDir, "packed-refs")) ?? "").split("\n")) {
      // "# pack-refs with: …" is a header; "^<id>" peels the tag above it and is not a ref of its own.
      const ref = /^([0-9a-f]{40}(?:[0-9a-f]{24})?) (\S+)$/.exec(line.trim());
      if (ref) this.packed.set(ref[2]!, ref[1]!);
    }
    return this.packed;
  }
}
