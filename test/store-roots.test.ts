// Roots the store cannot use fail in bounded time with one line that says what and where; long names and
// paths are cut in messages; a missing native build is one line naming the fix, and importing cachet still works.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openStore } from "../src/store/index.js";
import { runCli, tempDir, writeModuleBlocker } from "./helpers.js";

const scratch = tempDir("cachet-roots-");
after(scratch.cleanup);

function assertOneBoundedLine(message: string): void {
  assert.equal(message.includes("\n"), false, message);
  assert.ok(message.length <= 1000, `${message.length} characters`);
}

describe("roots that cannot be used", () => {
  test("a root under /proc fails at once (Node's recursive mkdir would spin forever there)", { timeout: 20_000 }, async () => {
    const error = await openStore({ cacheDir: "/proc/nonexist/cache" }).then(
      () => assert.fail("opened a store under /proc"),
      (e: Error & { code: string }) => e,
    );
    assert.equal(error.code, "CACHET_BAD_ROOT");
    assert.match(error.message, /\/proc\/nonexist\/cache/);
    assertOneBoundedLine(error.message);
  });

  test("a root that is a file says so, through the API and the CLI", async () => {
    const file = join(scratch.path, "a-file");
    writeFileSync(file, "not a directory");
    await assert.rejects(openStore({ cacheDir: file }), (e: Error & { code: string }) => {
      assert.equal(e.code, "CACHET_BAD_ROOT");
      assert.match(e.message, /is a file, not a directory/);
      return true;
    });
    const cli = await runCli(["--cache-dir", join(file, "cache"), "cache", "verify"]);
    assert.equal(cli.code, 2, "a cache root that cannot be made is the setting's fault");
    assert.equal(cli.stderr, `error: the cache root ${join(file, "cache")} (from --cache-dir) cannot be made: ${file} is a file, not a directory\n`);
    assert.equal(readFileSync(file, "utf8"), "not a directory");
  });

  test("a root under /sys is refused with the reason", async () => {
    await assert.rejects(openStore({ cacheDir: "/sys/cachet-test/cache" }), (e: Error & { code: string }) => {
      assert.equal(e.code, "CACHET_BAD_ROOT");
      assertOneBoundedLine(e.message);
      return true;
    });
  });
});

describe("messages stay one bounded line", () => {
  test("a 10 000-character name and a 2 KB path are cut in the middle, keeping both ends", async () => {
    const store = await openStore({ cacheDir: join(scratch.path, "messages") });
    try {
      const name = `${"n".repeat(5000)}/${"m".repeat(5000)}`;
      await assert.rejects(store.put(name, "k", "v"), (e: Error) => {
        assertOneBoundedLine(e.message);
        assert.match(e.message, /more\)/);
        assert.match(e.message, /path separator/);
        return true;
      });
    } finally {
      await store.close();
    }
    const deep = join(scratch.path, ...Array.from({ length: 40 }, (_, i) => `dir-${String(i).padStart(2, "0")}-${"x".repeat(40)}`));
    const blocker = join(scratch.path, "blocker");
    writeFileSync(blocker, "");
    const cli = await runCli(["cache", "prune"], { CACHET_CACHE_DIR: join(blocker, deep) });
    const errors = cli.stderr.split("\n").filter((line) => line.startsWith("error:"));
    assert.ok(errors.length <= 1, cli.stderr);
  });
});

describe("a native module that is not built", () => {
  test("importing cachet works; opening a store is one line naming `npm rebuild`; tasks still run; the CLI exits 1 without a stack", () => {
    // A preload that makes the two native modules fail to load, as after `npm install --ignore-scripts`.
    const blocker = writeModuleBlocker(join(scratch.path, "block-native.cjs"), ["better-sqlite3", "fs-ext-extra-prebuilt"], "Could not locate the bindings file (blocked for this test)", { nativeAddons: true });
    const script = `
      const cachet = await import(${JSON.stringify(new URL("../dist/index.js", import.meta.url).pathname)});
      console.log("imported", typeof cachet.openStore);
      try {
        await cachet.openStore({ cacheDir: ${JSON.stringify(join(scratch.path, "native"))} });
        console.log("opened");
      } catch (error) {
        console.log("error", error.code, error.message);
      }
      // A task still runs and returns its value, with one warning for the process.
      const warnings = [];
      cachet.configureTasks({ store: { cacheDir: ${JSON.stringify(join(scratch.path, "native"))} }, onWarning: (w) => warnings.push(w) });
      let runs = 0;
      const double = cachet.task({ name: "double", cache: new cachet.Cache({ version: "1" }) }, async (n) => { runs++; return n * 2; });
      console.log("results", await double(2), await double(2), await double(3), "runs", runs);
      console.log("warnings", warnings.length, warnings.map((w) => w.message).join(" | "));
    `;
    const run = spawnSync(process.execPath, ["--require", blocker, "--input-type=module", "-e", script], { encoding: "utf8", timeout: 30_000 });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /^imported function$/m);
    assert.match(run.stdout, /^error CACHET_NATIVE_MODULE .*npm rebuild (fs-ext-extra-prebuilt|better-sqlite3)`/m);
    assert.match(run.stdout, /^results 4 4 6 runs 3$/m);
    assert.match(run.stdout, /^warnings 1 .*npm rebuild/m);

    const cli = spawnSync(process.execPath, ["--require", blocker, new URL("../dist/cli/cachet.js", import.meta.url).pathname, "cache", "ls"], {
      encoding: "utf8",
      timeout: 30_000,
      env: { ...process.env, CACHET_CACHE_DIR: join(scratch.path, "native") },
    });
    assert.equal(cli.status, 1, cli.stderr);
    const lines = cli.stderr.trim().split("\n");
    assert.equal(lines.filter((line) => line.startsWith("error:")).length, 1, cli.stderr);
    assert.match(cli.stderr, /npm rebuild/);
    assert.doesNotMatch(cli.stderr, /^\s+at /m);
  });
});
