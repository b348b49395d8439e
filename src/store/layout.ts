import { existsSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { basename, join, resolve } from "node:path";
import { ensureDirectory } from "./directories.js";
import { CacheRootError, asWriteError, describeRootFailure } from "./errors.js";
import { stagingPath } from "./staging.js";

/**
 * The buckets this build reads and writes, by versioned directory name. A breaking format change bumps the
 * suffix; `cache prune` removes `<word>-v<N>` directories that are not listed here.
 */
export const BUCKETS = {
  index: "index-v1",
  blobs: "blobs-v1",
  trees: "trees-v1",
  git: "git-v1",
  locks: "locks-v1",
  /** What restored trees' targets looked like, so an unchanged target is left alone (`restore-stamps.ts`). */
  stamps: "stamps-v1",
} as const;

/** Matches any versioned bucket directory name, known or not. */
export const BUCKET_NAME = /^[a-z][a-z0-9]*-v\d+$/;

/** Staging directory on the same filesystem as the buckets, so every publish is a rename. */
export const TMP_DIR = "tmp";
export const LOCK_FILE = ".lock";
/** Where exclusive requests queue so a stream of shared ones cannot starve them (see `RootLock`). */
export const QUEUE_LOCK_FILE = ".lock-queue";
export const CACHEDIR_TAG = "CACHEDIR.TAG";

const TAG_TEXT =
  "Signature: 8a477f597d28d172789f06886806bc55\n" +
  "# This file is a cache directory tag created by cachet.\n" +
  "# For information about cache directory tags see https://bford.info/cachedir/\n";

/** Paths inside one cache root. */
export class CacheLayout {
  constructor(readonly root: string) {}

  get lockFile(): string {
    return join(this.root, LOCK_FILE);
  }
  get queueLockFile(): string {
    return join(this.root, QUEUE_LOCK_FILE);
  }
  /** The index bucket; `CURRENT` there names the database file (see `index-file.ts`). */
  get indexDir(): string {
    return join(this.root, BUCKETS.index);
  }
  get tmp(): string {
    return join(this.root, TMP_DIR);
  }
  bucket(name: keyof typeof BUCKETS): string {
    return join(this.root, BUCKETS[name]);
  }
  /** `blobs-v1/ab/cd/<sha256>`: two levels of fan-out keep directories small. */
  blob(digest: string): string {
    return join(this.root, BUCKETS.blobs, digest.slice(0, 2), digest.slice(2, 4), digest);
  }
  tree(id: string): string {
    return join(this.root, BUCKETS.trees, id);
  }
  keyLock(hash: string): string {
    return join(this.root, BUCKETS.locks, hash.slice(0, 2), `${hash}.lock`);
  }
  /** The lock a restore takes on its target, keyed by the target's absolute path. */
  targetLock(target: string): string {
    return this.keyLock(createHash("sha256").update("restore-target\0").update(resolve(target)).digest("hex"));
  }

  /** Creates the root's fixed files and buckets if missing. Safe to run from many processes at once. */
  ensure(): void {
    try {
      ensureDirectory(this.root);
    } catch (error) {
      throw new CacheRootError(this.root, describeRootFailure(error as NodeJS.ErrnoException), { cause: error });
    }
    try {
      for (const bucket of [BUCKETS.index, BUCKETS.blobs, BUCKETS.trees, BUCKETS.locks, TMP_DIR]) {
        ensureDirectory(join(this.root, bucket));
      }
      writeIfMissing(join(this.root, CACHEDIR_TAG), TAG_TEXT, this.tmp);
      writeIfMissing(join(this.root, ".gitignore"), "*\n", this.tmp);
    } catch (error) {
      const wrapped = asWriteError(this.root, error);
      if (wrapped !== error) throw wrapped;
      throw new CacheRootError(this.root, describeRootFailure(error as NodeJS.ErrnoException), { cause: error });
    }
  }
}

/**
 * Writes the file in `stagingDir` and renames it into place, so a crash or a full disk never leaves it empty or
 * half-written (a staged leftover is swept by `prune`). Concurrent initialisers write the same text, so the
 * last rename winning is harmless.
 */
function writeIfMissing(path: string, text: string, stagingDir: string): void {
  if (existsSync(path)) return;
  const staged = stagingPath(stagingDir, basename(path));
  try {
    writeFileSync(staged, text, { flag: "wx" });
    renameSync(staged, path);
  } catch (error) {
    rmSync(staged, { force: true });
    throw error;
  }
}
