// The published package as a user gets it: `npm pack`, the tarball installed into fresh consumer projects, and
// what every user meets there — an ES module and a CommonJS project (plain `require` and tsx) run a task and use
// the sources and the configured store (cachedFetch, fetchArtifact, gitSource, localSource, openConfiguredStore),
// the CLI runs from node_modules/.bin, `tsc --strict` without `skipLibCheck` accepts the declarations (a generic
// task keeps its type parameters), installing without install scripts leaves tasks working and names the one fix,
// the README's `allowScripts` covers every install script, and the tarball holds a LICENSE, a true description,
// docs whose links stay inside it, and no source maps of sources it does not ship.
//
// One install, with `--ignore-scripts` (from npm's cache when it has everything, else the registry), serves two
// projects: `unbuilt/` keeps it as installed (no native build has run); `built/` is a copy of its node_modules
// given better-sqlite3's binary from this repository's node_modules. That binary is what better-sqlite3's own
// install script produced here for the same version (pinned to it with `overrides`), on this Node.js, so `built/`
// holds what an install with scripts gives a user, without compiling SQLite again (about 75 s) on every run.
// TypeScript, tsx and @types/node come from this repository (a consumer brings its own); nothing else is added.
import { after, before, describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve, sep } from "node:path";
import { pathToFileURL } from "node:url";
import { createHash } from "node:crypto";
import { makeRepository } from "./git-servers.js";
import { tempDir } from "./helpers.js";
import { startOrigin } from "./http-origin.js";
import { runToEnd, startProcess, type ChildRun } from "./workers/child.js";

const repo = new URL("..", import.meta.url).pathname;
const requireFromRepo = createRequire(join(repo, "package.json"));
const repoPackage = JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as {
  name: string;
  license: string;
  description: string;
  bin: Record<string, string>;
  devDependencies: Record<string, string>;
};
const SQLITE = "better-sqlite3";
const FLOCK = "fs-ext-extra-prebuilt";
const INSTALL_TIMEOUT_MS = 150_000;

/** Failures of npm that mean the registry could not be reached (the test then skips, saying so). */
const OFFLINE = /\b(ENOTCACHED|ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH)\b/;

/** Environment for npm in a consumer: nothing inherited from the `npm test` that runs this file. */
function consumerNpmEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const name of Object.keys(process.env)) if (/^npm_/i.test(name) || name === "INIT_CWD") env[name] = undefined;
  return env;
}

/** Runs npm (the one running this suite when there is one) in `cwd`, bounded, and returns its output. */
async function npm(args: string[], cwd: string, timeoutMs = 60_000): Promise<ChildRun> {
  const npmCli = process.env.npm_execpath;
  const [command, prefix] = npmCli && /\.[cm]?js$/.test(npmCli) ? [process.execPath, [npmCli]] : ["npm", []];
  const child = startProcess(command, [...prefix, ...args], consumerNpmEnv(), { cwd, lifetimeMs: timeoutMs + 10_000 });
  try {
    const exit = await child.waitForExit({ timeoutMs });
    return { ...exit, stdout: child.stdout(), stderr: child.stderr() };
  } finally {
    await child.kill9();
  }
}

/** Runs `node args` in `cwd` with `env`, bounded (30 s unless told). */
function node(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}, timeoutMs?: number): Promise<ChildRun> {
  return runToEnd(args, env, timeoutMs === undefined ? { cwd } : { cwd, timeoutMs });
}

function show(run: ChildRun): string {
  return `exit ${run.code} (signal ${run.signal})\n--- stdout ---\n${run.stdout}\n--- stderr ---\n${run.stderr}`;
}

function writeJson(path: string, value: unknown): void {
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** Every file under `dir`, as paths relative to it with `/` separators. */
function filesUnder(dir: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) found.push(relative(dir, join(entry.parentPath, entry.name)).split(sep).join("/"));
  }
  return found.sort();
}

