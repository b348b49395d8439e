// The settings module (src/config/): every CACHET_* variable and package.json "cachet" field is read and checked
// there, tasks and the CLI read the same values the same way, a value that is not understood is one line naming
// the setting and the accepted values, and the README's table and `cachet --help` list the same settings.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  BOOLEAN_ACCEPTED,
  PackageJsonError,
  SETTING_DOCS,
  SETTING_KEYS,
  SettingError,
  checkSettings,
  readSettings,
  type SettingDoc,
} from "../src/config/index.js";
import { openStore, task, type StoreWarning, type TaskEvent } from "../src/index.js";
import { runCli, tempDir } from "./helpers.js";

function settingError(name: string, value: string, accepted: RegExp): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof SettingError, String(error));
    assert.equal(error.code, "CACHET_BAD_SETTING");
    assert.equal(error.message.split("\n").length, 1);
    assert.ok(error.message.startsWith(`${name}=${JSON.stringify(value)} is not valid: expected `), error.message);
    assert.match(error.message, accepted);
    return true;
  };
}

describe("readSettings", () => {
  test("with nothing set: the defaults", () => {
    const settings = readSettings({ env: { HOME: "/home/someone" }, cwd: "/" });
    assert.deepEqual(
      {
        root: settings.cacheRoot.path,
        noCache: settings.noCache,
        lockTimeout: settings.lockTimeoutSeconds,
        linkMode: settings.linkMode,
        refresh: settings.refresh,
        noProgress: settings.noProgress,
        ci: settings.ci,
        dumb: settings.dumbTerminal,
        debug: settings.debug,
        imageId: settings.imageId,
      },
      {
        root: "/home/someone/.cache/cachet",
        noCache: false,
        lockTimeout: 300,
        linkMode: undefined,
        refresh: { all: false, names: new Set() },
        noProgress: false,
        ci: false,
        dumb: false,
        debug: false,
        imageId: undefined,
      },
    );
  });

  test("booleans take one set of words, in any case; empty is unset; anything else names the variable and the words", () => {
    for (const name of ["CACHET_NO_CACHE", "CACHET_NO_PROGRESS", "CACHET_DEBUG"] as const) {
      const read = (raw: string) => {
        const settings = readSettings({ env: { [name]: raw } });
        return name === "CACHET_NO_CACHE" ? settings.noCache : name === "CACHET_NO_PROGRESS" ? settings.noProgress : settings.debug;
      };
      for (const word of ["1", "true", "TRUE", "yes", "Yes", "on", " on "]) assert.equal(read(word), true, `${name}=${word}`);
      for (const word of ["0", "false", "False", "no", "NO", "off", ""]) assert.equal(read(word), false, `${name}=${word}`);
      for (const word of ["maybe", "2", "enabled", "y"]) {
        assert.throws(() => read(word), settingError(name, word, /1, true, yes or on; 0, false, no or off \(any case\)$/));
      }
    }
    assert.equal(BOOLEAN_ACCEPTED, "1, true, yes or on; 0, false, no or off (any case)");
  });

  test("CACHET_LOCK_TIMEOUT is seconds ≥ 0; CACHET_LINK_MODE one of three modes, any case", () => {
    assert.equal(readSettings({ env: { CACHET_LOCK_TIMEOUT: "2.5" } }).lockTimeoutSeconds, 2.5);
    assert.equal(readSettings({ env: { CACHET_LOCK_TIMEOUT: "0" } }).lockTimeoutSeconds, 0);
    for (const raw of ["-1", "soon", "Infinity", "1e3", "5s"]) {
      assert.throws(() => readSettings({ env: { CACHET_LOCK_TIMEOUT: raw } }).lockTimeoutSeconds, settingError("CACHET_LOCK_TIMEOUT", raw, /a number of seconds ≥ 0$/));
    }
    assert.equal(readSettings({ env: { CACHET_LINK_MODE: "COPY" } }).linkMode, "copy");
    assert.equal(readSettings({ env: { CACHET_LINK_MODE: "hardlink" } }).linkMode, "hardlink");
    assert.throws(() => readSettings({ env: { CACHET_LINK_MODE: "teleport" } }).linkMode, settingError("CACHET_LINK_MODE", "teleport", /clone, hardlink or copy$/));
  });

  test("CACHET_REFRESH: on words or * for every task, off words for none, else task names", () => {
    for (const raw of ["1", "true", "YES", "on", "*"]) assert.deepEqual(readSettings({ env: { CACHET_REFRESH: raw } }).refresh, { all: true }, raw);
    for (const raw of ["0", "false", "no", "OFF", ""]) assert.deepEqual(readSettings({ env: { CACHET_REFRESH: raw } }).refresh, { all: false, names: new Set() }, raw);
    assert.deepEqual(readSettings({ env: { CACHET_REFRESH: "embed, fetchPage,," } }).refresh, { all: false, names: new Set(["embed", "fetchPage"]) });
  });

  test("CI is not ours: any value but an off word counts (services set their own names); TERM=dumb", () => {
    for (const raw of ["true", "1", "woodpecker"]) assert.equal(readSettings({ env: { CI: raw } }).ci, true, raw);
    for (const raw of ["", "0", "false", "no"]) assert.equal(readSettings({ env: { CI: raw } }).ci, false, raw);
    assert.equal(readSettings({ env: { TERM: "dumb" } }).dumbTerminal, true);
    assert.equal(readSettings({ env: { TERM: "xterm-256color" } }).dumbTerminal, false);
  });

  test("each setting is read when asked for, so one bad value stops only what needs it; checkSettings asks for all", () => {
    const settings = readSettings({ env: { CACHET_NO_PROGRESS: "maybe", CACHET_LOCK_TIMEOUT: "7" } });
    assert.equal(settings.lockTimeoutSeconds, 7);
    assert.throws(() => checkSettings(settings), settingError("CACHET_NO_PROGRESS", "maybe", /any case/));
  });
});

