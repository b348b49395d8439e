import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { openStore } from "../src/index.js";
import { assertCleaned, runCli, tempDir } from "./helpers.js";

async function seed(root: string, entries: Array<{ name: string; key: string; bytes: number; origin?: "computed" | "downloaded" }>) {
  const store = await openStore({ cacheDir: root });
  for (const entry of entries) await store.put(entry.name, entry.key, randomBytes(entry.bytes), { origin: entry.origin });
  await store.close();
}

describe("cachet cache dir", () => {
  const dir = tempDir();
  after(dir.cleanup);

  test("prints the root from --cache-dir, CACHET_CACHE_DIR, XDG_CACHE_HOME", async () => {
    assert.equal((await runCli(["cache", "dir", "--cache-dir", "/x/y"])).stdout, "/x/y\n");
    assert.equal((await runCli(["--cache-dir", "/x/z", "cache", "dir"])).stdout, "/x/z\n");
    assert.equal((await runCli(["cache", "dir"], { CACHET_CACHE_DIR: "/from/env" })).stdout, "/from/env\n");
    assert.equal((await runCli(["cache", "dir"], { XDG_CACHE_HOME: "/xdg" })).stdout, "/xdg/cachet\n");
  });

  test("prints the package.json cacheDir of the project it runs in", async () => {
    writeFileSync(join(dir.path, "package.json"), JSON.stringify({ cachet: { cacheDir: "c" } }));
    const result = await runCli(["cache", "dir"], {}, { cwd: dir.path });
    assert.equal(result.stdout, `${join(dir.path, "c")}\n`);
  });

  test("--no-cache prints a temporary root", async () => {
    const result = await runCli(["cache", "dir", "--no-cache"]);
    assert.match(result.stdout, /cachet-no-cache-/);
    assert.equal(existsSync(result.stdout.trim()), false, "removed at exit");
  });
});

describe("cachet cache clean", () => {
  const dir = tempDir();
  after(dir.cleanup);

  test("removes everything and says how much, in binary units", async () => {
    const root = join(dir.path, "all");
    await seed(root, [
      { name: "a", key: "1", bytes: 100_000 },
      { name: "b", key: "2", bytes: 100 },
    ]);
    const result = await runCli(["cache", "clean", "--cache-dir", root]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, new RegExp(`Clearing cache at: ${root}`));
    assert.match(result.stderr, /Removed 2 entries, \d+ files \(\d+\.\dKiB\)|Removed 2 entries, \d+ files \(\d+\.\dMiB\)/);
    assertCleaned(root);
  });

  test("with names removes only those names' entries and their content", async () => {
    const root = join(dir.path, "named");
    await seed(root, [
      { name: "keep", key: "1", bytes: 50_000 },
      { name: "drop", key: "1", bytes: 50_000 },
      { name: "drop", key: "2", bytes: 10 },
    ]);
    const result = await runCli(["cache", "clean", "drop", "--cache-dir", root]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /Removed 2 entries, 1 file \(48\.8KiB\)/);
    const store = await openStore({ cacheDir: root });
    assert.ok(await store.get("keep", "1"));
    assert.equal(await store.get("drop", "1"), undefined);
    await store.close();
  });

  test("a missing root says no cache was found and exits 0", async () => {
    const root = join(dir.path, "never");
    const result = await runCli(["cache", "clean", "--cache-dir", root]);
    assert.equal(result.code, 0);
    assert.match(result.stderr, new RegExp(`No cache found at: ${root}`));
  });
});

