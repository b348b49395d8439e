// Cache keys of local directories: each form changes the key when what it reads changes and only then; digests are
// memoized by stat; `.git` is read without git; the key does not depend on walk order, spec order or location.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, cpSync, mkdirSync, rmSync, statSync, utimesSync, writeFileSync, renameSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import {
  CacheKeyReadError,
  CacheKeySpecError,
  FILE_DIGEST_MEMO_FORMAT,
  FILE_DIGEST_MEMO_NAME,
  GitStateError,
  SettingError,
  alwaysRuns,
  cacheKeyOf,
  computeCacheKey,
  diffCacheKeyComponents,
  formatCacheKeySpec,
  openStore,
  parseCacheKeySpec,
  readPackageCachetFields,
  sha256Hex,
  type CacheKeySpec,
  type CacheStore,
} from "../src/index.js";
import { tempDir } from "./helpers.js";
import { suiteStore } from "./suite-store.js";

const suite = suiteStore();
let projects = 0;

/** A fresh directory holding `files` (path → content). */
function project(files: Record<string, string> = {}): string {
  const dir = join(suite.root, `project-${++projects}`);
  mkdirSync(dir, { recursive: true });
  for (const [path, content] of Object.entries(files)) write(dir, path, content);
  return dir;
}

function write(dir: string, path: string, content: string): void {
  mkdirSync(join(dir, path, ".."), { recursive: true });
  writeFileSync(join(dir, path), content);
}

async function keyOf(dir: string, specs: readonly CacheKeySpec[], options: { env?: NodeJS.ProcessEnv; store?: CacheStore } = {}): Promise<string> {
  return (await computeCacheKey(dir, specs, options)).key;
}

function git(dir: string, ...args: string[]): string {
  return execFileSync("git", args, {
    cwd: dir,
    encoding: "utf8",
    timeout: 30_000,
    env: { ...process.env, GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@example.com", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@example.com", GIT_CONFIG_NOSYSTEM: "1", HOME: suite.root },
  }).trim();
}

function repository(): string {
  const dir = project({ "package.json": "{}\n", "src/a.ts": "export const a = 1;\n" });
  git(dir, "init", "-q", "-b", "main");
  git(dir, "add", ".");
  git(dir, "commit", "-q", "-m", "first");
  return dir;
}