describe("the cache root: option > CACHET_CACHE_DIR > package.json > XDG > home", () => {
  const dir = tempDir();
  after(dir.cleanup);
  const project = join(dir.path, "project");
  const nested = join(project, "src", "deep");
  mkdirSync(nested, { recursive: true });
  const writePackage = (manifest: unknown): void => writeFileSync(join(project, "package.json"), JSON.stringify(manifest));
  const env = { XDG_CACHE_HOME: "/xdg", HOME: "/home/someone" };

  test("each rule in turn, and the setting that chose the root", () => {
    writePackage({ name: "p", cachet: { cacheDir: "../shared-cache" } });
    const root = (flags: { cacheDir?: string }, extra: NodeJS.ProcessEnv = {}) => readSettings({ env: { ...env, ...extra }, cwd: nested, flags }).cacheRoot;
    assert.deepEqual(root({ cacheDir: "rel" }, { CACHET_CACHE_DIR: "/env" }), { path: join(nested, "rel"), source: "option", setting: "cacheDir" });
    assert.deepEqual(root({}, { CACHET_CACHE_DIR: "/env" }), { path: "/env", source: "env", setting: "CACHET_CACHE_DIR" });
    // package.json's cacheDir is relative to that package.json, not to the current directory.
    assert.deepEqual(root({}), { path: join(dir.path, "shared-cache"), source: "package.json", setting: `${join(project, "package.json")} "cachet.cacheDir"` });
    writePackage({ name: "p" });
    assert.deepEqual(root({}), { path: "/xdg/cachet", source: "xdg", setting: "XDG_CACHE_HOME" });
    assert.equal(root({}, { XDG_CACHE_HOME: "relative/xdg" }).path, "/home/someone/.cache/cachet", "a relative XDG_CACHE_HOME is ignored");
    assert.equal(root({ cacheDir: "" }, { CACHET_CACHE_DIR: "" }).source, "xdg", "empty counts as unset");
  });

  test("package.json's \"cachet\" field is checked: an unknown field, a wrong type, broken JSON", () => {
    const cwd = project;
    writePackage({ cachet: { cachedir: "x" } });
    assert.throws(() => readSettings({ env, cwd }).cacheRoot, (error: unknown) => {
      assert.ok(error instanceof SettingError);
      assert.equal(error.message, `${join(project, "package.json")} "cachet.cachedir"="x" is not a cachet setting: expected one of the fields cacheDir, cacheKeys, alwaysRun, remote`);
      return true;
    });
    writePackage({ cachet: { cacheDir: 5 } });
    assert.throws(() => readSettings({ env, cwd }).cacheRoot, /"cachet\.cacheDir"=5 is not valid: expected a non-empty path string/);
    writePackage({ cachet: "cache" });
    assert.throws(() => readSettings({ env, cwd }).cacheRoot, /"cachet"="cache" is not valid: expected an object of settings \(cacheDir, cacheKeys, alwaysRun, remote\)/);
    writeFileSync(join(project, "package.json"), "{ broken");
    assert.throws(() => readSettings({ env, cwd }).cacheRoot, PackageJsonError);
    writePackage({ name: "p" });
  });
});