describe("cachet cache prune", () => {
  const dir = tempDir();
  after(dir.cleanup);

  test("removes unknown bucket versions, orphaned blobs and staging files; keeps live entries", async () => {
    const root = join(dir.path, "unused");
    await seed(root, [{ name: "a", key: "1", bytes: 40_000 }]);
    const store = await openStore({ cacheDir: root });
    await store.put("a", "2", randomBytes(40_000));
    await store.delete("a", "2"); // its blob is now unreferenced
    await store.close();
    mkdirSync(join(root, "blobs-v0", "xx"), { recursive: true });
    writeFileSync(join(root, "blobs-v0", "xx", "old"), "old format");
    writeFileSync(join(root, "tmp", "blob-123-abc"), "half written");
    const dry = await runCli(["cache", "prune", "--dry-run", "--cache-dir", root]);
    assert.equal(dry.code, 0, dry.stderr);
    // The dry run lists what would go on stdout, one tab-separated row per item.
    assert.match(dry.stdout, /^WHAT\tITEM\tSIZE\tWHY\n/);
    assert.match(dry.stdout, /^bucket\tblobs-v0\t10B\ta bucket of a version this cachet does not know$/m);
    assert.match(dry.stdout, /^staging\ttmp\/blob-123-abc\t12B\tleft by an interrupted write$/m);
    assert.match(dry.stdout, /^blob\tblobs-v1\/[0-9a-f]{2}\/[0-9a-f]{2}\/[0-9a-f]{64}\t39\.1KiB\tno entry refers to it$/m);
    assert.equal(dry.stdout.trim().split("\n").length, 4, dry.stdout);
    assert.match(dry.stderr, /Would remove 3 files \(39\.1KiB\)/);
    assert.ok(existsSync(join(root, "blobs-v0")), "dry run removes nothing");
    const result = await runCli(["cache", "prune", "--cache-dir", root]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /Removed bucket of an unknown version: blobs-v0/);
    assert.match(result.stderr, /Removed 3 files/);
    assert.equal(result.stdout, "", "only a dry run lists");
    assert.equal(existsSync(join(root, "blobs-v0")), false);
    assert.deepEqual(readdirSync(join(root, "tmp")), []);
    const again = await runCli(["cache", "prune", "--cache-dir", root]);
    assert.match(again.stderr, /No unused entries found/);
    const after = await openStore({ cacheDir: root });
    assert.ok(await after.get("a", "1"));
    await after.close();
  });

  test("--ci removes downloaded entries and keeps computed ones", async () => {
    const root = join(dir.path, "ci");
    await seed(root, [
      { name: "wheel", key: "d", bytes: 30_000, origin: "downloaded" },
      { name: "build", key: "c", bytes: 30_000, origin: "computed" },
    ]);
    const result = await runCli(["cache", "prune", "--ci", "--json", "--cache-dir", root]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /Removed 1 entry, 1 file/);
    const json = JSON.parse(result.stdout) as { removed: { entries: number; files: number; bytes: number } };
    assert.deepEqual([json.removed.entries, json.removed.files, json.removed.bytes], [1, 1, 30_000]);
    const store = await openStore({ cacheDir: root });
    assert.equal(await store.get("wheel", "d"), undefined);
    assert.ok(await store.get("build", "c"));
    await store.close();
  });

  test("--max-size keeps the most recently used entries that fit", async () => {
    const root = join(dir.path, "size");
    const store = await openStore({ cacheDir: root });
    for (const key of ["old", "mid", "new"]) {
      await store.put("t", key, randomBytes(1000));
      await new Promise((resolve) => setTimeout(resolve, 15));
    }
    await store.close();
    const result = await runCli(["cache", "prune", "--max-size", "2000", "--cache-dir", root]);
    assert.equal(result.code, 0, result.stderr);
    const after = await openStore({ cacheDir: root });
    assert.equal(await after.get("t", "old"), undefined);
    assert.ok(await after.get("t", "mid"));
    assert.ok(await after.get("t", "new"));
    await after.close();
  });

  test("--max-age drops entries not used within the duration", async () => {
    const root = join(dir.path, "age");
    await seed(root, [{ name: "t", key: "k", bytes: 10 }]);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const keep = await runCli(["cache", "prune", "--max-age", "1h", "--cache-dir", root]);
    assert.match(keep.stderr, /No unused entries found/);
    const drop = await runCli(["cache", "prune", "--max-age", "1s", "--cache-dir", root]);
    assert.match(drop.stderr, /Removed 1 entry/);
  });

  test("bad values are one clear line and exit 2", async () => {
    const result = await runCli(["cache", "prune", "--max-age", "fortnight", "--cache-dir", dir.path]);
    assert.equal(result.code, 2);
    assert.equal(result.stderr.trim().split("\n").length, 1);
    assert.match(result.stderr, /--max-age "fortnight" is not a duration/);
  });
});