describe("file keys", () => {
  test("an edit changes the key; a touch, a rewrite of the same bytes and a non-execute chmod do not", async () => {
    const dir = project({ "a.txt": "one", "b.txt": "two" });
    const specs = ["*.txt"];
    const first = await keyOf(dir, specs);
    utimesSync(join(dir, "a.txt"), new Date(2001, 1, 1), new Date(2001, 1, 1));
    assert.equal(await keyOf(dir, specs), first, "touch");
    writeFileSync(join(dir, "a.txt"), "one");
    assert.equal(await keyOf(dir, specs), first, "same bytes rewritten");
    chmodSync(join(dir, "a.txt"), 0o640);
    assert.equal(await keyOf(dir, specs), first, "group/other bits are not keyed");
    writeFileSync(join(dir, "a.txt"), "uno");
    assert.notEqual(await keyOf(dir, specs), first, "edit");
  });

  test("the owner-execute bit is keyed (a script made executable changes the key), and explain says so", async () => {
    const dir = project({ "run.sh": "echo hi\n" });
    const before = await computeCacheKey(dir, ["run.sh"]);
    chmodSync(join(dir, "run.sh"), 0o755);
    const after = await computeCacheKey(dir, ["run.sh"]);
    assert.notEqual(after.key, before.key);
    assert.deepEqual(diffCacheKeyComponents(before.components, after.components), ["file run.sh became executable"]);
  });

  test("relative paths are keyed: a rename changes the key; the same files elsewhere give the same key", async () => {
    const dir = project({ "src/a.ts": "a", "src/deep/b.ts": "b", "README.md": "r" });
    const specs = ["src/**/*.ts", "README.md"];
    const first = await keyOf(dir, specs);
    const copy = project();
    cpSync(dir, copy, { recursive: true });
    utimesSync(join(copy, "src/a.ts"), new Date(2010, 1, 1), new Date(2010, 1, 1));
    assert.equal(await keyOf(copy, specs), first, "another location, other mtimes");
    renameSync(join(copy, "src/deep/b.ts"), join(copy, "src/deep/c.ts"));
    assert.notEqual(await keyOf(copy, specs), first);
  });

  test("a named file that is absent is keyed as absent: creating it changes the key, and explain says it appeared", async () => {
    const dir = project({ "package.json": "{}" });
    const before = await computeCacheKey(dir, [{ file: "requirements.txt" }, "package.json"]);
    assert.equal(before.components.files["requirements.txt"], null);
    write(dir, "requirements.txt", "x");
    const after = await computeCacheKey(dir, [{ file: "requirements.txt" }, "package.json"]);
    assert.notEqual(after.key, before.key);
    assert.deepEqual(diffCacheKeyComponents(before.components, after.components), ["file requirements.txt appeared"]);
    rmSync(join(dir, "requirements.txt"));
    assert.equal(await keyOf(dir, [{ file: "requirements.txt" }, "package.json"]), before.key);
  });

  test("** globs match at any depth, dot files included; files outside the glob do not count", async () => {
    const dir = project({ "src/a.ts": "a", "src/x/y/z.ts": "z", "src/.hidden.ts": "h", "src/notes.md": "n", "other/o.ts": "o" });
    const { components } = await computeCacheKey(dir, ["src/**/*.ts"]);
    assert.deepEqual(Object.keys(components.files), ["src/.hidden.ts", "src/a.ts", "src/x/y/z.ts"]);
    const key = await keyOf(dir, ["src/**/*.ts"]);
    write(dir, "src/notes.md", "changed");
    write(dir, "other/o.ts", "changed");
    assert.equal(await keyOf(dir, ["src/**/*.ts"]), key);
    write(dir, "src/x/y/z.ts", "changed");
    assert.notEqual(await keyOf(dir, ["src/**/*.ts"]), key);
  });

  test("a single-level glob does not descend; !pattern excludes", async () => {
    const dir = project({ "a.json": "1", "sub/b.json": "2", "src/a.ts": "a", "src/a.test.ts": "t" });
    assert.deepEqual(Object.keys((await computeCacheKey(dir, ["*.json"])).components.files), ["a.json"]);
    assert.deepEqual(Object.keys((await computeCacheKey(dir, ["src/**", "!**/*.test.ts"])).components.files), ["src/a.ts"]);
  });

  test("node_modules and .git are not walked unless a pattern names them", async () => {
    const dir = project({ "index.js": "i", "node_modules/dep/index.js": "d", "lib/node_modules/x/y.js": "y", ".git/hooks/h.js": "h" });
    assert.deepEqual(Object.keys((await computeCacheKey(dir, ["**/*.js"])).components.files), ["index.js"]);
    assert.deepEqual(Object.keys((await computeCacheKey(dir, ["node_modules/**/*.js"])).components.files), ["node_modules/dep/index.js"]);
    assert.deepEqual(Object.keys((await computeCacheKey(dir, ["**/node_modules/**/*.js"])).components.files), [
      "lib/node_modules/x/y.js",
      "node_modules/dep/index.js",
    ]);
    assert.deepEqual(Object.keys((await computeCacheKey(dir, ["node_modules/dep/index.js"])).components.files), ["node_modules/dep/index.js"]);
    assert.deepEqual(Object.keys((await computeCacheKey(dir, ["**/.gitignore", "**/*.js"])).components.files), ["index.js"], ".gitignore does not name .git");
  });

  test("symbolic links to files count as their targets; links to directories are not followed", async () => {
    const dir = project({ "real/a.txt": "a", "target.txt": "t" });
    symlinkSync(join(dir, "target.txt"), join(dir, "real/link.txt"));
    symlinkSync(join(dir, "real"), join(dir, "real/loop"));
    const { components } = await computeCacheKey(dir, ["real/**"]);
    assert.deepEqual(Object.keys(components.files), ["real/a.txt", "real/link.txt"]);
    assert.equal(components.files["real/link.txt"], sha256Hex("t"));
  });

  test("a path naming a directory, an absolute path and a directory that does not exist are clear errors", async () => {
    const dir = project({ "src/a.ts": "a" });
    await assert.rejects(computeCacheKey(dir, [{ file: "src" }]), (error: unknown) => error instanceof CacheKeySpecError && /names a directory, .*: use "src\/\*\*"/.test(error.message));
    await assert.rejects(computeCacheKey(join(dir, "missing"), ["*"]), CacheKeyReadError);
    assert.throws(() => parseCacheKeySpec("/etc/passwd"), (error: unknown) => error instanceof CacheKeySpecError && /is absolute/.test(error.message));
    await assert.rejects(computeCacheKey(dir, ["/etc/passwd"]), (error: unknown) => error instanceof CacheKeySpecError && /is absolute/.test(error.message));
    const untyped = [{ glob: "*.ts" }] as unknown as CacheKeySpec[];
    await assert.rejects(computeCacheKey(dir, untyped), (error: unknown) => error instanceof CacheKeySpecError && /cache key \{"glob":"\*\.ts"\} is not a cache key form/.test(error.message));
  });
});