describe("tasks and the CLI read CACHET_NO_CACHE the same way", () => {
  const dir = tempDir();
  after(dir.cleanup);

  /** Two calls of a fresh task with CACHET_NO_CACHE=raw: their event kinds and the warnings raised. */
  async function taskUnder(raw: string): Promise<{ kinds: string[]; warnings: StoreWarning[] }> {
    const store = await openStore({ cacheDir: join(dir.path, "tasks") });
    const kinds: string[] = [];
    const warnings: StoreWarning[] = [];
    const saved = process.env.CACHET_NO_CACHE;
    process.env.CACHET_NO_CACHE = raw;
    try {
      const double = task(
        { name: `double-${raw}`, store, onEvent: (event: TaskEvent) => kinds.push(event.kind), onWarning: (warning) => warnings.push(warning) },
        async (x: number) => x * 2,
      );
      assert.equal(await double(21), 42);
      assert.equal(await double(21), 42);
    } finally {
      if (saved === undefined) delete process.env.CACHET_NO_CACHE;
      else process.env.CACHET_NO_CACHE = saved;
      await store.close();
    }
    return { kinds, warnings };
  }

  test("no and off keep caching on; yes and on turn it off (tasks bypass, the CLI takes a temporary root)", async () => {
    const root = join(dir.path, "cli");
    for (const raw of ["no", "OFF", "0"]) {
      assert.deepEqual((await taskUnder(raw)).kinds, ["miss", "hit"], raw);
      const cli = await runCli(["cache", "dir", "--cache-dir", root], { CACHET_NO_CACHE: raw });
      assert.equal(cli.stdout, `${root}\n`, raw);
    }
    for (const raw of ["yes", "On", "1"]) {
      assert.deepEqual((await taskUnder(raw)).kinds, ["bypass", "bypass"], raw);
      const cli = await runCli(["cache", "dir", "--cache-dir", root], { CACHET_NO_CACHE: raw });
      assert.match(cli.stdout, /cachet-no-cache-/, raw);
    }
  });

  test("a value not understood: the CLI stops with one line (exit 2); a task runs uncached with one warning", async () => {
    const cli = await runCli(["cache", "ls", "--cache-dir", join(dir.path, "cli")], { CACHET_NO_CACHE: "maybe" });
    assert.equal(cli.code, 2);
    assert.equal(cli.stderr, `error: CACHET_NO_CACHE="maybe" is not valid: expected ${BOOLEAN_ACCEPTED}\n`);
    const { kinds, warnings } = await taskUnder("maybe");
    assert.deepEqual(kinds, ["bypass", "bypass"]);
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.equal(warnings[0]!.code, "CACHET_CACHE_UNAVAILABLE");
    assert.match(warnings[0]!.message, /CACHET_NO_CACHE="maybe" is not valid: expected 1, true, yes or on; 0, false, no or off/);
    assert.match(warnings[0]!.message, /give the setting named above one of the values it accepts/);
  });

  test("every other setting the CLI reads is checked at start, whatever the command", async () => {
    const cases: Array<[string, string, RegExp]> = [
      ["CACHET_LOCK_TIMEOUT", "soon", /a number of seconds ≥ 0/],
      ["CACHET_LINK_MODE", "teleport", /clone, hardlink or copy/],
      ["CACHET_NO_PROGRESS", "sometimes", /any case/],
      ["CACHET_DEBUG", "verbose", /any case/],
    ];
    for (const [name, value, accepted] of cases) {
      const result = await runCli(["cache", "dir", "--cache-dir", join(dir.path, "cli")], { [name]: value });
      assert.equal(result.code, 2, name);
      assert.equal(result.stdout, "", name);
      assert.equal(result.stderr.split("\n").length, 2, result.stderr);
      assert.match(result.stderr, new RegExp(`^error: ${name}="${value}" is not valid: expected `));
      assert.match(result.stderr, accepted);
    }
  });
});

