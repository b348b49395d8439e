// localSource: files by content, directories by their cache keys (defaults, or package.json's cacheKeys, which
// replace them); a LocalSource as a task input hashes as its key; `cachet cache explain` on cache-key entries.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, cpSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  DEFAULT_CACHE_KEYS,
  LocalSource,
  LocalSourceError,
  PackageJsonError,
  SettingError,
  computeCacheKey,
  explainCacheKeyEntry,
  hashValue,
  localSource,
  openStore,
  sha256Hex,
  task,
} from "../src/index.js";
import { runCli, tempDir } from "./helpers.js";

const scratch = tempDir();
after(scratch.cleanup);
let projects = 0;

function project(files: Record<string, string> = {}): string {
  const dir = join(scratch.path, `project-${++projects}`);
  mkdirSync(dir, { recursive: true });
  for (const [path, content] of Object.entries(files)) write(dir, path, content);
  return dir;
}

function write(dir: string, path: string, content: string): void {
  mkdirSync(join(dir, path, ".."), { recursive: true });
  writeFileSync(join(dir, path), content);
}

describe("localSource", () => {
  test("a file is keyed by its content: an edit changes the key, the same bytes elsewhere do not", async () => {
    const dir = project({ "dist/app-1.0.tgz": "archive bytes", "copy/app-1.0.tgz": "archive bytes" });
    const source = await localSource(join(dir, "dist/app-1.0.tgz"));
    assert.ok(source instanceof LocalSource);
    assert.equal(source.kind, "file");
    assert.equal(source.path, join(dir, "dist/app-1.0.tgz"));
    assert.deepEqual(source.components.files, { "app-1.0.tgz": sha256Hex("archive bytes") });
    assert.equal((await localSource(join(dir, "copy/app-1.0.tgz"))).key, source.key);
    writeFileSync(join(dir, "dist/app-1.0.tgz"), "other bytes");
    assert.notEqual((await localSource(join(dir, "dist/app-1.0.tgz"))).key, source.key);
  });

  test("a file name with glob characters is taken literally", async () => {
    const dir = project({ "a[1].tgz": "x", "a1.tgz": "y" });
    assert.deepEqual(Object.keys((await localSource(join(dir, "a[1].tgz"))).components.files), ["a[1].tgz"]);
  });

  test("a directory's defaults: its package.json and whether src/ exists, not what src/ holds", async () => {
    const dir = project({ "package.json": '{"name":"pkg"}', "README.md": "r" });
    const first = await localSource(dir);
    assert.equal(first.kind, "directory");
    assert.deepEqual(first.components.specs, ["package.json", { dir: "src" }]);
    assert.equal(DEFAULT_CACHE_KEYS.length, 2);
    write(dir, "README.md", "changed");
    assert.equal((await localSource(dir)).key, first.key, "other files do not count");
    mkdirSync(join(dir, "src"));
    const withSrc = await localSource(dir);
    assert.notEqual(withSrc.key, first.key, "adding src/ counts");
    write(dir, "src/index.ts", "export {};");
    assert.equal((await localSource(dir)).key, withSrc.key, "what src/ holds does not");
    rmSync(join(dir, "src"), { recursive: true });
    assert.equal((await localSource(dir)).key, first.key, "removing src/ counts");
    write(dir, "package.json", '{"name":"pkg","version":"2.0.0"}');
    assert.notEqual((await localSource(dir)).key, first.key, "package.json counts");
  });

  test("package.json's cacheKeys replace the defaults; the cacheKeys option replaces both", async () => {
    const dir = project({
      "package.json": JSON.stringify({ name: "pkg", cachet: { cacheKeys: ["requirements.txt", { env: "BUILD_MODE" }] } }),
      "requirements.txt": "left-pad==1",
    });
    const env = { BUILD_MODE: "release" };
    const first = await localSource(dir, { env });
    assert.deepEqual(first.components.specs, ["requirements.txt", { env: "BUILD_MODE" }]);
    mkdirSync(join(dir, "src"));
    assert.equal((await localSource(dir, { env })).key, first.key, "the defaults no longer apply: src/ does not count");
    assert.notEqual((await localSource(dir, { env: {} })).key, first.key);
    write(dir, "requirements.txt", "left-pad==2");
    assert.notEqual((await localSource(dir, { env })).key, first.key);
    const own = await localSource(dir, { cacheKeys: [{ dir: "src" }], env });
    assert.deepEqual(own.components.specs, [{ dir: "src" }]);
  });

  test("a bad cacheKeys in the directory's package.json, and a path that names nothing, are clear errors", async () => {
    const dir = project({ "package.json": JSON.stringify({ cachet: { cacheKeys: [{ file: "" }] } }) });
    await assert.rejects(localSource(dir), (error: unknown) => error instanceof SettingError && /"cachet\.cacheKeys\[0\]\.file"="" is not valid/.test(error.message));
    const broken = project({ "package.json": "{ not json" });
    await assert.rejects(localSource(broken), (error: unknown) => error instanceof PackageJsonError && /looked for "cachet\.cacheKeys"\): invalid JSON/.test(error.message));
    await assert.rejects(localSource(join(dir, "missing")), (error: unknown) => error instanceof LocalSourceError && error.code === "CACHET_LOCAL_SOURCE" && /ENOENT/.test(error.message));
  });

  test("with a store, an unchanged directory is keyed without reading its files", async () => {
    const dir = project(Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`src/m${i}.ts`, `export const m = ${i};`])));
    await new Promise((resolve) => setTimeout(resolve, 60)); // out of the just-written window
    const cacheDir = join(scratch.path, "cache-memo");
    const store = await openStore({ cacheDir });
    try {
      const first = await localSource(dir, { cacheKeys: ["src/**/*.ts"], store });
      const again = await computeCacheKey(dir, ["src/**/*.ts"], { store });
      assert.equal(again.key, first.key);
      assert.deepEqual(again.digests, { read: 0, memoized: 12 });
    } finally {
      await store.close();
    }
  });
});