describe("cachet cache size, ls, verify", () => {
  const dir = tempDir();
  after(dir.cleanup);
  const root = join(dir.path, "c");

  test("size prints bytes, or human units with -H", async () => {
    await seed(root, [{ name: "t", key: "1", bytes: 300_000 }]);
    const plain = await runCli(["cache", "size", "--cache-dir", root]);
    assert.equal(plain.code, 0);
    assert.ok(Number(plain.stdout.trim()) > 300_000);
    const human = await runCli(["cache", "size", "-H", "--cache-dir", root]);
    assert.match(human.stdout, /^\d+\.\dKiB\n$/);
    const json = JSON.parse((await runCli(["cache", "size", "--json", "--cache-dir", root])).stdout) as { bytes: number; files: number };
    assert.equal(json.bytes, Number(plain.stdout.trim()));
    assert.ok(json.files >= 3);
  });

  test("ls lists entries; --json is machine-readable", async () => {
    const store = await openStore({ cacheDir: root });
    await store.put("other", "2", "xy", { origin: "downloaded" });
    await store.close();
    const text = await runCli(["cache", "ls", "--cache-dir", root]);
    assert.match(text.stdout, /^NAME\tKEY\tSIZE\tORIGIN\tAGE\tLAST USE\n/);
    assert.match(text.stdout, /other\t2\t2B\tdownloaded\t/);
    const json = await runCli(["cache", "ls", "t", "--json", "--cache-dir", root]);
    const entries = JSON.parse(json.stdout) as Array<{ name: string; key: string; size: number; origin: string }>;
    assert.deepEqual(entries.map((e) => [e.name, e.key, e.size, e.origin]), [["t", "1", 300_000, "computed"]]);
  });

  test("reading commands on a missing root say so and create nothing", async () => {
    const missing = join(dir.path, "missing");
    const ls = await runCli(["cache", "ls", "--cache-dir", missing]);
    assert.equal(ls.code, 0);
    assert.match(ls.stderr, /No cache found at: /);
    assert.equal((await runCli(["cache", "ls", "--json", "--cache-dir", missing])).stdout, "[]\n");
    assert.equal((await runCli(["cache", "verify", "--cache-dir", missing])).code, 0);
    assert.equal((await runCli(["cache", "size", "--cache-dir", missing])).stdout, "0\n");
    assert.equal(existsSync(missing), false);
  });

  test("verify reports intact entries and exits 0", async () => {
    const result = await runCli(["cache", "verify", "--cache-dir", root]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /Checked 2 entries .*all intact/);
  });
});

describe("cachet flags", () => {
  test("unknown flags and commands give one line and exit 2", async () => {
    for (const args of [["cache", "clean", "--frobnicate"], ["cache", "wipe"], ["--bogus"]]) {
      const result = await runCli(args);
      assert.equal(result.code, 2, args.join(" "));
      assert.match(result.stderr, /^error: /);
      assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
    }
  });

  test("no command prints the help on stderr and exits 2", async () => {
    const result = await runCli([]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /Usage: cachet/);
  });

  test("a broken package.json on the way to the root is one clear line", async () => {
    const dir = tempDir();
    writeFileSync(join(dir.path, "package.json"), "{ broken");
    const result = await runCli(["cache", "dir"], {}, { cwd: dir.path });
    dir.cleanup();
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^error: cannot read .*package\.json \(looked for "cachet\.cacheDir"\): invalid JSON/);
    assert.equal(result.stderr.trim().split("\n").length, 1);
  });

  test("--help and --version", async () => {
    const help = await runCli(["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /cache/);
    const version = await runCli(["--version"]);
    assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
  });
});
