// The CLI as a new user meets it: `cache ls` on a terminal and piped, a task's files under its entry, prune's dry
// run listing what would go, no escape codes for TERM=dumb, "1 file" in progress, help for a bare command, a cache
// root that is a file, and `clean NAME` for a name with no entries. Runs the built binary, on a pseudo-terminal
// where the terminal matters.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { dir as dirRef, file as fileRef, openStore, task } from "../src/index.js";
import { CLI, runCli, runCliInTerminal, tempDir, terminalAvailable } from "./helpers.js";

const noTerminal = terminalAvailable() ? false : "util-linux `script` is not installed (needed for a pseudo-terminal)";
const ESC = "\u001b";

/** A cache with a task result holding a directory and a file, a plain task result and a raw entry with a long key. */
async function seedCache(root: string, work: string): Promise<{ buildKey: string; outBytes: number }> {
  mkdirSync(join(work, "out"), { recursive: true });
  const store = await openStore({ cacheDir: root });
  const outBytes = 3000;
  const build = task({ name: "build", store }, async (flavour: string) => {
    writeFileSync(join(work, "out", "bundle.js"), "x".repeat(outBytes));
    writeFileSync(join(work, "build.log"), `built ${flavour}`);
    return { out: dirRef(join(work, "out")), log: fileRef(join(work, "build.log")) };
  });
  await build("release");
  const translate = task({ name: "translate", store }, async (text: string) => `${text}!`);
  await translate("hello");
  await store.put("downloads", "https://example.com/releases/v1.2.3/tool-linux-x64.tar.gz", "0123456789", { origin: "downloaded" });
  const keys: string[] = [];
  for await (const entry of store.list("build")) keys.push(entry.key);
  await store.close();
  const buildKey = keys.find((key) => /^[0-9a-f]{64}$/.test(key));
  assert.ok(buildKey, keys.join(", "));
  return { buildKey, outBytes };
}

describe("cachet cache ls", () => {
  const dir = tempDir();
  after(dir.cleanup);
  const root = join(dir.path, "cache");
  let seeded: { buildKey: string; outBytes: number };
  before(async () => {
    seeded = await seedCache(root, join(dir.path, "work"));
  });

  test("piped: tab-separated rows with whole keys; a task's files on lines under its entry, not as <key>.0 rows", async () => {
    const result = await runCli(["cache", "ls", "--cache-dir", root]);
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.replace(/\n$/, "").split("\n");
    assert.equal(lines[0], "NAME\tKEY\tSIZE\tORIGIN\tAGE\tLAST USE");
    for (const line of lines) assert.equal(line.split("\t").length, 6, line);
    assert.ok(!lines.some((line) => line.includes(`${seeded.buildKey}.`)), result.stdout);
    const at = lines.findIndex((line) => line.startsWith(`build\t${seeded.buildKey}\t`));
    assert.ok(at > 0, result.stdout);
    assert.deepEqual(lines.slice(at + 1, at + 3).map((line) => line.split("\t").slice(0, 3)), [
      ["", ".0 dir", "2.9KiB"],
      ["", ".1 file", "13B"],
    ]);
    // The task entry's size counts its files.
    const total = Number.parseFloat(lines[at]!.split("\t")[2]!);
    assert.ok(total >= 2.9 && total < 3.5, lines[at]);
    assert.match(result.stdout, /^downloads\thttps:\/\/example\.com\/releases\/v1\.2\.3\/tool-linux-x64\.tar\.gz\t10B\tdownloaded\t/m);
    assert.equal(lines.length, 6, result.stdout); // header, downloads, translate, build and its two files
  });

  test("--json nests a task's files under its entry", async () => {
    const result = await runCli(["cache", "ls", "build", "--json", "--cache-dir", root]);
    const entries = JSON.parse(result.stdout) as Array<{ key: string; format: string; content?: Array<{ key: string; storage: string; size: number }> }>;
    assert.equal(entries.length, 1, result.stdout);
    assert.equal(entries[0]!.format, "cachet-task-result/1");
    assert.deepEqual(entries[0]!.content?.map((part) => [part.key, part.storage, part.size]), [
      [`${seeded.buildKey}.0`, "tree", seeded.outBytes],
      [`${seeded.buildKey}.1`, "blob", 13],
    ]);
  });

  test("on a terminal: columns line up, long keys are shortened, and TERM=dumb gets no escape codes", { skip: noTerminal }, async () => {
    const result = await runCliInTerminal(["cache", "ls", "--cache-dir", root], { TERM: "dumb" });
    assert.equal(result.code, 0, result.output);
    assert.ok(!result.output.includes(ESC), JSON.stringify(result.output));
    const lines = result.output.trimEnd().split("\n");
    const header = lines[0]!;
    assert.match(header, /^NAME +KEY +SIZE {2}ORIGIN +AGE +LAST USE$/);
    const keyAt = header.indexOf("KEY");
    const sizeEnd = header.indexOf("SIZE") + "SIZE".length;
    const originAt = header.indexOf("ORIGIN");
    const rows = lines.slice(1).filter((line) => !line.startsWith(" "));
    assert.equal(rows.length, 3, result.output);
    for (const row of rows) {
      assert.equal(row.slice(keyAt - 2, keyAt), "  ", row);
      assert.notEqual(row[keyAt], " ", row);
      assert.match(row.slice(0, sizeEnd), /\d+(\.\d)?(B|KiB)$/, row);
      assert.match(row.slice(originAt), /^(computed|downloaded) /, row);
    }
    const build = rows.find((row) => row.startsWith("build "))!;
    assert.equal(build.slice(keyAt).split(" ")[0], `${seeded.buildKey.slice(0, 12)}…`);
    const url = "https://example.com/releases/v1.2.3/tool-linux-x64.tar.gz";
    assert.ok(rows.some((row) => row.slice(keyAt).startsWith(`${url.slice(0, 39)}… `)), result.output);
    const files = lines.slice(lines.indexOf(build) + 1, lines.indexOf(build) + 3);
    assert.match(files[0]!, new RegExp(`^ {${keyAt + 2}}\\.0 dir +2\\.9KiB$`));
    assert.match(files[1]!, new RegExp(`^ {${keyAt + 2}}\\.1 file +13B$`));
  });

  test("content entries whose task entry is gone are listed as entries", async () => {
    const orphans = join(dir.path, "orphans");
    const { buildKey } = await seedCache(orphans, join(dir.path, "work-orphans"));
    const store = await openStore({ cacheDir: orphans });
    assert.equal(await store.delete("build", buildKey), true);
    await store.close();
    const result = await runCli(["cache", "ls", "build", "--cache-dir", orphans]);
    const keys = result.stdout.trimEnd().split("\n").slice(1).map((line) => line.split("\t")[1]);
    assert.deepEqual(keys.sort(), [`${buildKey}.0`, `${buildKey}.1`]);
  });
});

