import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { gitDatabaseDir, gitStagingPath } from "../store/git-databases.js";
import { failureLine, runGit, type GitRun } from "./git-command.js";
import { GitCommandError, GitFetchError } from "./git-errors.js";
import { redactSecrets, type GitRemote } from "./git-url.js";

/** How a fetch of some refs ended: fetched, or the remote has no such ref (other failures throw). */
export type FetchOutcome = "fetched" | "not-found";

/**
 * Local commands ignore the user's and the system's git configuration, also what the environment adds to it
 * (`GIT_CONFIG_COUNT`/`_KEY_n`/`_VALUE_n`, and `GIT_CONFIG_PARAMETERS`, which `git -c` sets for what it runs) and
 * where it reads attributes from: a checkout is the same on every machine (no `core.autocrlf` rewriting it).
 */
const LOCAL_ENV: NodeJS.ProcessEnv = {
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_CONFIG_GLOBAL: "/dev/null",
  GIT_CONFIG_COUNT: "0",
  GIT_CONFIG_PARAMETERS: undefined,
  GIT_ATTR_SOURCE: undefined,
  GIT_ATTR_NOSYSTEM: "1",
};
/** The user's attributes file (`~/.config/git/attributes`) is read whatever the configuration says, unless set. */
const LOCAL_CONFIG = ["-c", "core.attributesFile=/dev/null"];

/** What git says when the remote lacks a ref (by name) or will not serve an object (by id). */
const NOT_FOUND = /couldn't find remote ref|not our ref|no such remote ref|unadvertised object|is not a valid|bad object/i;

/**
 * The bare repository database of one canonical URL, `git-v1/db/<id>`. Callers hold the repository's lock
 * (`lockKey("git", id)`) around everything but {@link hasCommit}: fetches write refs and objects.
 *
 * Credentials never reach it: the URL is given to `git fetch` on the command line (no remote is configured), no
 * `FETCH_HEAD` is written, and reflogs are off.
 */
export class GitDatabase {
  readonly dir: string;

  constructor(
    private readonly root: string,
    private readonly remote: GitRemote,
    private readonly timeoutMs: number,
  ) {
    this.dir = gitDatabaseDir(root, remote.id);
  }

  /** The full commit `rev` names in the database (a ref, a commit or its unique prefix), or undefined. */
  async resolve(rev: string): Promise<string | undefined> {
    if (!this.exists()) return undefined;
    const run = await this.local(["rev-parse", "--verify", "--quiet", "--end-of-options", `${rev}^{commit}`]);
    const commit = run.stdout.trim();
    return run.code === 0 && /^[0-9a-f]{40}([0-9a-f]{24})?$/.test(commit) ? commit : undefined;
  }

  /**
   * Fetches `refspecs` from the remote. The first fetch of a URL builds the database in `tmp/` and publishes it
   * by rename once git has finished, so a fetch killed half-way leaves no half-made database behind.
   */
  async fetch(refspecs: readonly string[]): Promise<FetchOutcome> {
    if (this.exists()) return this.fetchInto(this.dir, refspecs);
    const staging = gitStagingPath(this.root, "git-db");
    try {
      const init = await runGit(["init", "--quiet", "--bare", "--template=", staging], { timeoutMs: this.timeoutMs, env: LOCAL_ENV });
      if (init.code !== 0) throw new GitCommandError("init", redactSecrets(failureLine(init, this.timeoutMs), this.remote));
      const outcome = await this.fetchInto(staging, refspecs);
      mkdirSync(dirname(this.dir), { recursive: true });
      try {
        renameSync(staging, this.dir);
      } catch (error) {
        // Published meanwhile by a process that could not take the repository's lock either: fetch into that one.
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== "ENOTEMPTY" && code !== "EEXIST") throw error;
        rmSync(staging, { recursive: true, force: true });
        return await this.fetchInto(this.dir, refspecs);
      }
      return outcome;
    } catch (error) {
      rmSync(staging, { recursive: true, force: true });
      throw error;
    }
  }

  /** Writes the files of `commit` into `target` (a new directory), as a checkout would, without `.git`. */
  async exportTree(commit: string, target: string): Promise<void> {
    await mkdir(target, { recursive: false });
    const indexFile = gitStagingPath(this.root, "git-index");
    try {
      const env = { ...LOCAL_ENV, GIT_INDEX_FILE: indexFile };
      const read = await this.local(["read-tree", "--end-of-options", commit], env);
      if (read.code !== 0) throw new GitCommandError("read-tree", redactSecrets(failureLine(read, this.timeoutMs), this.remote));
      const checkout = await this.local([`--work-tree=${target}`, "checkout-index", "--all", "--force"], env);
      if (checkout.code !== 0) throw new GitCommandError("checkout-index", redactSecrets(failureLine(checkout, this.timeoutMs), this.remote));
    } finally {
      await rm(indexFile, { force: true });
    }
  }

  /** A database is published whole by rename, so its directory existing means it is complete. */
  exists(): boolean {
    return existsSync(this.dir);
  }

  private async fetchInto(gitDir: string, refspecs: readonly string[]): Promise<FetchOutcome> {
    const run = await runGit(
      ["fetch", "--quiet", "--force", "--no-tags", "--no-write-fetch-head", "--no-recurse-submodules", "--end-of-options", this.remote.fetchUrl, ...refspecs],
      { gitDir, timeoutMs: this.timeoutMs },
    );
    if (run.code === 0) return "fetched";
    if (!run.timedOut && NOT_FOUND.test(run.stderr)) return "not-found";
    throw new GitFetchError(this.remote.display, redactSecrets(failureLine(run, this.timeoutMs), this.remote));
  }

  private local(args: string[], env: NodeJS.ProcessEnv = LOCAL_ENV): Promise<GitRun> {
    return runGit([...LOCAL_CONFIG, ...args], { gitDir: this.dir, timeoutMs: this.timeoutMs, env });
  }
}