describe("dir keys", () => {
  test("creating or removing the directory changes the key; its contents do not", async () => {
    const dir = project({ "package.json": "{}" });
    const specs: CacheKeySpec[] = [{ dir: "src" }];
    const absent = await computeCacheKey(dir, specs);
    mkdirSync(join(dir, "src"));
    const present = await computeCacheKey(dir, specs);
    assert.notEqual(present.key, absent.key);
    assert.deepEqual(diffCacheKeyComponents(absent.components, present.components), ["directory src was created"]);
    write(dir, "src/a.ts", "a");
    assert.equal(await keyOf(dir, specs), present.key);
    rmSync(join(dir, "src"), { recursive: true });
    assert.equal(await keyOf(dir, specs), absent.key);
  });

  test("a file where the directory should be is not the directory", async () => {
    const dir = project({ src: "not a dir" });
    assert.deepEqual((await computeCacheKey(dir, [{ dir: "src" }])).components.dirs, { src: false });
  });
});

describe("env keys", () => {
  test("unset, empty and set are three keys; the value never appears in the components", async () => {
    const dir = project();
    const specs: CacheKeySpec[] = [{ env: "MODE" }];
    const unset = await computeCacheKey(dir, specs, { env: {} });
    const empty = await computeCacheKey(dir, specs, { env: { MODE: "" } });
    const set = await computeCacheKey(dir, specs, { env: { MODE: "production-secret" } });
    assert.equal(new Set([unset.key, empty.key, set.key]).size, 3);
    assert.equal(await keyOf(dir, specs, { env: { MODE: "production-secret", OTHER: "x" } }), set.key, "other variables do not count");
    assert.ok(!JSON.stringify(set.components).includes("production-secret"));
    assert.deepEqual(diffCacheKeyComponents(unset.components, empty.components), ["env MODE was set"]);
    assert.deepEqual(diffCacheKeyComponents(empty.components, set.components), ["env MODE changed"]);
    assert.deepEqual(diffCacheKeyComponents(set.components, unset.components), ["env MODE was unset"]);
  });
});

