// gitSource: refs resolved to commits with the system git, one database per canonical URL, checkouts keyed by
// commit; the offline path; the network path over git daemon and smart HTTP; processes racing and killed.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { gitSource, openStore, parseGitRemote, readSettings, type CacheStore } from "../src/index.js";
import { rejectsWithCode, runCli, tempDir } from "./helpers.js";
import { commitFiles, git, makeRepository, startGitDaemon, startGitHttpServer, type GitDaemon, type GitHttpServer } from "./git-servers.js";
import { startNode, startProcess, workerPath, type Child } from "./workers/child.js";

const REPO = new URL("..", import.meta.url).pathname;
const WORKER = workerPath("git-source-worker.ts");
const online = readSettings({ env: {} });
const offline = readSettings({ env: { CACHET_OFFLINE: "1" } });

/** The names in a directory, none when it does not exist. */
function namesIn(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}

/** Every file's bytes under `dir`, recursively (symlinks not followed). */
function* filesUnder(dir: string): Generator<{ path: string; bytes: Buffer }> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* filesUnder(path);
    else if (entry.isFile()) yield { path, bytes: readFileSync(path) };
  }
}

/** A JSON line a git-source worker printed. */
async function workerResult(child: Child): Promise<{ commit?: string; path?: string; fetched?: boolean; error?: string; code?: string }> {
  await child.waitFor(/^\{.*\}$/m);
  const line = child.stdout().split("\n").find((text) => text.startsWith("{"))!;
  await child.waitForExit();
  return JSON.parse(line);
}

describe("canonical git URLs", () => {
  test("credentials, a trailing slash and .git go; scheme and host are lower-cased; scp-like is ssh; paths are file:// URLs", () => {
    const cases: Array<[string, string, string]> = [
      ["https://User:Pa55word@GitHub.COM/Org/Repo.git/", "https://github.com/Org/Repo", "Repo"],
      ["HTTPS://github.com/Org/Repo", "https://github.com/Org/Repo", "Repo"],
      ["git@GitHub.com:org/tool.git", "ssh://github.com/org/tool", "tool"],
      ["ssh://git@github.com/org/tool.git", "ssh://github.com/org/tool", "tool"],
      ["ssh://git@host:2222/x/y.git", "ssh://host:2222/x/y", "y"],
      ["git://127.0.0.1:9418/net.git", "git://127.0.0.1:9418/net", "net"],
      ["file:///srv/git/lib.git/", "file:///srv/git/lib.git", "lib"],
      ["/srv/git/lib.git", "file:///srv/git/lib.git", "lib"],
      ["../lib/", "file:///work/lib", "lib"],
    ];
    for (const [url, canonical, name] of cases) {
      const remote = parseGitRemote(url, "/work/project");
      assert.deepEqual([remote.canonical, remote.repositoryName], [canonical, name], url);
      assert.doesNotMatch(remote.display, /Pa55word|User:/);
    }
    assert.equal(parseGitRemote("https://github.com/org/repo").id, parseGitRemote("https://u:p@GITHUB.com/org/repo.git/").id);
    assert.notEqual(parseGitRemote("/srv/lib").id, parseGitRemote("/srv/lib.git").id);
    assert.equal(parseGitRemote("https://u:p@GITHUB.com/org/repo.git/").fetchUrl, "https://u:p@GITHUB.com/org/repo.git/");
  });
});