describe("progress and escape codes on a terminal", { skip: noTerminal }, () => {
  const dir = tempDir();
  after(dir.cleanup);
  const root = join(dir.path, "cache");
  before(async () => {
    await seedCache(root, join(dir.path, "work"));
  });

  test("a terminal that takes escape codes gets a progress line that counts 1 file, not 1 files", async () => {
    const result = await runCliInTerminal(["cache", "size", "--cache-dir", root], { TERM: "xterm" });
    assert.equal(result.code, 0, result.output);
    assert.ok(result.output.includes(`${ESC}[`), "progress is drawn on this terminal");
    assert.match(result.output, /Measuring 1 file, \d/);
    assert.doesNotMatch(result.output, /\b1 files\b/);
    assert.match(result.output, /Measuring [2-9]\d* files, /);
  });

  test("TERM=dumb, CI and CACHET_NO_PROGRESS get no escape codes from any command", async () => {
    const commands = [
      ["cache", "size"],
      ["cache", "ls"],
      ["cache", "verify"],
      ["cache", "prune", "--dry-run"],
      ["cache", "clean", "nobody"],
    ];
    for (const env of [{ TERM: "dumb" }, { TERM: "xterm", CI: "true" }, { TERM: "xterm", CACHET_NO_PROGRESS: "1" }]) {
      for (const command of commands) {
        const result = await runCliInTerminal([...command, "--cache-dir", root], env);
        assert.equal(result.code, 0, `${command.join(" ")}: ${result.output}`);
        assert.ok(!result.output.includes(ESC), `${JSON.stringify(env)} ${command.join(" ")}: ${JSON.stringify(result.output)}`);
      }
    }
  });
});

describe("cachet cache prune --dry-run", () => {
  const dir = tempDir();
  after(dir.cleanup);

  test("lists what would go, with --json too, and removes nothing", async () => {
    const root = join(dir.path, "cache");
    const store = await openStore({ cacheDir: root });
    await store.put("wheel", "numpy-2.0", Buffer.alloc(30_000, 1), { origin: "downloaded" });
    await store.put("build", "out", Buffer.alloc(30_000, 2), { origin: "computed" });
    await store.close();

    const text = await runCli(["cache", "prune", "--ci", "--dry-run", "--cache-dir", root]);
    assert.equal(text.code, 0, text.stderr);
    const rows = text.stdout.trimEnd().split("\n").map((line) => line.split("\t"));
    assert.deepEqual(rows[0], ["WHAT", "ITEM", "SIZE", "WHY"]);
    assert.deepEqual(rows.slice(1).map((row) => [row[0], row[3]]), [
      ["entry", "downloaded (--ci)"],
      ["blob", "no entry refers to it"],
    ]);
    assert.deepEqual(rows[1]!.slice(1, 3), ["wheel/numpy-2.0", "29.3KiB"]);
    assert.match(rows[2]![1]!, /^blobs-v1\/[0-9a-f]{2}\/[0-9a-f]{2}\/[0-9a-f]{64}$/);
    assert.match(text.stderr, /Would remove 1 entry, 1 file \(29\.3KiB\)/);

    const json = await runCli(["cache", "prune", "--ci", "--dry-run", "--json", "--cache-dir", root]);
    const parsed = JSON.parse(json.stdout) as { dryRun: boolean; items: Array<Record<string, unknown>> };
    assert.equal(parsed.dryRun, true);
    assert.deepEqual(parsed.items[0], { kind: "entry", name: "wheel", key: "numpy-2.0", size: 30_000, origin: "downloaded", reason: "ci" });
    assert.equal(parsed.items[1]!.kind, "blob");
    assert.equal(parsed.items[1]!.bytes, 30_000);
    assert.equal(parsed.items.length, 2);

    const after = await openStore({ cacheDir: root });
    assert.ok(await after.get("wheel", "numpy-2.0"), "a dry run removes nothing");
    await after.close();
  });
});