/** The `allowScripts` object of the README's install section (a ```json block naming it). */
function readmeAllowScripts(): Record<string, boolean> {
  const readme = readFileSync(join(repo, "README.md"), "utf8");
  const block = [...readme.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1]!).find((text) => text.includes('"allowScripts"'));
  assert.ok(block, "the README shows the allowScripts entries a consumer needs, in a ```json block");
  return (JSON.parse(`{${block}}`) as { allowScripts: Record<string, boolean> }).allowScripts;
}

interface Packed {
  /** Where the tarball was unpacked. */
  dir: string;
  /** Files in the tarball, from `npm pack --json`. */
  files: string[];
}

interface Consumers {
  scratch: string;
  /** As installed with `--ignore-scripts`: no native module has been built. */
  unbuilt: string;
  /** The same node_modules with better-sqlite3 built. */
  built: string;
}

describe("the packed package in fresh projects", () => {
  const scratch = tempDir("cachet-package-");
  let packed: Packed | undefined;
  let consumers: Consumers | undefined;
  let unavailable: string | undefined;

  before(async () => {
    // `npm test` built dist/ first; pack without scripts so no rebuild rewrites dist/ under other test files.
    const pack = await npm(["pack", "--ignore-scripts", "--json", "--pack-destination", scratch.path], repo);
    assert.equal(pack.code, 0, show(pack));
    const [packInfo] = JSON.parse(pack.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    assert.ok(packInfo);
    const tarball = join(scratch.path, packInfo.filename);
    const unpacked = join(scratch.path, "packed");
    mkdirSync(unpacked);
    const tar = startProcess("tar", ["-xzf", tarball, "-C", unpacked]);
    try {
      const untar = await tar.waitForExit();
      assert.equal(untar.code, 0, tar.stderr());
    } finally {
      await tar.kill9();
    }
    packed = { dir: join(unpacked, "package"), files: packInfo.files.map((f) => f.path).sort() };

    const unbuilt = join(scratch.path, "unbuilt");
    mkdirSync(unbuilt);
    const sqliteVersion = (requireFromRepo(`${SQLITE}/package.json`) as { version: string }).version;
    writeJson(join(unbuilt, "package.json"), { name: "consumer", version: "1.0.0", private: true, type: "module", overrides: { [SQLITE]: sqliteVersion } });
    const installArgs = ["install", "--ignore-scripts", "--no-audit", "--no-fund", "--no-update-notifier", tarball];
    let install = await npm([...installArgs, "--offline"], unbuilt, INSTALL_TIMEOUT_MS);
    if (install.code !== 0 && /ENOTCACHED/.test(install.stderr)) install = await npm([...installArgs, "--prefer-offline"], unbuilt, INSTALL_TIMEOUT_MS);
    if (install.code !== 0 && OFFLINE.test(install.stderr)) {
      unavailable = `npm could not fetch the package's dependencies (${OFFLINE.exec(install.stderr)![1]}): the registry is not reachable and npm's cache lacks them`;
      return;
    }
    assert.equal(install.code, 0, show(install));

    const built = join(scratch.path, "built");
    mkdirSync(built);
    writeJson(join(built, "package.json"), { name: "consumer", version: "1.0.0", private: true, type: "module" });
    cpSync(join(unbuilt, "node_modules"), join(built, "node_modules"), { recursive: true, verbatimSymlinks: true });
    const installedSqlite = join(built, "node_modules", SQLITE);
    assert.equal((JSON.parse(readFileSync(join(installedSqlite, "package.json"), "utf8")) as { version: string }).version, sqliteVersion);
    mkdirSync(join(installedSqlite, "build", "Release"), { recursive: true });
    cpSync(join(dirname(requireFromRepo.resolve(`${SQLITE}/package.json`)), "build", "Release", "better_sqlite3.node"), join(installedSqlite, "build", "Release", "better_sqlite3.node"));
    mkdirSync(join(built, "node_modules", "@types"), { recursive: true });
    symlinkSync(dirname(requireFromRepo.resolve("@types/node/package.json")), join(built, "node_modules", "@types", "node"), "dir");

    consumers = { scratch: scratch.path, unbuilt, built };
  }, { timeout: INSTALL_TIMEOUT_MS * 2 + 30_000 });

  after(scratch.cleanup);

  /** The consumers, or undefined after skipping `t` when they could not be installed here. */
  function ready(t: TestContext): Consumers | undefined {
    if (unavailable !== undefined) t.skip(unavailable);
    return consumers;
  }

  test("the tarball: LICENSE, a description of what is built, docs whose links stay inside it, no stray source maps", () => {
    assert.ok(packed);
    const pkg = packed.dir;
    const files = filesUnder(pkg);
    assert.deepEqual(files, packed.files, "the unpacked tarball holds what npm pack listed");
    if (consumers) assert.deepEqual(filesUnder(join(consumers.unbuilt, "node_modules", repoPackage.name)), files, "npm installed the tarball's content");

    assert.ok(files.includes("LICENSE"), `no LICENSE in the tarball: ${files.filter((f) => !f.includes("/")).join(", ")}`);
    const manifest = JSON.parse(readFileSync(join(pkg, "package.json"), "utf8")) as typeof repoPackage;
    assert.equal(manifest.license, "MIT");
    assert.match(readFileSync(join(pkg, "LICENSE"), "utf8"), /^MIT License\b/, "the LICENSE is the MIT text package.json names");
    for (const file of ["dist/index.js", "dist/index.d.ts", "README.md"]) assert.ok(files.includes(file), `${file} is missing`);
    for (const file of files) assert.match(file, /^(dist|docs)\/|^(LICENSE|README\.md|package\.json)$/, `${file} should not be published`);

    // The description names only what exists: the sources and remote layers are not built yet.
    for (const [word, layer] of [[/\bremote\b/i, "dist/remote/"], [/\bsources\b/i, "dist/sources/"]] as const) {
      if (word.test(manifest.description)) assert.ok(files.some((f) => f.startsWith(layer)), `the description mentions ${word} but ${layer} is not in the package: ${manifest.description}`);
    }
    if (/\bCLI\b/.test(manifest.description)) assert.ok(files.includes(Object.values(manifest.bin)[0]!.replace(/^\.\//, "")), "the CLI the description names");

    // Docs: every link and every *.md they name resolves to a file in the package; no paths of someone's machine.
    for (const doc of files.filter((f) => f.endsWith(".md"))) {
      const text = readFileSync(join(pkg, doc), "utf8");
      const targets = [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!).filter((t) => t !== "" && !/^(https?:|mailto:|#)/.test(t));
      const named = [...text.matchAll(/(?<![\w/.-])((?:\.{1,2}\/)*[\w.-]+(?:\/[\w.-]+)*\.md)\b/g)].map((m) => m[1]!);
      for (const target of new Set([...targets, ...named])) {
        const path = target.split("#")[0]!;
        const fromDoc = resolve(pkg, dirname(doc), path);
        const fromRoot = resolve(pkg, path);
        const found = [fromDoc, fromRoot].find((p) => p.startsWith(pkg + sep) && existsSync(p));
        assert.ok(found, `${doc} points at ${target}, which is not in the package`);
      }
      assert.doesNotMatch(text, /(^|[\s`("'])(\/work\/|\/home\/|\/root\/|\/Users\/|[A-Z]:\\\\)/m, `${doc} names a path on someone's machine`);
    }

    // Source maps: none pointing at files the package does not hold.
    for (const file of files.filter((f) => /\.(js|cjs|mjs|d\.ts)$/.test(f))) {
      for (const m of readFileSync(join(pkg, file), "utf8").matchAll(/[#@] sourceMappingURL=(\S+)/g)) {
        assert.ok(existsSync(resolve(pkg, dirname(file), m[1]!)), `${file} refers to ${m[1]}, which is not in the package`);
      }
    }
    for (const map of files.filter((f) => f.endsWith(".map"))) {
      const { sources = [], sourceRoot = "" } = JSON.parse(readFileSync(join(pkg, map), "utf8")) as { sources?: string[]; sourceRoot?: string };
      for (const source of sources) {
        const path = resolve(pkg, dirname(map), sourceRoot, source);
        assert.ok(path.startsWith(pkg + sep) && existsSync(path), `${map} maps to ${source}, which is not in the package`);
      }
    }
  });

  test("installed with --ignore-scripts: locks work without a build, tasks compute with one warning, openStore and the CLI are one line naming `npm rebuild better-sqlite3`", async (t) => {
    const c = ready(t);
    if (!c) return;
    assert.equal(existsSync(join(c.unbuilt, "node_modules", SQLITE, "build")), false, "better-sqlite3 was built: the install ran scripts");
    assert.equal(existsSync(join(c.unbuilt, "node_modules", FLOCK, "build")), false, `${FLOCK} was built: the install ran scripts`);
    const cacheDir = join(c.scratch, "cache-unbuilt");
    writeFileSync(
      join(c.unbuilt, "run.js"),
      `import { Cache, FileLock, openStore, task } from "cachet";
const out = {};
// The kernel locks need no install script: ${FLOCK} loads the binary its package ships.
const a = new FileLock(${JSON.stringify(join(c.scratch, "probe.lock"))});
const b = new FileLock(${JSON.stringify(join(c.scratch, "probe.lock"))});
out.locks = [a.tryAcquire("exclusive"), b.tryAcquire("shared")];
a.release(); b.release();
try { await openStore(); out.opened = true; } catch (error) { out.openError = { code: error.code, message: error.message }; }
let runs = 0;
const double = task({ name: "double", cache: new Cache({ version: "1" }) }, async (n) => { runs++; return n * 2; });
out.values = [await double(2), await double(2), await double(3)];
out.runs = runs;
console.log(JSON.stringify(out));
`,
    );
    const run = await node(["run.js"], c.unbuilt, { CACHET_CACHE_DIR: cacheDir });
    assert.equal(run.code, 0, show(run));
    const out = JSON.parse(run.stdout) as { locks: boolean[]; openError?: { code: string; message: string }; values: number[]; runs: number };
    assert.deepEqual(out.locks, [true, false], "an exclusive flock excludes a second holder");
    assert.equal(out.openError?.code, "CACHET_NATIVE_MODULE", show(run));
    assert.equal(out.openError.message.includes("\n"), false);
    assert.match(out.openError.message, /npm rebuild better-sqlite3/);
    assert.deepEqual(out.values, [4, 4, 6]);
    assert.equal(out.runs, 3, "without the index every call computes");
    const warnings = run.stderr.split("\n").filter((line) => /\[CACHET_/.test(line));
    assert.equal(warnings.length, 1, show(run));
    assert.match(warnings[0]!, /\[CACHET_CACHE_UNAVAILABLE\].*npm rebuild better-sqlite3/);
    assert.doesNotMatch(run.stderr, /^\s+at /m, "no stack trace");

    const cli = await node([join(c.unbuilt, "node_modules", ".bin", "cachet"), "cache", "ls"], c.unbuilt, { CACHET_CACHE_DIR: cacheDir });
    assert.equal(cli.code, 1, show(cli));
    const lines = cli.stderr.trim().split("\n");
    assert.equal(lines.length, 1, show(cli));
    assert.match(lines[0]!, /^error: .*npm rebuild better-sqlite3/);
  });

  test("the README's allowScripts entries cover every install script npm 11 would ask about", async (t) => {
    const c = ready(t);
    if (!c) return;
    const entries = readmeAllowScripts();
    const pending = async (allowScripts: Record<string, boolean>): Promise<string[] | undefined> => {
      const manifestPath = join(c.unbuilt, "package.json");
      writeJson(manifestPath, { ...(JSON.parse(readFileSync(manifestPath, "utf8")) as object), allowScripts });
      const ls = await npm(["install-scripts", "ls", "--json"], c.unbuilt);
      if (ls.code !== 0 && /Unknown command|not a known command/i.test(ls.stderr + ls.stdout)) return undefined;
      assert.equal(ls.code, 0, show(ls));
      return (JSON.parse(ls.stdout) as { allowScripts: Array<{ name: string }> }).allowScripts.map((p) => p.name).sort();
    };
    const unlisted = await pending({});
    if (unlisted === undefined) return t.skip("this npm has no allowScripts (`npm install-scripts`, npm 11)");
    assert.deepEqual(unlisted, [SQLITE, FLOCK].sort(), "the packages with install scripts under cachet");
    assert.deepEqual(await pending(entries), [], `the README's allowScripts ${JSON.stringify(entries)} leaves some unreviewed`);
    assert.equal(entries[SQLITE], true, "better-sqlite3 needs its build");
  });

  test("an ES module project runs a task (a miss, then a hit in a new process) and the installed CLI lists it", async (t) => {
    const c = ready(t);
    if (!c) return;
    const cacheDir = join(c.scratch, "cache-esm");
    writeFileSync(
      join(c.built, "run.js"),
      `import { Cache, task } from "cachet";
const kinds = [];
const double = task({ name: "double", cache: new Cache({ version: "1" }), onEvent: (e) => kinds.push(e.kind) }, async (n) => n * 2);
console.log(JSON.stringify({ value: await double(21), kinds, module: typeof module }));
`,
    );
    const first = await node(["run.js"], c.built, { CACHET_CACHE_DIR: cacheDir });
    assert.equal(first.code, 0, show(first));
    assert.deepEqual(JSON.parse(first.stdout), { value: 42, kinds: ["miss"], module: "undefined" });
    assert.doesNotMatch(first.stderr, /CACHET_|Error/, show(first));
    const second = await node(["run.js"], c.built, { CACHET_CACHE_DIR: cacheDir });
    assert.deepEqual(JSON.parse(second.stdout), { value: 42, kinds: ["hit"], module: "undefined" }, show(second));

    const bin = join(c.built, "node_modules", ".bin", "cachet");
    assert.ok(statSync(bin).mode & 0o111, "the bin is executable");
    assert.match(readFileSync(bin, "utf8"), /^#!\/usr\/bin\/env node\n/);
    const ls = await node([bin, "cache", "ls", "--json"], c.built, { CACHET_CACHE_DIR: cacheDir });
    assert.equal(ls.code, 0, show(ls));
    assert.match(ls.stdout, /"name":\s*"double"/);
  });

  test("a CommonJS project runs a task with require(\"cachet\"), and through tsx", async (t) => {
    const c = ready(t);
    if (!c) return;
    const cjs = join(c.built, "cjs");
    mkdirSync(cjs);
    writeJson(join(cjs, "package.json"), { name: "consumer-cjs", version: "1.0.0", private: true, type: "commonjs" });
    const body = (name: string, types: boolean) => `const kinds${types ? ": string[]" : ""} = [];
const double = task({ name: ${JSON.stringify(name)}, cache: new Cache({ version: "1" }), onEvent: (e) => kinds.push(e.kind) }, async (n${types ? ": number" : ""}) => n * 2);
double(21).then((value) => console.log(JSON.stringify({ value, kinds, module: typeof module })));
`;
    writeFileSync(join(cjs, "run.js"), `const { Cache, task } = require("cachet");\n${body("double-cjs", false)}`);
    writeFileSync(join(cjs, "run.ts"), `import { Cache, task } from "cachet";\n${body("double-tsx", true)}`);
    const cacheDir = join(c.scratch, "cache-cjs");
    const tsx = pathToFileURL(requireFromRepo.resolve("tsx/package.json").replace(/package\.json$/, "dist/loader.mjs")).href;
    for (const args of [["run.js"], ["--import", tsx, "run.ts"]]) {
      const first = await node(args, cjs, { CACHET_CACHE_DIR: cacheDir });
      assert.equal(first.code, 0, show(first));
      assert.deepEqual(JSON.parse(first.stdout), { value: 42, kinds: ["miss"], module: "object" }, "ran as CommonJS");
      const second = await node(args, cjs, { CACHET_CACHE_DIR: cacheDir });
      assert.deepEqual(JSON.parse(second.stdout), { value: 42, kinds: ["hit"], module: "object" }, show(second));
    }
  });

  test("ES module and CommonJS projects use the sources and the configured store: cachedFetch, fetchArtifact, gitSource, localSource, openConfiguredStore", async (t) => {
    const c = ready(t);
    if (!c) return;
    const artifact = "artifact body\n";
    const origin = await startOrigin({
      "/page.json": (_request, response) => void response.writeHead(200, { "content-type": "application/json", "cache-control": "max-age=3600" }).end('{"page":1}'),
      "/tool.txt": (_request, response) => void response.writeHead(200, { "cache-control": "max-age=3600" }).end(artifact),
    });
    t.after(() => origin.close());
    const repository = join(c.scratch, "lib-repo");
    const commit = makeRepository(repository, { "lib.txt": "lib\n" });
    const local = join(c.scratch, "local-package");
    mkdirSync(join(local, "src"), { recursive: true });
    writeJson(join(local, "package.json"), { name: "local-package", cachet: { cacheKeys: ["src/**/*.ts"] } });
    writeFileSync(join(local, "src", "a.ts"), "export const a = 1;\n");

    const imports = "cachedFetch, fetchArtifact, gitSource, localSource, openConfiguredStore";
    const main = `async function main() {
  const out = {};
  const page = await cachedFetch(process.env.PAGE_URL);
  out.page = [page.status, page.headers.get("cache-status"), await page.text()];
  const tool = await fetchArtifact(process.env.ARTIFACT_URL, { sha256: process.env.ARTIFACT_SHA256 });
  out.artifact = [readFileSync(tool.path, "utf8"), tool.fromCache];
  const checkout = await gitSource(process.env.REPOSITORY, { ref: process.env.COMMIT });
  out.git = [checkout.commit, readFileSync(checkout.path + "/lib.txt", "utf8"), checkout.fromCache];
  out.local = (await localSource(process.env.LOCAL)).key;
  const store = await openConfiguredStore();
  out.root = store.root;
  await store.close();
  return out;
}
`;
    const cjs = join(c.built, "cjs-sources");
    mkdirSync(cjs);
    writeJson(join(cjs, "package.json"), { name: "consumer-cjs-sources", version: "1.0.0", private: true, type: "commonjs" });
    writeFileSync(join(c.built, "sources.js"), `import { ${imports} } from "cachet";\nimport { readFileSync } from "node:fs";\n${main}console.log(JSON.stringify(await main()));\n`);
    writeFileSync(join(cjs, "sources.js"), `const { ${imports} } = require("cachet");\nconst { readFileSync } = require("node:fs");\n${main}main().then((out) => console.log(JSON.stringify(out)));\n`);
    const env = {
      PAGE_URL: origin.url("/page.json"),
      ARTIFACT_URL: origin.url("/tool.txt"),
      ARTIFACT_SHA256: createHash("sha256").update(artifact).digest("hex"),
      REPOSITORY: `file://${repository}`,
      COMMIT: commit,
      LOCAL: local,
    };
    let localKey: string | undefined;
    for (const [label, dir] of [["esm", c.built], ["cjs", cjs]] as const) {
      const cacheDir = join(c.scratch, `cache-sources-${label}`);
      const runs = [];
      for (let i = 0; i < 2; i++) {
        const run = await node(["sources.js"], dir, { ...env, CACHET_CACHE_DIR: cacheDir });
        assert.equal(run.code, 0, show(run));
        assert.doesNotMatch(run.stderr, /CACHET_|Error/, show(run));
        runs.push(JSON.parse(run.stdout) as { page: [number, string, string]; artifact: [string, boolean]; git: [string, string, boolean]; local: string; root: string });
      }
      const [first, second] = runs as [(typeof runs)[0], (typeof runs)[0]];
      assert.deepEqual(first.page, [200, "cachet; fwd=uri-miss; fwd-status=200; stored", '{"page":1}'], label);
      assert.deepEqual(second.page, [200, "cachet; hit", '{"page":1}'], `${label}: a new process hits`);
      assert.deepEqual([first.artifact, second.artifact], [[artifact, false], [artifact, true]], label);
      assert.deepEqual([first.git, second.git], [[commit, "lib\n", false], [commit, "lib\n", true]], label);
      assert.equal(first.root, cacheDir, `${label}: without a remote the configured store is the local cache`);
      assert.equal(second.local, first.local, label);
      localKey ??= first.local;
      assert.equal(first.local, localKey, `${label}: the same files, the same key`);
    }
    assert.deepEqual([origin.count("/page.json"), origin.count("/tool.txt")], [2, 2], "one request per URL and cache root");
  });

  test("tsc --strict without skipLibCheck accepts the declarations in ESM and CommonJS, and a generic task keeps its type parameters", async (t) => {
    const c = ready(t);
    if (!c) return;
    const devTypes = Object.keys(repoPackage.devDependencies).filter((name) => name.startsWith("@types/") && name !== "@types/node");
    for (const name of devTypes) assert.equal(existsSync(join(c.built, "node_modules", name)), false, `${name} (a devDependency) is installed in the consumer`);
    const uses = (generic: string) => `import { Cache, cachedFetch, explain, fetchArtifact, file, gitSource, localSource, openConfiguredStore, openStore, task, type CacheStore, type CachedTask, type LocalSource } from "cachet";

const identity = task({ name: "identity", cache: new Cache({ version: "1" }) }, async ${generic}(value: T): Promise<T> => value);
async function firstOf<T>(items: readonly T[]): Promise<T | undefined> {
  return items[0];
}
const first = task({ name: "first" }, firstOf);
const embed = task({ name: "embed" }, async (text: string, verbose: boolean) => text.length + (verbose ? 1 : 0));
const double = task({ name: "double" }, (n: number) => n * 2);

export async function main(): Promise<void> {
  const n: number = await identity(1);
  const s: string = await identity("one");
  // @ts-expect-error the task kept T: a number is not a string
  const wrong: string = await identity(2);
  const flag: boolean | undefined = await first([true]);
  const size: number = await embed("a", false);
  // @ts-expect-error the task kept the parameter types
  await embed(1, false);
  const doubled: Promise<number> = double(2);
  const typed: CachedTask<[string, boolean], number> = embed;
  const name: string = identity.taskName;
  const store = await openStore({ cacheDir: "unused" });
  await store.put("name", "key", "value");
  const why = await explain(embed, "a", true);
  const page: Response = await cachedFetch("https://example.org/page.json", { cache: "only-if-cached" });
  const tool: { path: string; sha256: string; size: number; fromCache: boolean } = await fetchArtifact("https://example.org/a.tgz", { sha256: "0", unpack: true });
  const checkout: { commit: string; path: string } = await gitSource("https://example.org/lib.git", { ref: "main" });
  const local: LocalSource = await localSource(".");
  const configured: CacheStore = await openConfiguredStore();
  console.log(page.status, tool.path, checkout.commit, local.key, configured.root);
  console.log(n, s, wrong, flag, size, doubled, typed, name, why.wouldHit, file("x").path);
}
`;
    writeFileSync(join(c.built, "uses.ts"), uses("<T>"));
    writeFileSync(join(c.built, "uses-cjs.cts"), uses("<T,>"));
    const tsc = requireFromRepo.resolve("typescript/bin/tsc");
    const args = [tsc, "--noEmit", "--strict", "--module", "nodenext", "--moduleResolution", "nodenext", "--target", "es2022", "uses.ts", "uses-cjs.cts"];
    const run = await node(args, c.built, {}, 60_000);
    assert.equal(run.code, 0, show(run));
  });
});