describe("git keys (read from .git, without git)", () => {
  test("a new commit changes a commit key and not a tags key; a new tag changes a tags key", async () => {
    const dir = repository();
    const commit = await computeCacheKey(dir, [{ git: true }]);
    assert.equal(commit.components.git?.commit, git(dir, "rev-parse", "HEAD"));
    const tags = await keyOf(dir, [{ git: { tags: true } }]);
    write(dir, "src/a.ts", "export const a = 2;\n");
    assert.equal(await keyOf(dir, [{ git: true }]), commit.key, "uncommitted edits are not the commit");
    git(dir, "commit", "-q", "-am", "second");
    const next = await computeCacheKey(dir, [{ git: true }]);
    assert.notEqual(next.key, commit.key);
    assert.match(diffCacheKeyComponents(commit.components, next.components)[0]!, /^git commit changed \([0-9a-f]{12} → [0-9a-f]{12}\)$/);
    assert.equal(await keyOf(dir, [{ git: { tags: true } }]), tags, "tags key: commits do not count");
    const before = await computeCacheKey(dir, [{ git: { commit: true, tags: true } }]);
    git(dir, "tag", "-a", "v1.0.0", "-m", "release");
    const tagged = await computeCacheKey(dir, [{ git: { commit: true, tags: true } }]);
    assert.notEqual(tagged.key, before.key);
    assert.equal(tagged.components.git?.tags?.["v1.0.0"], git(dir, "rev-parse", "refs/tags/v1.0.0"));
    assert.deepEqual(diffCacheKeyComponents(before.components, tagged.components), [`git tag v1.0.0 added (${tagged.components.git!.tags!["v1.0.0"]!.slice(0, 12)})`]);
  });

  test("refs only in packed-refs read the same as loose ones", async () => {
    const dir = repository();
    git(dir, "tag", "v1");
    git(dir, "tag", "-a", "v2", "-m", "annotated");
    const loose = await computeCacheKey(dir, [{ git: { commit: true, tags: true } }]);
    git(dir, "pack-refs", "--all", "--prune");
    assert.throws(() => statSync(join(dir, ".git/refs/heads/main")), "the branch is packed now");
    const packed = await computeCacheKey(dir, [{ git: { commit: true, tags: true } }]);
    assert.equal(packed.key, loose.key);
    assert.equal(packed.components.git?.commit, git(dir, "rev-parse", "HEAD"));
    assert.deepEqual(Object.keys(packed.components.git?.tags ?? {}), ["v1", "v2"]);
  });

  test("a detached HEAD, an unborn branch and no repository at all", async () => {
    const dir = repository();
    const head = git(dir, "rev-parse", "HEAD");
    git(dir, "checkout", "-q", "--detach", head);
    assert.equal((await computeCacheKey(dir, ["git"].map(parseCacheKeySpec))).components.git?.commit, head);
    const unborn = project();
    git(unborn, "init", "-q", "-b", "main");
    assert.deepEqual((await computeCacheKey(unborn, [{ git: true }])).components.git, { repository: true, commit: null });
    const none = tempDir();
    after(none.cleanup);
    assert.deepEqual((await computeCacheKey(none.path, [{ git: true }])).components.git, { repository: false, commit: null });
  });

  test("a package inside the repository finds the .git above it", async () => {
    const dir = repository();
    mkdirSync(join(dir, "packages/lib"), { recursive: true });
    assert.equal((await computeCacheKey(join(dir, "packages/lib"), [{ git: true }])).components.git?.commit, git(dir, "rev-parse", "HEAD"));
  });

  test("a linked worktree's .git file (gitdir: and commondir) gives its own HEAD and the shared tags", async () => {
    const dir = repository();
    git(dir, "tag", "v1");
    const worktree = join(suite.root, `worktree-${++projects}`);
    git(dir, "worktree", "add", "-q", "-b", "feature", worktree);
    assert.ok(statSync(join(worktree, ".git")).isFile());
    write(worktree, "b.txt", "b");
    git(worktree, "add", "b.txt");
    git(worktree, "commit", "-q", "-m", "on feature");
    const state = (await computeCacheKey(worktree, [{ git: { commit: true, tags: true } }])).components.git;
    assert.equal(state?.commit, git(worktree, "rev-parse", "HEAD"));
    assert.notEqual(state?.commit, git(dir, "rev-parse", "HEAD"));
    assert.deepEqual(Object.keys(state?.tags ?? {}), ["v1"]);
    git(dir, "pack-refs", "--all", "--prune");
    assert.equal((await computeCacheKey(worktree, [{ git: true }])).components.git?.commit, git(worktree, "rev-parse", "HEAD"));
  });

  test("a .git file without gitdir: and a reftable repository are clear errors", async () => {
    const broken = project({ ".git": "nonsense\n" });
    await assert.rejects(computeCacheKey(broken, [{ git: true }]), (error: unknown) => error instanceof GitStateError && /no "gitdir:" line/.test(error.message));
    const reftable = project({ ".git/HEAD": "ref: refs/heads/.invalid\n" });
    mkdirSync(join(reftable, ".git/reftable"));
    await assert.rejects(computeCacheKey(reftable, [{ git: true }]), (error: unknown) => error instanceof GitStateError && /reftable/.test(error.message));
  });
});