describe("gitSource from a local repository (a path and file://)", () => {
  const dir = tempDir("cachet-git-local-");
  const origin = join(dir.path, "proj");
  const url = pathToFileURL(origin).href;
  let store: CacheStore;
  let first: string;
  let featureCommit: string;
  let mainCommit: string;

  before(async () => {
    first = makeRepository(origin, { "README.md": "one\n", "src/index.ts": "export const v = 1;\n" });
    git(origin, "tag", "-a", "v1", "-m", "version 1");
    git(origin, "checkout", "--quiet", "-b", "feature");
    featureCommit = commitFiles(origin, { "feature.txt": "feature\n" }, "feature");
    git(origin, "checkout", "--quiet", "main");
    mainCommit = commitFiles(origin, { "README.md": "two\n" }, "second");
    store = await openStore({ cacheDir: join(dir.path, "cache") });
  });
  after(async () => {
    await store.close();
    dir.cleanup();
  });

  test("HEAD, a branch, an annotated tag, a short and a full commit resolve to full commits, checked out without .git", async () => {
    const cases: Array<[string | undefined, string, string]> = [
      [undefined, mainCommit, "two\n"],
      ["feature", featureCommit, "one\n"],
      ["v1", first, "one\n"],
      [first.slice(0, 9), first, "one\n"],
      [featureCommit, featureCommit, "one\n"],
      ["refs/heads/main", mainCommit, "two\n"],
    ];
    for (const [ref, commit, readme] of cases) {
      const result = await gitSource(url, { store, ref, settings: online });
      assert.equal(result.commit, commit, `ref ${ref}`);
      assert.equal(result.name, "proj");
      assert.equal(readFileSync(join(result.path, "README.md"), "utf8"), readme);
      assert.equal(existsSync(join(result.path, ".git")), false);
      assert.equal(existsSync(join(result.path, "feature.txt")), commit === featureCommit);
    }
    const info = store.info("proj", mainCommit)!;
    assert.equal(info.origin, "downloaded");
    assert.equal(info.storage, "tree");
    assert.deepEqual(store.components("proj", mainCommit), {
      source: "git",
      url,
      ref: "HEAD",
      commit: mainCommit,
      gitDatabase: namesIn(join(store.root, "git-v1", "db"))[0],
    });
  });

  test("a path, its file:// URL and the URL with a trailing slash share one database and one checkout per commit", async () => {
    const byPath = await gitSource(origin, { store, ref: "main", settings: online });
    const bySlash = await gitSource(`${url}/`, { store, ref: "main", settings: online });
    assert.equal(byPath.path, bySlash.path);
    assert.equal(byPath.url, url);
    assert.equal(namesIn(join(store.root, "git-v1", "db")).length, 1);
    assert.equal(bySlash.fromCache, true);
  });

  test("refs found only in packed-refs resolve", async () => {
    const packed = join(dir.path, "packed");
    const commit = makeRepository(packed, { "a.txt": "a\n" });
    git(packed, "tag", "light");
    git(packed, "branch", "side");
    git(packed, "pack-refs", "--all");
    assert.equal(existsSync(join(packed, ".git", "refs", "heads", "side")), false);
    assert.match(readFileSync(join(packed, ".git", "packed-refs"), "utf8"), /refs\/tags\/light/);
    for (const ref of ["side", "light", "main", undefined]) {
      assert.equal((await gitSource(packed, { store, ref, settings: online })).commit, commit);
    }
  });

  test("a branch is resolved at every call; offline, the last answer is used; a short commit in the database needs the network only when refreshed", async () => {
    const moving = join(dir.path, "moving");
    const c1 = makeRepository(moving, { "a.txt": "1\n" });
    assert.equal((await gitSource(moving, { store, ref: "main", settings: online })).commit, c1);
    const c2 = commitFiles(moving, { "a.txt": "2\n" }, "two");
    const second = await gitSource(moving, { store, ref: "main", settings: online });
    assert.equal(second.commit, c2);
    assert.equal(readFileSync(join(second.path, "a.txt"), "utf8"), "2\n");
    commitFiles(moving, { "a.txt": "3\n" }, "three");
    const stale = await gitSource(moving, { store, ref: "main", settings: offline });
    assert.deepEqual([stale.commit, stale.fetched], [c2, false]);

    const short = await gitSource(moving, { store, ref: c1.slice(0, 8), settings: online });
    assert.deepEqual([short.commit, short.fetched], [c1, false]);
    const refreshed = await gitSource(moving, { store, ref: c1.slice(0, 8), settings: readSettings({ env: { CACHET_REFRESH: "moving" } }) });
    assert.deepEqual([refreshed.commit, refreshed.fetched], [c1, true]);
  });

  test("a full commit already in the cache needs no network: offline, and with the remote deleted", async () => {
    const doomed = join(dir.path, "doomed");
    const commit = makeRepository(doomed, { "keep.txt": "kept\n" });
    const fetched = await gitSource(doomed, { store, ref: "main", settings: online });
    assert.deepEqual([fetched.commit, fetched.fetched, fetched.fromCache], [commit, true, false]);
    rmSync(doomed, { recursive: true, force: true });

    for (const settings of [online, offline]) {
      const again = await gitSource(doomed, { store, ref: commit, settings });
      assert.deepEqual([again.commit, again.fetched, again.fromCache], [commit, false, true]);
    }
    // Without its checkout, the commit is exported again from the database, still without the remote.
    assert.equal(await store.delete("doomed", commit), true);
    const exported = await gitSource(doomed, { store, ref: commit, settings: offline });
    assert.deepEqual([exported.fetched, exported.fromCache], [false, false]);
    assert.equal(readFileSync(join(exported.path, "keep.txt"), "utf8"), "kept\n");
    assert.equal((await gitSource(doomed, { store, ref: "main", settings: offline })).commit, commit);

    const error = await rejectsWithCode(gitSource(doomed, { store, ref: "never-fetched", settings: offline }), "CACHET_GIT_OFFLINE");
    assert.match(error.message, /network is disabled/);
    assert.ok(error.message.includes(doomed), error.message);
    await rejectsWithCode(gitSource(doomed, { store, ref: "f".repeat(40), settings: offline }), "CACHET_GIT_OFFLINE");
  });

  test("a ref the remote lacks, a ref git would read as an option or a refspec, and a missing git are one-line errors", async () => {
    const missing = await rejectsWithCode(gitSource(origin, { store, ref: "no-such-branch", settings: online }), "CACHET_GIT_REF_NOT_FOUND");
    assert.match(missing.message, /no-such-branch/);
    await rejectsWithCode(gitSource(origin, { store, ref: "0".repeat(40), settings: online }), "CACHET_GIT_REF_NOT_FOUND");
    for (const ref of ["--upload-pack=touch /tmp/x", "main:refs/heads/x", "a..b", "*"]) {
      await rejectsWithCode(gitSource(origin, { store, ref, settings: online }), "CACHET_GIT_REF_INVALID");
    }
    await rejectsWithCode(gitSource("-oProxyCommand=x", { store, settings: online }), "CACHET_GIT_URL");
    const notARepository = await rejectsWithCode(gitSource(join(dir.path, "nothing-here"), { store, settings: online }), "CACHET_GIT_FETCH_FAILED");
    assert.match(notARepository.message, /does not appear to be a git repository$/, "git's own reason, not the advice that follows it");

    const noGit = startNode(["--import", "tsx", WORKER, join(dir.path, "cache-no-git"), origin, ""], { PATH: join(dir.path, "no-such-bin") }, { cwd: REPO });
    try {
      assert.equal((await workerResult(noGit)).code, "CACHET_GIT_NOT_INSTALLED");
    } finally {
      await noGit.kill9();
    }
  });

  test("cachet cache explain NAME shows a checkout's URL, ref and commit, and that the ref moved", async () => {
    const moved = join(dir.path, "explained");
    const c1 = makeRepository(moved, { "a.txt": "1\n" });
    await gitSource(moved, { store, ref: "main", settings: online });
    const c2 = commitFiles(moved, { "a.txt": "2\n" }, "two");
    await gitSource(moved, { store, ref: "main", settings: online });
    const text = await runCli(["cache", "explain", "explained", "--cache-dir", store.root]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`^explained/${c2}\n`));
    assert.match(text.stdout, new RegExp(`git ${pathToFileURL(moved).href} ref main = commit ${c2}`));
    assert.match(text.stdout, new RegExp(`Compared with explained/${c1}: the ref moved to another commit`));
    assert.match(text.stdout, new RegExp(`commit: changed \\(${c1} → ${c2}\\)`));
    const json = await runCli(["cache", "explain", "explained", c1.slice(0, 10), "--json", "--cache-dir", store.root]);
    assert.equal(json.code, 0, json.stderr);
    const parsed = JSON.parse(json.stdout) as { key: string; components: { ref: string; commit: string }; changes: unknown[] };
    assert.deepEqual([parsed.key, parsed.components.ref, parsed.components.commit], [c1, "main", c1]);
    assert.deepEqual(parsed.changes, [{ component: "commit", before: c2, after: c1 }]);
  });

  test("a cache that cannot take the checkout or the lock still gives the checkout, with one warning each", async () => {
    const failing = join(dir.path, "failing");
    const commit = makeRepository(failing, { "f.txt": "f\n" });
    const broken: CacheStore = Object.create(store, {
      putTree: { value: async () => Promise.reject(Object.assign(new Error("no space left on device"), { code: "CACHET_DISK_FULL" })) },
      lockKey: { value: async () => Promise.reject(Object.assign(new Error("timed out after 0s waiting for the lock"), { code: "CACHET_LOCK_TIMEOUT" })) },
    });
    const warnings: string[] = [];
    for (let call = 0; call < 2; call++) {
      const result = await gitSource(failing, { store: broken, settings: online, onWarning: (warning) => warnings.push(warning.code) });
      assert.deepEqual([result.commit, result.fromCache], [commit, false]);
      assert.equal(readFileSync(join(result.path, "f.txt"), "utf8"), "f\n");
    }
    assert.deepEqual(warnings.sort(), ["CACHET_CACHE_LOCK_FAILED", "CACHET_CACHE_WRITE_FAILED"]);
    assert.equal(store.info("failing", commit), undefined);
  });

  test("linkTo that is the current directory or holds it is refused before any git command", async () => {
    const here = join(dir.path, "here");
    mkdirSync(here, { recursive: true });
    writeFileSync(join(here, "mine.txt"), "mine");
    const previous = process.cwd();
    process.chdir(here);
    try {
      for (const target of [".", "..", here]) {
        await assert.rejects(gitSource(origin, { store, name: "link-here", ref: first, linkTo: target, settings: online }), (error: Error & { code?: string }) => {
          assert.equal(error.code, "CACHET_BAD_SOURCE_OPTION");
          assert.ok(error.message.includes(`linkTo ${target} is the current directory or holds it`), error.message);
          return true;
        });
      }
    } finally {
      process.chdir(previous);
    }
    assert.equal(readFileSync(join(here, "mine.txt"), "utf8"), "mine");
    assert.equal(store.info("link-here", first), undefined, "nothing was checked out");
  });

  test("linkTo puts the checkout at a target, replacing what was there", async () => {
    const target = join(dir.path, "vendor", "proj");
    mkdirSync(target, { recursive: true });
    writeFileSync(join(target, "stale.txt"), "old");
    const result = await gitSource(origin, { store, ref: first, linkTo: target, settings: online });
    assert.deepEqual(namesIn(target), ["README.md", "src"]);
    assert.equal(readFileSync(join(target, "src", "index.ts"), "utf8"), "export const v = 1;\n");
    assert.ok(result.linked && result.linked.files === 2, JSON.stringify(result.linked));
  });
});

