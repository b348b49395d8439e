import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, cpSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  UnsupportedFileTypeError,
  hashFile,
  hashFileSync,
  hashTree,
  hashTreeSync,
  treeDigestFromEntries,
  type HashTreeOptions,
  type TreeDigest,
  type TreeEntry,
} from "../src/hash/index.js";

const sha = (data: string | Buffer): string => createHash("sha256").update(data).digest("hex");
const posix = process.platform !== "win32";

let scratch: string;
before(() => {
  scratch = mkdtempSync(join(tmpdir(), "cachet-hash-"));
});
after(() => rmSync(scratch, { recursive: true, force: true }));

let serial = 0;
const fresh = (name: string): string => join(scratch, `${name}-${serial++}`);

/** A small tree with a nested file, an executable, an empty directory and a relative symlink. */
function makeTree(root: string): void {
  mkdirSync(join(root, "src/lib"), { recursive: true });
  mkdirSync(join(root, "empty"));
  writeFileSync(join(root, "README"), "hello\n");
  writeFileSync(join(root, "src/lib/a.txt"), "a".repeat(100_000));
  writeFileSync(join(root, "src/run.sh"), "#!/bin/sh\necho hi\n", { mode: 0o755 });
  writeFileSync(join(root, "src/data.bin"), Buffer.from([0, 1, 2, 255]));
  if (posix) symlinkSync("lib/a.txt", join(root, "src/link"));
  chmodSync(join(root, "README"), 0o644);
}

describe("hashFile", () => {
  it("gives the sha256, size and owner-executable bit of a file", async () => {
    const path = fresh("file");
    writeFileSync(path, "content");
    assert.deepEqual(await hashFile(path), { digest: sha("content"), size: 7, executable: false });
    if (posix) {
      chmodSync(path, 0o744);
      assert.equal((await hashFile(path)).executable, true);
      chmodSync(path, 0o655);
      assert.equal((await hashFile(path)).executable, false);
    }
  });

  it("streams files larger than its chunk, and empty files", async () => {
    const big = Buffer.alloc(64 * 1024 * 3 + 17, 7);
    big[100_000] = 1;
    const path = fresh("big");
    writeFileSync(path, big);
    assert.deepEqual(await hashFile(path), { digest: sha(big), size: big.length, executable: false });
    const exact = fresh("exact");
    writeFileSync(exact, big.subarray(0, 64 * 1024));
    assert.equal((await hashFile(exact)).digest, sha(big.subarray(0, 64 * 1024)));
    const empty = fresh("empty");
    writeFileSync(empty, "");
    assert.deepEqual(await hashFile(empty), { digest: sha(""), size: 0, executable: false });
  });

  it("refuses a directory and a FIFO with an error naming the path", { skip: !posix }, async () => {
    const dir = fresh("dir");
    mkdirSync(dir);
    await assert.rejects(hashFile(dir), (error: unknown) => {
      assert.ok(error instanceof UnsupportedFileTypeError);
      assert.equal(error.code, "CACHET_UNSUPPORTED_FILE");
      assert.equal(error.message, `cannot hash "${dir}": it is a directory, not a regular file`);
      return true;
    });
    const fifo = fresh("fifo");
    execFileSync("mkfifo", [fifo], { timeout: 10_000, killSignal: "SIGKILL" });
    await assert.rejects(hashFile(fifo), { message: `cannot hash "${fifo}": it is a FIFO (named pipe), not a regular file` });
  });
});