describe("the README's settings table, `cachet --help` and the settings module list the same settings", () => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");

  /** The README's settings table as rendered from the module's table, row for row. */
  function expectedTable(): string {
    const cell = (text: string) => text.replace(/\|/g, "\\|").replace(/\*/g, "\\*");
    const code = (text: string | undefined) => (text ? `\`${text}\`` : "");
    const rows = SETTING_KEYS.map((key) => {
      const doc: SettingDoc = SETTING_DOCS[key];
      return `| ${cell(doc.does)} | ${code(doc.flag)} | ${code(doc.env)} | ${code(doc.packageJson)} | ${cell(doc.accepted)} | ${cell(doc.default)} |`;
    });
    return ["| setting | flag | environment | package.json `\"cachet\"` | accepts | default |", "| --- | --- | --- | --- | --- | --- |", ...rows].join("\n");
  }

  test("SETTING_KEYS names every setting (the docs table is keyed like Settings, so it has them all)", () => {
    assert.deepEqual([...SETTING_KEYS].sort(), Object.keys(SETTING_DOCS).sort());
    assert.equal(new Set(SETTING_KEYS).size, SETTING_KEYS.length);
  });

  test("the README's table is the module's table", () => {
    const section = readme.slice(readme.indexOf("\n## Settings\n"), readme.indexOf("\n## ", readme.indexOf("\n## Settings\n") + 1));
    const table = section.split("\n").filter((line) => line.startsWith("|")).join("\n");
    assert.equal(table, expectedTable(), `README.md's settings table should read:\n${expectedTable()}`);
  });

  test("--help lists every setting, with its flag and package.json field, in the same order", async () => {
    const help = await runCli(["--help"]);
    assert.equal(help.code, 0);
    const section = help.stdout.slice(help.stdout.indexOf("\nSettings ("));
    assert.ok(section.length > 1, help.stdout);
    const named = section.split("\n").filter((line) => /^ {2}\S/.test(line)).map((line) => line.trim());
    const expected = SETTING_KEYS.map((key) => {
      const doc = SETTING_DOCS[key];
      return [doc.env, doc.flag, doc.packageJson && `package.json "cachet.${doc.packageJson}"`].filter(Boolean).join(", ");
    });
    assert.deepEqual(named, expected);
    for (const key of SETTING_KEYS) assert.ok(section.includes(SETTING_DOCS[key].env), key);
  });

  test("every CACHET_ variable the sources read is in the table", () => {
    const documented = new Set(SETTING_KEYS.map((key) => SETTING_DOCS[key].env));
    const config = ["settings.ts", "cache-root.ts"].map((file) => readFileSync(new URL(`../src/config/${file}`, import.meta.url), "utf8")).join("\n");
    const read = [...config.matchAll(/env\.(CACHET_[A-Z_]+|CI|TERM)\b/g)].map((match) => match[1]!);
    assert.ok(read.length >= 8, read.join(", "));
    for (const name of read) assert.ok(documented.has(name), `${name} is read but not documented`);
  });
});