describe("gitSource over the network (git daemon on 127.0.0.1)", () => {
  const dir = tempDir("cachet-git-daemon-");
  const served = join(dir.path, "served");
  let daemon: GitDaemon;
  let commit: string;

  before(async () => {
    const work = join(dir.path, "work");
    commit = makeRepository(work, { "lib.txt": "network\n" });
    git(work, "tag", "v2");
    mkdirSync(served);
    git(dir.path, "clone", "--quiet", "--bare", work, join(served, "net.git"));
    git(join(served, "net.git"), "pack-refs", "--all");
    daemon = await startGitDaemon(served);
  });
  after(async () => {
    await daemon.stop();
    dir.cleanup();
  });

  test("HEAD, a branch, a tag and a full commit over git://, the known commit without a request", async () => {
    const store = await openStore({ cacheDir: join(dir.path, "cache-refs") });
    try {
      const url = `${daemon.url}net.git`;
      for (const ref of [undefined, "main", "v2"]) assert.equal((await gitSource(url, { store, ref, settings: online })).commit, commit);
      const requests = daemon.uploadPacks("/net.git");
      const known = await gitSource(`${daemon.url.toUpperCase().replace("GIT://", "git://")}net`, { store, ref: commit, settings: online });
      assert.deepEqual([known.commit, known.fetched, known.name], [commit, false, "net"]);
      assert.equal(daemon.uploadPacks("/net.git"), requests);
    } finally {
      await store.close();
    }
  });

  test("4 processes asking for one commit at once make one clone and one checkout", async () => {
    const cacheDir = join(dir.path, "cache-race");
    const before = daemon.uploadPacks("/net.git");
    const workers = Array.from({ length: 4 }, () => startNode(["--import", "tsx", WORKER, cacheDir, `${daemon.url}net.git`, commit], {}, { cwd: REPO }));
    try {
      const results = await Promise.all(workers.map(workerResult));
      for (const result of results) assert.equal(result.commit, commit, JSON.stringify(result));
      assert.equal(new Set(results.map((result) => result.path)).size, 1);
      assert.equal(results.filter((result) => result.fetched).length, 1);
      assert.equal(daemon.uploadPacks("/net.git") - before, 1);
      assert.equal(namesIn(join(cacheDir, "git-v1", "db")).length, 1);
    } finally {
      await Promise.all(workers.map((worker) => worker.kill9()));
    }
  });

  test("a clone killed half-way leaves no database, and the next call clones", async () => {
    const big = join(dir.path, "big");
    const bigCommit = makeRepository(big, Object.fromEntries(Array.from({ length: 3 }, (_, i) => [`blob${i}.bin`, randomBytes(6 << 20).toString("base64")])));
    git(dir.path, "clone", "--quiet", "--bare", big, join(served, "big.git"));
    const cacheDir = join(dir.path, "cache-killed");
    // Its own process group (setsid), so the git processes it started die with it.
    const child = startProcess("setsid", [process.execPath, "--import", "tsx", WORKER, cacheDir, `${daemon.url}big.git`, "main"], {}, { cwd: REPO });
    try {
      await child.waitFor(/ready/);
      const staging = join(cacheDir, "tmp");
      const deadline = Date.now() + 30_000;
      // Objects arriving (loose, or a pack being written) in a database still in tmp/: the fetch is under way.
      const receiving = (name: string): boolean => {
        const objects = join(staging, name, "objects");
        return name.startsWith("git-db-") && (namesIn(objects).some((entry) => entry.length === 2) || namesIn(join(objects, "pack")).length > 0);
      };
      while (!namesIn(staging).some(receiving)) {
        assert.ok(Date.now() < deadline && !child.exitedYet(), `the fetch never started:\n${child.stdout()}${child.stderr()}`);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      process.kill(-child.pid, "SIGKILL");
      await child.waitForExit();
      assert.deepEqual(namesIn(join(cacheDir, "git-v1", "db")), []);
    } finally {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        // already gone
      }
      await child.kill9();
    }
    const store = await openStore({ cacheDir });
    try {
      const result = await gitSource(`${daemon.url}big.git`, { store, ref: "main", settings: online });
      assert.equal(result.commit, bigCommit);
      assert.equal(statSync(join(result.path, "blob2.bin")).size, statSync(join(big, "blob2.bin")).size);
      assert.equal(namesIn(join(cacheDir, "git-v1", "db")).length, 1);
    } finally {
      await store.close();
    }
  });
});