describe("the digest memo", () => {
  test("an unchanged tree reads no file; a touched file is read again and keeps its key; an edit is seen", async () => {
    const dir = project(Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`src/f${i}.ts`, `export const v = ${i};\n`])));
    await settle();
    const store = suite.store;
    const cold = await computeCacheKey(dir, ["src/**/*.ts"], { store });
    assert.deepEqual(cold.digests, { read: 30, memoized: 0 });
    const warm = await computeCacheKey(dir, ["src/**/*.ts"], { store });
    assert.equal(warm.key, cold.key);
    assert.deepEqual(warm.digests, { read: 0, memoized: 30 });
    utimesSync(join(dir, "src/f3.ts"), new Date(2003, 1, 1), new Date(2003, 1, 1));
    const touched = await computeCacheKey(dir, ["src/**/*.ts"], { store });
    assert.equal(touched.key, cold.key);
    assert.deepEqual(touched.digests, { read: 1, memoized: 29 });
    writeFileSync(join(dir, "src/f4.ts"), "export const v = 44;\n");
    const edited = await computeCacheKey(dir, ["src/**/*.ts"], { store });
    assert.notEqual(edited.key, cold.key);
    assert.deepEqual(diffCacheKeyComponents(cold.components, edited.components), ["file src/f4.ts changed"]);
  });

  test("a memoized digest is used without reading the file (shown by a memo that disagrees with the bytes)", async () => {
    // A file can only be made unreadable by changing its ctime, so instead the memo is given another digest for the
    // file's exact stat: the key then comes out with that digest, which it could not if the file were read. This is
    // also the documented limit: an edit that keeps size, mtime, ctime and inode is not seen.
    const dir = project({ "a.txt": "real" });
    await settle();
    const store = suite.store;
    await computeCacheKey(dir, ["a.txt"], { store });
    const stats = statSync(join(dir, "a.txt"));
    const planted = sha256Hex("planted");
    await store.put(FILE_DIGEST_MEMO_NAME, sha256Hex(dir), memoBytes(["a.txt"], [[stats.size, stats.mtimeMs, stats.ctimeMs, stats.ino]], [planted]), {
      format: FILE_DIGEST_MEMO_FORMAT,
    });
    const result = await computeCacheKey(dir, ["a.txt"], { store });
    assert.equal(result.components.files["a.txt"], planted);
    assert.deepEqual(result.digests, { read: 0, memoized: 1 });
    chmodSync(join(dir, "a.txt"), 0o600); // a chmod moves the ctime: the memo no longer applies
    assert.equal((await computeCacheKey(dir, ["a.txt"], { store })).components.files["a.txt"], sha256Hex("real"));
  });

  test("a large file (read on the thread pool) is keyed and memoized like a small one", async () => {
    const big = Buffer.alloc(3 * 1024 * 1024, 7);
    const dir = project();
    writeFileSync(join(dir, "model.bin"), big);
    await settle();
    const store = suite.store;
    const first = await computeCacheKey(dir, ["*.bin"], { store });
    assert.equal(first.components.files["model.bin"], sha256Hex(big));
    assert.deepEqual((await computeCacheKey(dir, ["*.bin"], { store })).digests, { read: 0, memoized: 1 });
    big[12345] = 8;
    writeFileSync(join(dir, "model.bin"), big);
    assert.equal((await computeCacheKey(dir, ["*.bin"], { store })).components.files["model.bin"], sha256Hex(big));
  });

  test("a file whose timestamps are not safely in the past is not memoized, so it is read every time", async () => {
    // Timestamps advance in clock ticks: a file changed within a tick of being hashed could change again without
    // its stat moving. The same holds for times in the future (clock skew, extracted archives).
    const dir = project({ "a.txt": "fresh", "b.txt": "settled" });
    const future = new Date(Date.now() + 3_600_000);
    utimesSync(join(dir, "a.txt"), future, future);
    await settle();
    const store = suite.store;
    await computeCacheKey(dir, ["*.txt"], { store });
    const again = await computeCacheKey(dir, ["*.txt"], { store });
    assert.deepEqual(again.digests, { read: 1, memoized: 1 });
    assert.equal(again.components.files["a.txt"], sha256Hex("fresh"));
  });

  test("the memo keeps rows another set of keys uses, and drops rows of files that are gone once they pile up", async () => {
    const dir = project(Object.fromEntries(Array.from({ length: 1200 }, (_, i) => [`gen/f${i}.js`, `${i}`])));
    write(dir, "package.json", "{}");
    await settle();
    const store = suite.store;
    const memoPaths = async () => {
      const stored = await store.getValue(FILE_DIGEST_MEMO_NAME, sha256Hex(dir));
      const bytes = Buffer.from(stored!.data);
      return (JSON.parse(bytes.toString("utf8", 4, 4 + bytes.readUInt32LE(0))) as string[]).length;
    };
    await computeCacheKey(dir, ["gen/**"], { store });
    await computeCacheKey(dir, ["package.json"], { store });
    assert.equal(await memoPaths(), 1201, "the gen/ rows stay while package.json is added");
    assert.deepEqual((await computeCacheKey(dir, ["gen/**"], { store })).digests, { read: 0, memoized: 1200 });
    for (let i = 50; i < 1200; i++) rmSync(join(dir, `gen/f${i}.js`));
    write(dir, "package.json", '{"v":2}');
    await settle();
    await computeCacheKey(dir, ["package.json"], { store });
    assert.equal(await memoPaths(), 51, "the rows of the 1150 deleted files are dropped, the 50 others kept");
  });

  test("a store that cannot be used means no memo, the same key and one warning", async () => {
    const dir = project({ "a.txt": "a", "b.txt": "b" });
    const scratch = tempDir();
    after(scratch.cleanup);
    const closed = await openStore({ cacheDir: join(scratch.path, "cache") });
    await closed.close();
    const warnings: string[] = [];
    const listener = (warning: Error) => warnings.push(warning.message);
    process.on("warning", listener);
    try {
      const expected = await keyOf(dir, ["*.txt"]);
      assert.equal(await keyOf(dir, ["*.txt"], { store: closed }), expected);
      assert.equal(await keyOf(dir, ["*.txt"], { store: closed }), expected);
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off("warning", listener);
    }
    assert.equal(warnings.filter((message) => message.includes("file digest memo")).length, 1);
  });
});