describe("help", () => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");

  test("bare `cachet` and `cachet cache` print their help on stderr and exit 2, as the README says", async () => {
    assert.ok(readme.includes("`cachet` and `cachet cache` alone print their help on stderr and exit with code 2"), "the README says so");
    const bare = await runCli([]);
    assert.equal(bare.code, 2);
    assert.equal(bare.stdout, "");
    assert.match(bare.stderr, /^Usage: cachet \[options\] \[command\]/);
    for (const command of ["dir", "clean", "prune", "size", "ls", "verify", "explain"]) {
      assert.match(bare.stderr, new RegExp(`^ {2}cache ${command} `, "m"), command);
    }
    assert.match(bare.stderr, /^Settings \(/m);
    const cache = await runCli(["cache"]);
    assert.equal(cache.code, 2);
    assert.equal(cache.stdout, "");
    assert.match(cache.stderr, /^Usage: cachet cache \[options\] \[command\]/);
    assert.match(cache.stderr, /^ {2}ls \[options\] \[name\] /m);
  });

  test("a reader that closes the pipe early (`cachet --help | head -1`) is no error: exit 0, nothing on stderr", () => {
    const piped = spawnSync("bash", ["-c", `set -o pipefail; "${process.execPath}" "${CLI}" --help | head -c 1 >/dev/null`], { encoding: "utf8", timeout: 30_000 });
    assert.equal(piped.stderr, "");
    assert.equal(piped.status, 0);
  });

  test("--help prints the same help on stdout and exits 0", async () => {
    const help = await runCli(["--help"]);
    assert.equal(help.code, 0);
    assert.equal(help.stdout, (await runCli([])).stderr);
  });
});

describe("a cache root that is a file", () => {
  const dir = tempDir();
  after(dir.cleanup);

  test("is one line saying so, exit 2, for every command; nothing is created", async () => {
    const file = join(dir.path, "not-a-dir");
    writeFileSync(file, "data");
    const commands = [["dir"], ["ls"], ["size"], ["verify"], ["clean"], ["prune"], ["explain", "t"]];
    for (const command of commands) {
      const result = await runCli(["cache", ...command, "--cache-dir", file]);
      assert.equal(result.code, 2, command.join(" "));
      assert.equal(result.stdout, "", command.join(" "));
      assert.equal(result.stderr, `error: the cache root ${file} (from --cache-dir) is a file, not a directory\n`, command.join(" "));
    }
    const below = await runCli(["cache", "ls"], { CACHET_CACHE_DIR: join(file, "cache") });
    assert.equal(below.stderr, `error: the cache root ${join(file, "cache")} (from CACHET_CACHE_DIR) cannot be made: ${file} is a file, not a directory\n`);
    assert.equal(readFileSync(file, "utf8"), "data");
  });
});

describe("cachet cache clean NAME", () => {
  const dir = tempDir();
  after(dir.cleanup);

  test("a name with no entries says so; the names that have entries are removed", async () => {
    const root = join(dir.path, "cache");
    const store = await openStore({ cacheDir: root });
    await store.put("keep", "1", "kept");
    await store.put("drop", "1", "dropped");
    await store.close();

    const none = await runCli(["cache", "clean", "nobody", "--cache-dir", root]);
    assert.equal(none.code, 0, none.stderr);
    assert.equal(none.stderr, `Clearing entries of nobody in cache at: ${root}\nNo entries found for: nobody\n`);

    const some = await runCli(["cache", "clean", "drop", "nobody", "--json", "--cache-dir", root]);
    assert.equal(some.code, 0, some.stderr);
    assert.match(some.stderr, /^No entries found for: nobody$/m);
    assert.match(some.stderr, /^Removed 1 entry \(7B\)$/m);
    assert.deepEqual((JSON.parse(some.stdout) as { entriesByName: unknown }).entriesByName, { drop: 1, nobody: 0 });
    const after = await openStore({ cacheDir: root });
    assert.ok(await after.get("keep", "1"));
    assert.equal(await after.get("drop", "1"), undefined);
    await after.close();
    assert.ok(existsSync(root));
  });
});
