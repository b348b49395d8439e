// Hostile cases for git sources and archive unpacking, each one a defect found by trying to break them: a remote
// that never answers, credentials in a query string, a cached checkout changed in place, tars that other tools
// read differently.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { gitSource, openStore, parseGitRemote, readSettings, unpackArchive, type CacheStore } from "../src/index.js";
import { rejectsWithCode, tempDir } from "./helpers.js";
import { patchCentralRecord, paxRecord, rawTar, tarHeader, writeZip } from "./archive-builders.js";
import { makeRepository } from "./git-servers.js";
import { startNode } from "./workers/child.js";

const REPO = new URL("..", import.meta.url).pathname;

const online = readSettings({ env: {} });

/** Fails (instead of hanging the run) when `promise` has not settled after `ms`: a guard, not a timing assertion. */
async function settlesWithin<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} still had not returned after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, guard]);
  } finally {
    clearTimeout(timer);
  }
}

describe("hostile git sources", () => {
  const dir = tempDir("cachet-git-hostile-");
  let store: CacheStore;

  before(async () => {
    store = await openStore({ cacheDir: join(dir.path, "cache") });
  });
  after(async () => {
    await store.close();
    dir.cleanup();
  });

  test("a remote that accepts the connection and never answers is given up after timeoutMs, helper processes included", async () => {
    // git runs the HTTP transport in helper processes that keep its output pipes open; killing git alone left
    // gitSource waiting on them for as long as the server kept the connection.
    const sockets = new Set<Socket>();
    const server: Server = createServer((socket) => {
      sockets.add(socket);
      socket.on("error", () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as { port: number };
    try {
      const call = gitSource(`http://127.0.0.1:${port}/silent.git`, { store, settings: online, timeoutMs: 1_000 });
      const error = await settlesWithin(rejectsWithCode(call, "CACHET_GIT_FETCH_FAILED"), 30_000, "gitSource of a silent remote");
      assert.match(error.message, /timed out/);
    } finally {
      for (const socket of sockets) socket.destroy();
      server.close();
    }
  });

  test("timeoutMs: Infinity or a bound past setTimeout's range means no bound (not 1 ms); 0, negative and NaN are refused", async () => {
    const repo = join(dir.path, "patient");
    const commit = makeRepository(repo, { "a.txt": "a\n" });
    for (const timeoutMs of [Number.POSITIVE_INFINITY, 30 * 24 * 3_600_000]) {
      const result = await gitSource(repo, { store, ref: "main", settings: online, timeoutMs, name: `patient-${timeoutMs}`.replace(/\W/g, "") });
      assert.equal(result.commit, commit);
    }
    for (const timeoutMs of [0, -1, Number.NaN]) {
      await assert.rejects(gitSource(repo, { store, ref: "main", settings: online, timeoutMs }), RangeError);
    }
  });

  test("a token in the URL's query string is never keyed, recorded or shown", async () => {
    const remote = parseGitRemote("https://Host.example/org/lib.git?private_token=Tok3nQuery&x=1");
    assert.equal(remote.canonical, "https://host.example/org/lib");
    assert.doesNotMatch(remote.display, /Tok3nQuery/);
    assert.ok(remote.secrets.includes("Tok3nQuery"), JSON.stringify(remote.secrets));

    const error = await rejectsWithCode(
      gitSource(`http://127.0.0.1:9/lib.git?private_token=Tok3nQuery`, { store, settings: online, timeoutMs: 20_000 }),
      "CACHET_GIT_FETCH_FAILED",
    );
    assert.doesNotMatch(error.message, /Tok3nQuery/);
    const grep = spawnSync("grep", ["-rla", "Tok3nQuery", store.root], { encoding: "utf8" });
    assert.equal(grep.status, 1, `the token is on disk in ${grep.stdout}`);
  });

  test("a ref no branch or tag can be named (a component starting with '.', ending in '.lock' or '.') is CACHET_GIT_REF_INVALID", async () => {
    const repo = join(dir.path, "refs");
    makeRepository(repo, { "a.txt": "a\n" });
    for (const ref of [".hidden", "feature/.x", "x.lock/y", "v1.", "refs/heads/x."]) {
      const error = await rejectsWithCode(gitSource(repo, { store, ref, settings: online }), "CACHET_GIT_REF_INVALID");
      assert.ok(error.message.includes(ref), error.message);
    }
    // Names that look odd but are valid still resolve.
    execFileSync("git", ["-C", repo, "branch", "fé✓/x.y"]);
    assert.equal((await gitSource(repo, { store, ref: "fé✓/x.y", settings: online })).fetched, true);
  });

  test("a password with an unencoded '@', or in an scp-like URL, is not shown in messages", async () => {
    const atSign = parseGitRemote("https://user:p@ss-w0rd@Host.example/org/repo.git");
    assert.equal(atSign.canonical, "https://host.example/org/repo");
    assert.equal(atSign.display, "https://***@Host.example/org/repo.git");
    const scp = parseGitRemote("tok:s3cretpw@host.example:org/repo.git");
    assert.equal(scp.canonical, "ssh://host.example/org/repo");
    assert.equal(scp.display, "***@host.example:org/repo.git");
    assert.equal(parseGitRemote("git@host.example:org/repo.git").display, "git@host.example:org/repo.git");

    const error = await rejectsWithCode(
      gitSource("https://user:p@ss-w0rd@127.0.0.1:9/org/repo.git", { store, settings: online, timeoutMs: 20_000 }),
      "CACHET_GIT_FETCH_FAILED",
    );
    assert.doesNotMatch(error.message, /ss-w0rd/);
  });

  test("linkTo at the cache root, inside it, or at a symlink to it is CACHET_LINK_TARGET, and the cache keeps everything", async () => {
    const repo = join(dir.path, "linked");
    const commit = makeRepository(repo, { "a.txt": "a\n" });
    const first = await gitSource(repo, { store, ref: commit, settings: online });
    const alias = join(dir.path, "alias-of-cache");
    symlinkSync(store.root, alias);
    for (const target of [store.root, join(store.root, "trees-v1"), first.path, join(store.root, "new-dir"), alias, dir.path]) {
      await rejectsWithCode(gitSource(repo, { store, ref: commit, settings: online, linkTo: target }), "CACHET_LINK_TARGET");
    }
    const again = await gitSource(repo, { store, ref: commit, settings: online });
    assert.deepEqual([again.path, again.fromCache], [first.path, true]);
    assert.equal(readFileSync(join(again.path, "a.txt"), "utf8"), "a\n");
    const elsewhere = join(dir.path, "vendor", "linked");
    assert.equal((await gitSource(repo, { store, ref: commit, settings: online, linkTo: elsewhere })).linked?.files, 1);
  });

  test("git configuration from the environment (GIT_CONFIG_COUNT, GIT_CONFIG_PARAMETERS) or the user's attributes file does not change a checkout", async () => {
    const repo = join(dir.path, "eol");
    const commit = makeRepository(repo, { "lines.txt": "one\ntwo\n" });
    const xdg = join(dir.path, "xdg");
    mkdirSync(join(xdg, "git"), { recursive: true });
    writeFileSync(join(xdg, "git", "attributes"), "* text eol=crlf\n");
    const variables = {
      XDG_CONFIG_HOME: xdg,
      GIT_CONFIG_COUNT: "1",
      GIT_CONFIG_KEY_0: "core.autocrlf",
      GIT_CONFIG_VALUE_0: "true",
      GIT_CONFIG_PARAMETERS: "'core.autocrlf'='true'",
    };
    const saved = Object.fromEntries(Object.keys(variables).map((name) => [name, process.env[name]]));
    Object.assign(process.env, variables);
    try {
      const result = await gitSource(repo, { store, ref: commit, settings: online });
      assert.equal(readFileSync(join(result.path, "lines.txt"), "utf8"), "one\ntwo\n");
    } finally {
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });

  test("a commit with a path git refuses to write (.git/config) is CACHET_GIT_FAILED naming it, online and offline, with no cache warning", async () => {
    const repo = join(dir.path, "dot-git");
    makeRepository(repo, { "a.txt": "a\n" });
    const gitIn = (input: string, ...args: string[]) => execFileSync("git", ["-C", repo, ...args], { input, encoding: "utf8" }).trim();
    const blob = gitIn("[core]\n\thooksPath = /tmp\n", "hash-object", "-w", "--stdin");
    const inner = gitIn(`100644 blob ${blob}\tconfig\n`, "mktree");
    const tree = gitIn(`040000 tree ${inner}\t.git\n`, "mktree");
    const commit = gitIn("", "-c", "user.name=t", "-c", "user.email=t@t", "commit-tree", tree, "-m", "evil");
    gitIn("", "branch", "evil", commit);
    const warnings: string[] = [];
    for (const settings of [online, readSettings({ env: { CACHET_OFFLINE: "1" } })]) {
      const error = await rejectsWithCode(gitSource(repo, { store, ref: "evil", settings, onWarning: (warning) => warnings.push(warning.code) }), "CACHET_GIT_FAILED");
      assert.match(error.message, /\.git\/config/);
    }
    assert.deepEqual(warnings, []);
  });

  test("a file of a cached checkout made executable (or not) in the cache is a miss, and the checkout is made again", async () => {
    const repo = join(dir.path, "modes");
    const commit = makeRepository(repo, { "plain.txt": "plain\n", "run.sh": "#!/bin/sh\n" });
    execFileSync("git", ["-C", repo, "update-index", "--chmod=+x", "run.sh"]);
    execFileSync("git", ["-C", repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "x"]);
    const executableCommit = execFileSync("git", ["-C", repo, "rev-parse", "HEAD"], { encoding: "utf8" }).trim();
    assert.notEqual(executableCommit, commit);

    const first = await gitSource(repo, { store, ref: executableCommit, settings: online });
    const plain = join(first.path, "plain.txt");
    const script = join(first.path, "run.sh");
    assert.equal(statSync(plain).mode & 0o100, 0);
    assert.equal(statSync(script).mode & 0o100, 0o100);
    chmodSync(plain, statSync(plain).mode | 0o111);

    const again = await gitSource(repo, { store, ref: executableCommit, settings: online });
    assert.equal(again.fromCache, false);
    assert.equal(statSync(join(again.path, "plain.txt")).mode & 0o100, 0);

    chmodSync(join(again.path, "run.sh"), statSync(join(again.path, "run.sh")).mode & ~0o111);
    const third = await gitSource(repo, { store, ref: executableCommit, settings: online });
    assert.equal(third.fromCache, false);
    assert.equal(statSync(join(third.path, "run.sh")).mode & 0o100, 0o100);
    assert.equal(readFileSync(join(third.path, "run.sh"), "utf8"), "#!/bin/sh\n");
  });
});

/** Mounts a small tmpfs (Linux, root); returns its path, or why it could not. */
function mountTmpfs(size: string): { path?: string; skip?: string } {
  if (process.platform !== "linux") return { skip: `a tmpfs mount needs Linux (this is ${process.platform})` };
  const path = mkdtempSync(join(tmpdir(), "cachet-git-full-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", path], { stdio: "pipe", timeout: 30_000, killSignal: "SIGKILL" });
    return { path };
  } catch (error) {
    rmSync(path, { recursive: true, force: true });
    return { skip: `cannot mount a tmpfs here (${(error as { stderr?: Buffer }).stderr?.toString().trim() || (error as Error).message})` };
  }
}

const fullDisk = mountTmpfs("2m");

describe("git sources on a full cache disk (tmpfs)", { skip: fullDisk.skip }, () => {
  const dir = tempDir("cachet-git-full-repos-");
  const mount = fullDisk.path!;
  after(() => {
    execFileSync("umount", ["--lazy", mount], { timeout: 30_000 });
    rmSync(mount, { recursive: true, force: true });
    dir.cleanup();
  });

  test("a checkout the full cache cannot hold, or a database it cannot take, is still given, from a temporary cache, with one warning", async () => {
    const store = await openStore({ cacheDir: join(mount, "cache") });
    try {
      // Its database fits in the 2 MiB cache; its checkout (the file itself) does not.
      const big = randomBytes(1100 * 1024).toString("base64");
      const bigCommit = makeRepository(join(dir.path, "big"), { "big.txt": big });
      const warnings: string[] = [];
      const onWarning = (warning: { code: string }) => warnings.push(warning.code);
      const result = await gitSource(join(dir.path, "big"), { store, settings: online, onWarning });
      assert.deepEqual([result.commit, result.fromCache], [bigCommit, false]);
      assert.equal(readFileSync(join(result.path, "big.txt"), "utf8"), big);
      assert.ok(!result.path.startsWith(mount), result.path);
      assert.deepEqual(warnings, ["CACHET_CACHE_WRITE_FAILED"]);

      // Nothing left: not even a new database fits. Still a checkout, and no second warning in this process.
      writeFileSync(join(mount, "filler"), Buffer.alloc(0));
      try {
        writeFileSync(join(mount, "filler"), Buffer.alloc(4 * 1024 * 1024));
      } catch {
        // ENOSPC: the disk is full, as wanted.
      }
      const smallCommit = makeRepository(join(dir.path, "small"), { "a.txt": "small\n" });
      const small = await gitSource(join(dir.path, "small"), { store, settings: online, onWarning });
      assert.equal(small.commit, smallCommit);
      assert.equal(readFileSync(join(small.path, "a.txt"), "utf8"), "small\n");
      assert.deepEqual(warnings, ["CACHET_CACHE_WRITE_FAILED"]);
    } finally {
      await store.close();
    }
  });
});

describe("hostile tars", () => {
  const dir = tempDir("cachet-tar-hostile-");
  after(() => dir.cleanup());
  let count = 0;

  async function unpackBytes(bytes: Buffer): Promise<{ out: string; promise: Promise<unknown> }> {
    const archive = join(dir.path, `case-${++count}.tar`);
    writeFileSync(archive, bytes);
    const out = join(dir.path, `out-${count}`);
    return { out, promise: unpackArchive(archive, out, { archiveName: "hostile.tar" }) };
  }

  const withChecksum = (header: Buffer): Buffer => {
    header.fill(" ", 148, 156);
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "ascii");
    return header;
  };
  const closing = Buffer.alloc(1024);

  test("an entry after a lone zero block (where GNU tar and Python stop reading) is refused, not unpacked", async () => {
    const first = rawTar([{ name: "seen.txt", data: "seen\n" }]).subarray(0, 1024);
    const hidden = rawTar([{ name: "hidden.txt", data: "only some tools see this\n" }]);
    const { out, promise } = await unpackBytes(Buffer.concat([first, Buffer.alloc(512), hidden]));
    const error = await rejectsWithCode(promise, "CACHET_ARCHIVE_CORRUPT");
    assert.match(error.message, /hidden\.txt/);
    assert.equal(existsSync(out), false);
  });

  test("extended headers that name an entry twice, or a global header naming it, are refused: tools disagree on which name wins", async () => {
    const pad = (length: number) => Buffer.alloc((512 - (length % 512)) % 512);
    const meta = (type: string, text: string) => {
      const data = Buffer.from(text);
      return Buffer.concat([tarHeader({ name: "././@Meta", type, data }), data, pad(data.length)]);
    };
    const pax = (type: string, key: string, value: string) => meta(type, paxRecord(key, value));
    const file = rawTar([{ name: "header-name.txt", data: "data\n" }]);
    const cases: Array<[string, Buffer[]]> = [
      // GNU tar and Python take the pax path; node-tar the later GNU long name.
      ["pax path, then a GNU long name", [pax("x", "path", "from-pax.txt"), meta("L", "from-gnu.txt\0")]],
      ["a GNU long name, then a pax path", [meta("L", "from-gnu.txt\0"), pax("x", "path", "from-pax.txt")]],
      // Python takes the first of two; GNU tar and node-tar the second.
      ["two pax paths", [pax("x", "path", "first.txt"), pax("x", "path", "second.txt")]],
      ["two GNU long names", [meta("L", "first.txt\0"), meta("L", "second.txt\0")]],
      // GNU tar and Python name the entry by a global header's path; node-tar ignores it.
      ["a global header's path", [pax("g", "path", "global.txt")]],
    ];
    for (const [label, headers] of cases) {
      const { out, promise } = await unpackBytes(Buffer.concat([...headers, file]));
      const error = await rejectsWithCode(promise, "CACHET_ARCHIVE_CORRUPT");
      assert.match(error.message, /extended headers also name it/, label);
      assert.equal(existsSync(out), false, label);
    }
    // One long name and one long link target, as GNU tar writes a long symlink, are one name each: unpacked.
    const longName = `${"d".repeat(120)}/link`;
    const longTarget = `../${"t".repeat(120)}`.slice(3);
    const linkHeaders = [meta("L", `${longName}\0`), meta("K", `${longTarget}\0`)];
    const link = tarHeader({ name: "short", type: "2", linkname: "short-target" });
    const { out, promise } = await unpackBytes(Buffer.concat([...linkHeaders, link, closing]));
    await promise;
    assert.equal(readlinkSync(join(out, longName)), longTarget);
  });

  const longTargetLink = (name: string, target: string): Buffer => {
    const text = Buffer.from(`${target}\0`);
    return Buffer.concat([tarHeader({ name: "././@LongLink", type: "K", data: text }), text, Buffer.alloc((512 - (text.length % 512)) % 512), tarHeader({ name, type: "2", linkname: "placeholder" })]);
  };

  test("symlinks resolved through each other: every link is resolved once, escapes are found in any order, cycles are loops", async () => {
    // 39 chained links with ~1 600-segment targets, and 1 000 links to the end of the chain: each of those was
    // resolved through the whole chain again (60 000 lstat calls each, about 5 minutes in all for a 1 MB tar).
    // Now each link is resolved once.
    const wide = Array(790).fill("d/..").join("/");
    const chain = [tarHeader({ name: "d/", type: "5" }), longTargetLink("L0", `${wide}/d`)];
    for (let k = 1; k < 39; k++) chain.push(longTargetLink(`L${k}`, `${wide}/L${k - 1}`));
    const toEnd = rawTar(Array.from({ length: 1000 }, (_, i) => ({ name: `Y${i}`, type: "2", linkname: "L38" })));
    // In a child process: the check is synchronous, so only a bound on another process can tell it never ends.
    const archive = join(dir.path, "chained.tar");
    writeFileSync(archive, Buffer.concat([...chain, toEnd]));
    const script = `import { unpackArchive } from ${JSON.stringify(new URL("../src/index.js", import.meta.url).pathname)};
      const tally = await unpackArchive(${JSON.stringify(archive)}, ${JSON.stringify(join(dir.path, "chained"))}, { archiveName: "chained.tar" });
      console.log(JSON.stringify(tally));`;
    const child = startNode(["--import", "tsx", "--input-type=module", "-e", script], {}, { cwd: REPO });
    try {
      const exit = await child.waitForExit({ timeoutMs: 60_000 });
      assert.equal(exit.code, 0, child.stderr());
      assert.equal((JSON.parse(child.stdout()) as { symlinks: number }).symlinks, 1039);
    } finally {
      await child.kill9();
    }

    // A chain whose last link climbs out, only through another link (sub/x -> ..): refused whichever link
    // comes first in the archive.
    const climber = [
      { name: "sub/", type: "5" },
      { name: "sub/x", type: "2", linkname: ".." },
    ];
    const links = Array.from({ length: 50 }, (_, k) => ({ name: `X${k}`, type: "2", linkname: k === 49 ? "sub/x/.." : `X${k + 1}` }));
    for (const order of [links, [...links].reverse()]) {
      const { out, promise: escaping } = await unpackBytes(rawTar([...climber, ...order]));
      const error = await rejectsWithCode(escaping, "CACHET_ARCHIVE_UNSAFE_ENTRY");
      assert.match(error.message, /outside the unpacked tree/);
      assert.equal(existsSync(out), false);
    }
    // The same chain ending inside, and a cycle, are unpacked.
    const inside = links.map((link, k) => (k === 49 ? { ...link, linkname: "d" } : link));
    const cycle = [
      { name: "C1", type: "2", linkname: "C2/x" },
      { name: "C2", type: "2", linkname: "C1/y" },
    ];
    for (const entries of [[{ name: "d/", type: "5" }, ...inside], [{ name: "d/", type: "5" }, ...[...inside].reverse()], cycle]) {
      const { promise: fine } = await unpackBytes(rawTar(entries));
      await fine;
    }
  });

  test("a size field that is not a number, or a negative base-256 size, is refused rather than read as 0", async () => {
    const next = rawTar([{ name: "next.txt", data: "smuggled\n" }]);
    const garbage = tarHeader({ name: "garbage.txt", size: 0 });
    garbage.write("zzzzzzzzzzz\0", 124, "ascii");
    const negative = tarHeader({ name: "negative.txt", size: 0 });
    negative.fill(0xff, 124, 136);
    for (const [header, name] of [
      [garbage, "garbage.txt"],
      [negative, "negative.txt"],
    ] as const) {
      const { out, promise } = await unpackBytes(Buffer.concat([withChecksum(header), next]));
      const error = await rejectsWithCode(promise, "CACHET_ARCHIVE_CORRUPT");
      assert.ok(error.message.includes(name), error.message);
      assert.equal(existsSync(out), false);
    }
    // A well-formed tar after all (the helpers above are not what fails).
    const { promise } = await unpackBytes(Buffer.concat([next.subarray(0, 1024), closing]));
    assert.deepEqual(await promise, { files: 1, directories: 0, symlinks: 0, bytes: 9 });
  });
});

describe("hostile zips", () => {
  const dir = tempDir("cachet-zip-hostile-");
  after(() => dir.cleanup());
  let count = 0;

  async function zipBytes(entries: Parameters<typeof writeZip>[1]): Promise<Buffer> {
    const path = join(dir.path, `built-${++count}.zip`);
    await writeZip(path, entries);
    return readFileSync(path);
  }
  async function unpackZip(bytes: Buffer): Promise<{ out: string; promise: Promise<unknown> }> {
    const archive = join(dir.path, `case-${++count}.zip`);
    writeFileSync(archive, bytes);
    const out = join(dir.path, `out-${count}`);
    return { out, promise: unpackArchive(archive, out, { archiveName: "hostile.zip" }) };
  }

  test("a name too long for the file system is CACHET_ARCHIVE_UNSUPPORTED_ENTRY naming it, not a collision or a bare ENAMETOOLONG", async () => {
    for (const name of [`${"a".repeat(300)}.txt`, `${`${"d".repeat(200)}/`.repeat(25)}f.txt`]) {
      const { out, promise } = await unpackZip(await zipBytes([{ name, data: "x" }]));
      const error = await rejectsWithCode(promise, "CACHET_ARCHIVE_UNSUPPORTED_ENTRY");
      assert.match(error.message, /too long for this file system/);
      assert.equal(existsSync(out), false);
    }
  });

  test("an entry whose local header names it otherwise than the central directory is refused (a streaming reader would see another tree)", async () => {
    const bytes = await zipBytes([{ name: "central.txt", data: "x\n" }]);
    const local = bytes.indexOf("central.txt"); // the local header comes first
    bytes.write("streamed.tx", local);
    assert.notEqual(bytes.indexOf("central.txt", local + 1), -1);
    const { out, promise } = await unpackZip(bytes);
    const error = await rejectsWithCode(promise, "CACHET_ARCHIVE_CORRUPT");
    assert.match(error.message, /central\.txt.*local header names it "streamed\.tx"/);
    assert.equal(existsSync(out), false);
  });

  test("an entry whose bytes lie inside another entry's (overlapping entries, the shape of a better zip bomb) is refused", async () => {
    // The stored bytes of b.txt on their own, local header first: they become the data of a.txt, and b.txt's
    // central record is pointed at them, inside a.txt.
    const alone = await zipBytes([{ name: "b.txt", data: "hello\n", compress: false }]);
    const embedded = alone.subarray(0, 30 + "b.txt".length + alone.readUInt16LE(28) + 6);
    const bytes = await zipBytes([
      { name: "a.txt", data: embedded, compress: false },
      { name: "b.txt", data: "hello\n", compress: false },
    ]);
    const aData = 30 + "a.txt".length + bytes.readUInt16LE(28);
    const patched = patchCentralRecord(bytes, "b.txt", (record, at) => record.writeUInt32LE(aData, at + 42));
    const { out, promise } = await unpackZip(patched);
    const error = await rejectsWithCode(promise, "CACHET_ARCHIVE_CORRUPT");
    assert.match(error.message, /b\.txt.*overlaps entry "a\.txt"/);
    assert.equal(existsSync(out), false);
    // The same zip unpatched is fine.
    const { promise: fine } = await unpackZip(bytes);
    assert.equal(((await fine) as { files: number }).files, 2);
  });
});