describe("specs", () => {
  test("parseCacheKeySpec reads every --key form and refuses bad ones", () => {
    assert.equal(parseCacheKeySpec("src/**/*.ts"), "src/**/*.ts");
    assert.deepEqual(parseCacheKeySpec("file:package.json"), { file: "package.json" });
    assert.deepEqual(parseCacheKeySpec("dir:src"), { dir: "src" });
    assert.deepEqual(parseCacheKeySpec("git"), { git: true });
    assert.deepEqual(parseCacheKeySpec("git:tags"), { git: { tags: true } });
    assert.deepEqual(parseCacheKeySpec("git:commit"), { git: { commit: true } });
    assert.deepEqual(parseCacheKeySpec("git:commit,tags"), { git: { commit: true, tags: true } });
    assert.deepEqual(parseCacheKeySpec("env:NODE_ENV"), { env: "NODE_ENV" });
    assert.equal(parseCacheKeySpec("./a:b"), "./a:b");
    for (const [text, message] of [
      ["", /empty path/],
      ["env:", /environment variable name/],
      ["file:", /non-empty relative path/],
      ["git:branch", /unknown git key "branch"/],
      ["url:https://x", /unknown form "url:"/],
    ] as const) {
      assert.throws(() => parseCacheKeySpec(text), (error: unknown) => error instanceof CacheKeySpecError && error.code === "CACHET_BAD_CACHE_KEY" && message.test(error.message), text);
    }
    for (const text of ["src/**/*.ts", "file:a", "dir:b", "git", "git:tags", "git:commit,tags", "env:X"]) {
      assert.deepEqual(parseCacheKeySpec(formatCacheKeySpec(parseCacheKeySpec(text))), parseCacheKeySpec(text));
    }
  });

  test("the order and repetition of specs, and file: versus a plain path, do not change the key", async () => {
    const dir = project({ "package.json": "{}", "src/a.ts": "a", "src/b/c.ts": "c" });
    const specs: CacheKeySpec[] = ["src/**/*.ts", { file: "package.json" }, { dir: "src" }, { env: "A" }, { git: true }];
    const key = await keyOf(dir, specs, { env: { A: "1" } });
    await fc.assert(
      fc.asyncProperty(fc.shuffledSubarray(specs, { minLength: specs.length, maxLength: specs.length }), fc.array(fc.constantFrom(...specs), { maxLength: 3 }), async (order, extra) => {
        assert.equal(await keyOf(dir, [...order, ...extra], { env: { A: "1" } }), key);
      }),
      { numRuns: 25 },
    );
    assert.equal(await keyOf(dir, ["src/**/*.ts", "package.json", { dir: "src" }, { env: "A" }, { git: { commit: true } }], { env: { A: "1" } }), key);
    assert.notEqual(await keyOf(dir, ["src/**/*.ts", "package.json", { dir: "src" }, { env: "A" }], { env: { A: "1" } }), key, "dropping a spec changes it");
  });

  test("property: the key changes exactly when a keyed file's path, content or execute bit changes", async () => {
    const name = fc.constantFrom("a.ts", "b.ts", "lib/c.ts", "lib/deep/d.ts", "e.md");
    const op = fc.oneof(
      fc.record({ kind: fc.constant("edit" as const), path: name, content: fc.string({ maxLength: 8 }) }),
      fc.record({ kind: fc.constant("touch" as const), path: name }),
      fc.record({ kind: fc.constant("chmod" as const), path: name, mode: fc.constantFrom(0o600, 0o644, 0o700, 0o755) }),
      fc.record({ kind: fc.constant("remove" as const), path: name }),
    );
    await fc.assert(
      fc.asyncProperty(fc.dictionary(name, fc.string({ maxLength: 8 }), { minKeys: 1 }), op, async (files, change) => {
        const dir = project(files);
        const specs = ["**/*.ts"];
        const before = await computeCacheKey(dir, specs);
        const target = join(dir, change.path);
        const existed = change.path in files;
        let keyed: boolean;
        if (change.kind === "edit") {
          write(dir, change.path, change.content);
          keyed = !existed || files[change.path] !== change.content;
        } else if (!existed) return;
        else if (change.kind === "touch") {
          utimesSync(target, new Date(2020, 1, 1), new Date(2020, 1, 1));
          keyed = false;
        } else if (change.kind === "chmod") {
          const wasExecutable = (statSync(target).mode & 0o100) !== 0;
          chmodSync(target, change.mode);
          keyed = wasExecutable !== ((change.mode & 0o100) !== 0);
        } else {
          rmSync(target);
          keyed = true;
        }
        if (!change.path.endsWith(".ts")) keyed = false;
        const after = await computeCacheKey(dir, specs);
        assert.equal(after.key !== before.key, keyed, `${JSON.stringify(change)} on ${JSON.stringify(files)}: ${diffCacheKeyComponents(before.components, after.components).join("; ")}`);
        assert.equal(diffCacheKeyComponents(before.components, after.components).length > 0, keyed);
      }),
      { numRuns: 40 },
    );
  });

  test("the key is a function of the components alone, also after they were stored as JSON", async () => {
    const dir = repository();
    write(dir, "123", "a file named like an array index");
    const result = await computeCacheKey(dir, ["src/**", "123", "missing.txt", { dir: "src" }, { git: { commit: true, tags: true } }, { env: "X" }], { env: { X: "1" } });
    assert.equal(result.components.files["missing.txt"], null);
    assert.equal(cacheKeyOf(result.components), result.key);
    assert.equal(cacheKeyOf(JSON.parse(JSON.stringify(result.components))), result.key);
    assert.equal(cacheKeyOf({ ...result.components, baseDir: "/elsewhere" }), result.key, "the directory is not part of the key");
  });

  test("the key does not depend on the order files were created in (walk order), and is stable across runs", async () => {
    const names = ["a.ts", "b/c.ts", "b/d/e.ts", "f.ts", "g/h.ts", "z.ts"];
    let expected: string | undefined;
    await fc.assert(
      fc.asyncProperty(fc.shuffledSubarray(names, { minLength: names.length, maxLength: names.length }), async (order) => {
        const dir = project();
        for (const name of order) write(dir, name, `content of ${name}`);
        const key = await keyOf(dir, ["**/*.ts"]);
        expected ??= key;
        assert.equal(key, expected);
      }),
      { numRuns: 15 },
    );
    // Another process computes the same key for the same files (nothing of the process goes into it).
    const dir = project({ "package.json": '{"name":"x"}\n', "src/index.ts": "export {};\n" });
    const specs: CacheKeySpec[] = [{ file: "package.json" }, { dir: "src" }, "src/**"];
    const script = `import(${JSON.stringify(new URL("../dist/index.js", import.meta.url).href)}).then(async (m) => process.stdout.write((await m.computeCacheKey(process.argv[1], JSON.parse(process.argv[2]))).key))`;
    const child = execFileSync(process.execPath, ["-e", script, dir, JSON.stringify(specs)], { encoding: "utf8", timeout: 30_000 });
    assert.equal(child, await keyOf(dir, specs));
  });
});