describe("hashTree", () => {
  let original: string;
  let digest: string;
  before(async () => {
    original = fresh("tree");
    makeTree(original);
    digest = (await hashTree(original)).digest;
  });

  /** Copies the tree, applies `change`, and returns the copy's digest. */
  async function digestAfter(change: (root: string) => void): Promise<string> {
    const copy = fresh("copy");
    cpSync(original, copy, { recursive: true, verbatimSymlinks: true });
    change(copy);
    return (await hashTree(copy)).digest;
  }

  it("counts what it hashed and reports every entry", async () => {
    const seen: string[] = [];
    const result = await hashTree(original, { onEntry: (path) => seen.push(path) });
    const expected = ["README", "empty", "src", "src/data.bin", "src/lib", "src/lib/a.txt", "src/run.sh", ...(posix ? ["src/link"] : [])];
    assert.deepEqual(seen.sort(), expected.sort());
    assert.deepEqual(result, {
      digest,
      files: 4,
      directories: 3,
      symlinks: posix ? 1 : 0,
      bytes: 6 + 100_000 + 18 + 4,
    });
  });

  it("is the same for a copy elsewhere", async () => {
    assert.equal(await digestAfter(() => {}), digest);
  });

  it("ignores mtimes and group/other mode bits", { skip: !posix }, async () => {
    const same = await digestAfter((root) => {
      utimesSync(join(root, "README"), new Date(0), new Date(0));
      utimesSync(join(root, "src"), new Date(1e12), new Date(1e12));
      chmodSync(join(root, "README"), 0o600);
      chmodSync(join(root, "src/run.sh"), 0o700);
      chmodSync(join(root, "src/lib"), 0o700);
    });
    assert.equal(same, digest);
  });

  const changes: [string, (root: string) => void][] = [
    ["a changed byte", (root) => writeFileSync(join(root, "src/data.bin"), Buffer.from([0, 1, 2, 254]))],
    ["a renamed file", (root) => renameSync(join(root, "README"), join(root, "README.md"))],
    ["a file moved to another directory", (root) => renameSync(join(root, "README"), join(root, "empty/README"))],
    ["an added empty directory", (root) => mkdirSync(join(root, "src/new"))],
    ["a removed empty directory", (root) => rmSync(join(root, "empty"), { recursive: true })],
    ["an added empty file", (root) => writeFileSync(join(root, "empty/.keep"), "")],
    ["an empty directory replaced by an empty file", (root) => (rmSync(join(root, "empty"), { recursive: true }), writeFileSync(join(root, "empty"), ""))],
  ];
  if (posix) {
    changes.push(
      ["a set executable bit", (root) => chmodSync(join(root, "README"), 0o744)],
      ["a cleared executable bit", (root) => chmodSync(join(root, "src/run.sh"), 0o644)],
      ["a changed symlink target", (root) => (unlinkSync(join(root, "src/link")), symlinkSync("lib/../lib/a.txt", join(root, "src/link")))],
      ["a symlink replaced by the file it points to", (root) => (unlinkSync(join(root, "src/link")), writeFileSync(join(root, "src/link"), "a".repeat(100_000)))],
    );
  }
  for (const [name, change] of changes) {
    it(`changes with ${name}`, async () => assert.notEqual(await digestAfter(change), digest));
  }

  it("does not follow symlinks, even dangling or looping ones", { skip: !posix }, async () => {
    const root = fresh("links");
    mkdirSync(root);
    symlinkSync("nowhere", join(root, "dangling"));
    symlinkSync(".", join(root, "loop"));
    const result = await hashTree(root);
    assert.equal(result.symlinks, 2);
    assert.equal(
      result.digest,
      treeDigestFromEntries([
        { path: "loop", type: "symlink", target: "." },
        { path: "dangling", type: "symlink", target: "nowhere" },
      ]),
    );
  });

  it("equals treeDigestFromEntries of its entries, in any order", async () => {
    const a = (s: string): string => sha(s);
    const entries: TreeEntry[] = [
      { path: "src/run.sh", type: "file", digest: a("#!/bin/sh\necho hi\n"), executable: true },
      { path: "README", type: "file", digest: a("hello\n"), executable: false },
      { path: "src/lib/a.txt", type: "file", digest: a("a".repeat(100_000)) },
      { path: "src", type: "dir" },
      { path: "empty", type: "dir" },
      { path: "src/lib", type: "dir" },
      { path: "src/data.bin", type: "file", digest: sha(Buffer.from([0, 1, 2, 255])) },
    ];
    if (posix) entries.push({ path: "src/link", type: "symlink", target: "lib/a.txt" });
    assert.equal(treeDigestFromEntries(entries), digest);
    assert.equal(treeDigestFromEntries(entries.slice().reverse()), digest);
  });

  it("pins the digest format (a change here changes every tree key)", () => {
    assert.equal(treeDigestFromEntries([]), sha("cachet-tree/1\0"));
    const file = sha("x");
    const manual = Buffer.concat([
      Buffer.from("cachet-tree/1\0"),
      Buffer.from([0x64, 1]), Buffer.from("d"),
      Buffer.from([0x66, 3]), Buffer.from("d/f"), Buffer.from([1]), Buffer.from(file, "hex"),
      Buffer.from([0x6c, 3]), Buffer.from("d/l"), Buffer.from([1]), Buffer.from("f"),
    ]);
    assert.equal(
      treeDigestFromEntries([
        { path: "d/l", type: "symlink", target: "f" },
        { path: "d/f", type: "file", digest: file, executable: true },
        { path: "d", type: "dir" },
      ]),
      sha(manual),
    );
    assert.equal(sha(manual), "b5e7a3e9e3bbbf6abb9ea5f5813c70730b4da81fd211c4a32e56ab47bc554124");
  });

  it("rejects malformed entries", () => {
    const file = sha("");
    const bad: [TreeEntry[], RegExp][] = [
      [[{ path: "/abs", type: "dir" }], /not a relative POSIX path/],
      [[{ path: "a/../b", type: "dir" }], /not a relative POSIX path/],
      [[{ path: "a//b", type: "dir" }], /not a relative POSIX path/],
      [[{ path: "a/", type: "dir" }], /not a relative POSIX path/],
      [[{ path: "", type: "dir" }], /not a relative POSIX path/],
      [[{ path: "a", type: "dir" }, { path: "a", type: "dir" }], /appears twice/],
      [[{ path: "a/b", type: "file", digest: file }], /no "dir" entry for its parent "a"/],
      [[{ path: "a", type: "file", digest: file }, { path: "a/b", type: "file", digest: file }], /no "dir" entry for its parent "a"/],
      [[{ path: "a", type: "file", digest: "abc" }], /without a sha256 hex digest/],
      [[{ path: "a", type: "symlink" }], /without a target/],
      [[{ path: "a", type: "socket" as "dir" }], /unknown type "socket"/],
    ];
    for (const [entries, message] of bad) assert.throws(() => treeDigestFromEntries(entries), message);
  });

  it("refuses a FIFO or socket inside, naming it", { skip: !posix }, async () => {
    const root = fresh("special");
    mkdirSync(join(root, "sub"), { recursive: true });
    writeFileSync(join(root, "sub/ok"), "ok");
    execFileSync("mkfifo", [join(root, "sub/pipe")], { timeout: 10_000, killSignal: "SIGKILL" });
    await assert.rejects(hashTree(root), (error: unknown) => {
      assert.ok(error instanceof UnsupportedFileTypeError);
      assert.equal(error.path, join(root, "sub/pipe"));
      assert.equal(error.message, `cannot hash "${join(root, "sub/pipe")}": it is a FIFO (named pipe) (a tree may hold only files, directories and symlinks)`);
      return true;
    });

    const sockets = fresh("sockets");
    mkdirSync(sockets);
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(join(sockets, "s.sock"), resolve));
    try {
      await assert.rejects(hashTree(sockets), { message: /s\.sock": it is a socket/ });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("reports the special file, not work it cancelled, when it sits among many files", { skip: !posix }, async () => {
    const root = fresh("crowd");
    mkdirSync(join(root, "a"), { recursive: true });
    for (let i = 0; i < 200; i++) writeFileSync(join(root, "a", `f${i}`), `${i}`);
    execFileSync("mkfifo", [join(root, "a/zz-pipe")], { timeout: 10_000, killSignal: "SIGKILL" });
    await assert.rejects(hashTree(root), { message: /zz-pipe": it is a FIFO/ });
  });

  it("passes on an error thrown by onEntry", async () => {
    await assert.rejects(
      hashTree(original, {
        onEntry: (path) => {
          if (path === "src/lib/a.txt") throw new Error("stop here");
        },
      }),
      { message: "stop here" },
    );
  });

  it("refuses a path that is not a directory", async () => {
    const file = fresh("plain");
    writeFileSync(file, "x");
    await assert.rejects(hashTree(file), { message: `cannot hash "${file}" as a tree: it is a regular file, not a directory` });
    await assert.rejects(hashTree(fresh("missing")), { code: "ENOENT" });
  });

  it("hashes an empty directory and a wide tree of 3 000 files, the same at any concurrency", { timeout: 120_000 }, async () => {
    const empty = fresh("empty-root");
    mkdirSync(empty);
    assert.deepEqual(await hashTree(empty), { digest: treeDigestFromEntries([]), files: 0, directories: 0, symlinks: 0, bytes: 0 });

    const wide = fresh("wide");
    for (let d = 0; d < 30; d++) {
      mkdirSync(join(wide, `d${d}`), { recursive: true });
      for (let f = 0; f < 100; f++) writeFileSync(join(wide, `d${d}`, `f${f}`), `${d}/${f}`);
    }
    // What is checked is the work done, not how long it took (a loaded machine makes any time bound flaky); the
    // test's timeout only stops a hang.
    const result = await hashTree(wide);
    assert.equal(result.files, 3000);
    assert.equal(result.directories, 30);
    assert.equal(result.bytes, [...Array(30).keys()].reduce((sum, d) => sum + [...Array(100).keys()].reduce((n, f) => n + `${d}/${f}`.length, 0), 0));
    assert.equal((await hashTree(wide, { concurrency: 1 })).digest, result.digest);
  });
});

describe("hashFileSync", () => {
  it("gives what hashFile gives: digest, size and owner-executable bit, across chunk boundaries", async () => {
    const big = Buffer.alloc(64 * 1024 * 2 + 5, 3);
    big[70_000] = 9;
    const cases: [string, Buffer | string, number][] = [
      ["empty", "", 0o644],
      ["small", "content", 0o744],
      ["exact-chunk", big.subarray(0, 64 * 1024), 0o655],
      ["big", big, 0o700],
    ];
    for (const [name, content, mode] of cases) {
      const path = fresh(name);
      writeFileSync(path, content);
      if (posix) chmodSync(path, mode);
      const sync = hashFileSync(path);
      assert.deepEqual(sync, await hashFile(path), name);
      assert.deepEqual(sync, { digest: sha(content), size: Buffer.byteLength(content), executable: posix && (mode & 0o100) !== 0 }, name);
    }
  });

  it("refuses a directory and a FIFO the way hashFile does", { skip: !posix }, async () => {
    const dir = fresh("sync-dir");
    mkdirSync(dir);
    assert.throws(() => hashFileSync(dir), (error: unknown) => {
      assert.ok(error instanceof UnsupportedFileTypeError);
      assert.equal(error.message, `cannot hash "${dir}": it is a directory, not a regular file`);
      return true;
    });
    const fifo = fresh("sync-fifo");
    execFileSync("mkfifo", [fifo], { timeout: 10_000, killSignal: "SIGKILL" });
    assert.throws(() => hashFileSync(fifo), { message: `cannot hash "${fifo}": it is a FIFO (named pipe), not a regular file` });
    assert.throws(() => hashFileSync(fresh("sync-missing")), { code: "ENOENT" });
  });
});

describe("hashTree skip, and hashTreeSync", () => {
  /** Both walks of `root` with `options`; asserts they agree and returns the result. */
  async function bothWalks(root: string, options: HashTreeOptions = {}): Promise<TreeDigest> {
    const asynchronous = await hashTree(root, options);
    assert.deepEqual(hashTreeSync(root, options), asynchronous, "hashTreeSync agrees with hashTree");
    return asynchronous;
  }

  /** The small tree plus what a project carries around: a .git directory, node_modules, a nested .git file. */
  function projectTree(): { root: string; plain: string } {
    const plain = fresh("plain-tree");
    makeTree(plain);
    const root = fresh("project");
    cpSync(plain, root, { recursive: true, verbatimSymlinks: true });
    mkdirSync(join(root, ".git/objects"), { recursive: true });
    writeFileSync(join(root, ".git/HEAD"), "ref: refs/heads/main\n");
    mkdirSync(join(root, "node_modules/left-pad"), { recursive: true });
    writeFileSync(join(root, "node_modules/left-pad/index.js"), "module.exports = 1;\n");
    // A git worktree's or submodule's .git is a file holding an absolute path.
    writeFileSync(join(root, "src/lib/.git"), `gitdir: ${root}/.git/modules/lib\n`);
    return { root, plain };
  }

  it("hashTreeSync gives hashTree's digest and tally (the format's golden tree included)", async () => {
    const root = fresh("sync-tree");
    makeTree(root);
    const result = await bothWalks(root);
    assert.equal(result.files, 4);
    const golden = fresh("sync-golden");
    mkdirSync(join(golden, "d"), { recursive: true });
    writeFileSync(join(golden, "d/f"), "x", { mode: 0o755 });
    chmodSync(join(golden, "d/f"), 0o755);
    if (posix) {
      symlinkSync("f", join(golden, "d/l"));
      // The digest pinned in "pins the digest format" above.
      assert.equal((await bothWalks(golden)).digest, "b5e7a3e9e3bbbf6abb9ea5f5813c70730b4da81fd211c4a32e56ab47bc554124");
    }
  });

  it("without skip every entry counts, .git and node_modules included (existing callers are unchanged)", async () => {
    const { root, plain } = projectTree();
    const all = await bothWalks(root);
    assert.notEqual(all.digest, (await hashTree(plain)).digest);
    assert.equal(all.files, 4 + 3);
  });

  it("skipped names are left out at any depth, whatever their type, as if they were not there", async () => {
    const { root, plain } = projectTree();
    const seen: string[] = [];
    const skipped = await bothWalks(root, { skip: [".git", "node_modules"] });
    await hashTree(root, { skip: [".git", "node_modules"], onEntry: (path) => seen.push(path) });
    assert.deepEqual(skipped, await hashTree(plain));
    assert.ok(!seen.some((path) => path.includes(".git") || path.includes("node_modules")), seen.join(", "));
    assert.deepEqual(await bothWalks(root, { skip: [] }), await hashTree(root), "an empty list skips nothing");
  });

  it("a skipped directory is not read: a FIFO or an unreadable directory inside it does not matter", { skip: !posix }, async () => {
    const { root, plain } = projectTree();
    execFileSync("mkfifo", [join(root, "node_modules/pipe")], { timeout: 10_000, killSignal: "SIGKILL" });
    await assert.rejects(hashTree(root), { message: /node_modules\/pipe": it is a FIFO/ });
    assert.throws(() => hashTreeSync(root), { message: /node_modules\/pipe": it is a FIFO/ });
    assert.equal((await bothWalks(root, { skip: ["node_modules", ".git"] })).digest, (await hashTree(plain)).digest);
    execFileSync("mkfifo", [join(root, "top.pipe")], { timeout: 10_000, killSignal: "SIGKILL" });
    const byType = await bothWalks(root, { skip: (path, type) => type === "other" || path === ".git" || path === "node_modules" || path === "src/lib/.git" });
    assert.equal(byType.digest, (await hashTree(plain)).digest, "a predicate may skip special files by type");
  });

  it("a predicate sees relative POSIX paths and types, and can skip a nested path only", async () => {
    const root = fresh("predicate");
    makeTree(root);
    const asked: string[] = [];
    const result = await bothWalks(root, {
      skip: (path, type) => {
        asked.push(`${type}:${path}`);
        return path === "src/lib";
      },
    });
    assert.ok(asked.includes("dir:src/lib") && asked.includes("file:src/run.sh") && asked.includes("dir:empty"), asked.join(", "));
    assert.ok(!asked.some((entry) => entry.startsWith("file:src/lib/")), "nothing under a skipped directory is asked about");
    const expected: TreeEntry[] = [
      { path: "README", type: "file", digest: sha("hello\n"), executable: false },
      { path: "empty", type: "dir" },
      { path: "src", type: "dir" },
      { path: "src/data.bin", type: "file", digest: sha(Buffer.from([0, 1, 2, 255])), executable: false },
      { path: "src/run.sh", type: "file", digest: sha("#!/bin/sh\necho hi\n"), executable: posix },
      ...(posix ? [{ path: "src/link", type: "symlink" as const, target: "lib/a.txt" }] : []),
    ];
    assert.equal(result.digest, treeDigestFromEntries(expected));
  });

  it("refuses skip names that could never match", async () => {
    const root = fresh("bad-skip");
    mkdirSync(root);
    for (const name of ["", ".", "..", "a/b"]) {
      await assert.rejects(hashTree(root, { skip: [name] }), { name: "TypeError", message: /is not an entry name/ }, JSON.stringify(name));
      assert.throws(() => hashTreeSync(root, { skip: [name] }), { name: "TypeError", message: /is not an entry name/ }, JSON.stringify(name));
    }
  });

  it("hashTreeSync refuses a root that is not a directory, like hashTree", async () => {
    const file = fresh("sync-plain");
    writeFileSync(file, "x");
    assert.throws(() => hashTreeSync(file), { message: `cannot hash "${file}" as a tree: it is a regular file, not a directory` });
    assert.throws(() => hashTreeSync(fresh("sync-missing-root")), { code: "ENOENT" });
  });
});