describe("gitSource with credentials in the URL (smart HTTP with Basic auth)", () => {
  const dir = tempDir("cachet-git-http-");
  const password = "s3cret-Pa55word";
  const user = "cachet-user";
  let server: GitHttpServer;
  let commit: string;

  before(async () => {
    const work = join(dir.path, "work");
    commit = makeRepository(work, { "private.txt": "private\n" });
    mkdirSync(join(dir.path, "served"));
    git(dir.path, "clone", "--quiet", "--bare", work, join(dir.path, "served", "private.git"));
    server = await startGitHttpServer(join(dir.path, "served"), user, password);
  });
  after(async () => {
    await server.stop();
    dir.cleanup();
  });

  test("the fetch uses them; the cache, its rows and the messages never hold them", async () => {
    const cacheDir = join(dir.path, "cache");
    const store = await openStore({ cacheDir });
    try {
      const url = `${server.url}private.git`;
      const result = await gitSource(url, { store, ref: "main", settings: online });
      assert.equal(result.commit, commit);
      assert.equal(result.url, `${server.url.replace(`${user}:${password}@`, "")}private`);
      assert.doesNotMatch(JSON.stringify(store.components("private", commit)), new RegExp(`${password}|${user}`));

      const missing = await rejectsWithCode(gitSource(url, { store, ref: "nope", settings: online }), "CACHET_GIT_REF_NOT_FOUND");
      const refused = await rejectsWithCode(
        gitSource(url.replace(password, `${password}-wrong`), { store, name: "refused", settings: online }),
        "CACHET_GIT_FETCH_FAILED",
      );
      for (const error of [missing, refused]) {
        assert.ok(!error.message.includes(password) && !error.message.includes(user), error.message);
        assert.match(error.message, /http:\/\/\*\*\*@127\.0\.0\.1/);
      }
      assert.ok(server.refused() > 0);
    } finally {
      await store.close();
    }
    const config = readFileSync(join(cacheDir, "git-v1", "db", namesIn(join(cacheDir, "git-v1", "db"))[0]!, "config"), "utf8");
    assert.doesNotMatch(config, /url|remote/);
    for (const file of filesUnder(cacheDir)) {
      assert.equal(file.bytes.includes(password), false, `${file.path} holds the password`);
      assert.equal(file.bytes.includes(user), false, `${file.path} holds the user name`);
    }
  });
});