describe("package.json fields", () => {
  test("cacheKeys and alwaysRun are read and validated with clear errors", () => {
    const dir = project({
      "package.json": JSON.stringify({ name: "p", cachet: { cacheKeys: ["src/**", { file: "package.json" }, { git: { commit: true, tags: true } }, { env: "CI" }, { dir: "src" }], alwaysRun: ["p"] } }),
    });
    assert.deepEqual(readPackageCachetFields(dir), {
      cacheKeys: ["src/**", { file: "package.json" }, { git: { commit: true, tags: true } }, { env: "CI" }, { dir: "src" }],
      alwaysRun: ["p"],
    });
    assert.equal(alwaysRuns(dir, "p"), true);
    assert.equal(alwaysRuns(dir, "q"), false);
    assert.equal(alwaysRuns(project(), "p"), false);
    const cases: Array<[unknown, RegExp]> = [
      [{ cacheKeys: "src" }, /"cachet\.cacheKeys"="src" is not valid: expected an array of cache keys/],
      [{ cacheKeys: [{ file: "a", dir: "b" }] }, /"cachet\.cacheKeys\[0\]"=.* must have exactly one field/],
      [{ cacheKeys: [{ glob: "a" }] }, /"cachet\.cacheKeys\[0\]\.glob"="a" is not a cache key form/],
      [{ cacheKeys: [{ git: { commit: true, branch: true } }] }, /"cachet\.cacheKeys\[0\]\.git\.branch"=true is not a git key/],
      [{ cacheKeys: [{ git: {} }] }, /"cachet\.cacheKeys\[0\]\.git"=\{\} keys nothing/],
      [{ cacheKeys: [{ env: 3 }] }, /"cachet\.cacheKeys\[0\]\.env"=3 is not valid: expected an environment variable name/],
      [{ cacheKeys: ["/abs/path"] }, /is absolute/],
      [{ alwaysRun: "p" }, /"cachet\.alwaysRun"="p" is not valid: expected an array of entry names/],
      [{ alwaysRun: [""] }, /"cachet\.alwaysRun\[0\]"="" is not valid/],
      [{ cacheKey: [] }, /"cachet\.cacheKey"=\[\] is not a cachet setting: expected one of the fields cacheDir, cacheKeys, alwaysRun/],
    ];
    for (const [cachet, message] of cases) {
      const bad = project({ "package.json": JSON.stringify({ cachet }) });
      assert.throws(() => readPackageCachetFields(bad), (error: unknown) => error instanceof SettingError && message.test(error.message), JSON.stringify(cachet));
    }
  });
});

/** A digest memo in its documented layout (JSON paths, float64 stats, raw sha256 digests). */
function memoBytes(paths: string[], stats: number[][], digests: string[]): Buffer {
  const json = Buffer.from(JSON.stringify(paths));
  const statsAt = Math.ceil((4 + json.length) / 8) * 8;
  const numbers = Buffer.from(Float64Array.from(stats.flat()).buffer);
  const bytes = Buffer.concat([Buffer.alloc(4), json, Buffer.alloc(statsAt - 4 - json.length), numbers, Buffer.from(digests.join(""), "hex")]);
  bytes.writeUInt32LE(json.length, 0);
  return bytes;
}

/** Waits out the window in which a just-written file is not memoized (so memo counts are exact). */
async function settle(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 60));
}