describe("LocalSource as a task input", () => {
  test("the task is keyed by the source's key: same key elsewhere hits, an edit misses, hashing reads no file", async () => {
    const cacheDir = join(scratch.path, "cache-task");
    const store = await openStore({ cacheDir });
    try {
      let runs = 0;
      const build = task({ name: "build-pkg", store }, async (source: LocalSource) => {
        runs++;
        return `built ${source.key.slice(0, 8)}`;
      });
      const dir = project({ "package.json": '{"name":"a"}' });
      const source = await localSource(dir);
      assert.equal(hashValue(source), hashValue(new LocalSource("/elsewhere", "directory", source.key, source.components)), "the declared hash is the key");
      const first = await build(source);
      assert.equal(runs, 1);
      const copy = project();
      cpSync(dir, copy, { recursive: true });
      assert.equal(await build(await localSource(copy)), first, "the same package elsewhere is a hit");
      assert.equal(runs, 1);
      // The task hashes the source's declared hash, not the files: with the directory gone the call still hits.
      rmSync(dir, { recursive: true });
      assert.equal(await build(source), first);
      assert.equal(runs, 1);
      write(copy, "package.json", '{"name":"b"}');
      await build(await localSource(copy));
      assert.equal(runs, 2, "an edit is a miss");
    } finally {
      await store.close();
    }
  });
});

describe("explain for entries keyed by cache keys", () => {
  test("the library and `cachet cache explain` say which file, directory, variable changed since the entry", async () => {
    const cacheDir = join(scratch.path, "cache-explain");
    const dir = project({ "package.json": "{}", "src/a.ts": "a", "src/b.ts": "b", "run.sh": "echo" });
    const specs = ["src/**/*.ts", "run.sh", { dir: "dist" }, { env: "CACHET_TEST_MODE" }] as const;
    const store = await openStore({ cacheDir });
    try {
      const { key, components } = await computeCacheKey(dir, specs, { store, env: { CACHET_TEST_MODE: "x" } });
      await store.put("build", key, "output", { components, origin: "computed" });
      const unchanged = await explainCacheKeyEntry(store, "build", undefined, { env: { CACHET_TEST_MODE: "x" } });
      assert.deepEqual(unchanged?.changes, []);
      assert.equal(unchanged?.current?.key, key);
      // A `cachet run` entry keeps them under `cacheKeys` beside its own components.
      await store.put("run-entry", key, "output", { components: { command: ["tsc"], cacheKeys: components } });
      assert.equal((await explainCacheKeyEntry(store, "run-entry"))?.components.baseDir, dir);
    } finally {
      await store.close();
    }
    write(dir, "src/a.ts", "a2");
    rmSync(join(dir, "src/b.ts"));
    write(dir, "src/c.ts", "c");
    chmodSync(join(dir, "run.sh"), 0o755);
    mkdirSync(join(dir, "dist"));
    const result = await runCli(["cache", "explain", "build", "--cache-dir", cacheDir], { CACHET_TEST_MODE: "" });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^build\/[0-9a-f]{64}\n/);
    assert.match(result.stdout, /cache keys in .*: run\.sh src\/\*\*\/\*\.ts dir:dist env:CACHET_TEST_MODE/);
    for (const line of ["file src/a.ts changed", "file src/b.ts disappeared", "file src/c.ts appeared", "file run.sh became executable", "directory dist was created", "env CACHET_TEST_MODE changed"]) {
      assert.ok(result.stdout.includes(`\n  ${line}\n`) || result.stdout.endsWith(`\n  ${line}\n`), `${line} in:\n${result.stdout}`);
    }
    const json = await runCli(["cache", "explain", "build", "--json", "--cache-dir", cacheDir], {});
    const parsed = JSON.parse(json.stdout) as { changes: string[]; currentKey: string; components: { env: Record<string, string | null> } };
    assert.ok(parsed.changes.includes("env CACHET_TEST_MODE was unset"), parsed.changes.join("\n"));
    assert.match(parsed.currentKey, /^[0-9a-f]{64}$/);
    assert.ok(!json.stdout.includes('"x"'), "the variable's value is not shown");

    rmSync(dir, { recursive: true });
    const gone = await runCli(["cache", "explain", "build", "--cache-dir", cacheDir]);
    assert.equal(gone.code, 0, gone.stderr);
    assert.match(gone.stdout, /Cannot compare with the files now: .* is no longer a directory/);
    assert.match(gone.stdout, /\n {2}file src\/a\.ts [0-9a-f]{16}\n/);
    assert.match(gone.stdout, /\n {2}env CACHET_TEST_MODE set\n/);
  });
});
