// `cachet run` through the real binary: a command runs once per key and a hit replays its output (same bytes, same
// streams, same order), exits with its code and restores its --out paths; failures, signals and a broken cache
// never get cached or stop the command; four identical runs at once run the command once.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CLI, runCli, runCliInTerminal, tempDir, terminalAvailable } from "./helpers.js";
import { startNode } from "./workers/child.js";

const scratch = tempDir("cachet-cli-run-");
after(() => scratch.cleanup());

/** The build script every test runs: counts its runs, writes outputs, prints, and exits as told. */
const BUILD_SCRIPT = `
const fs = require("node:fs");
const path = require("node:path");
const [mode = "ok", ...rest] = process.argv.slice(2);
fs.appendFileSync(path.join(__dirname, "runs.log"), "run\\n");
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
(async () => {
  if (mode === "ok") {
    fs.rmSync("out", { recursive: true, force: true });
    fs.mkdirSync("out/sub", { recursive: true });
    fs.writeFileSync("out/a.txt", "alpha");
    fs.writeFileSync("out/sub/b.txt", "beta");
    fs.writeFileSync("report.txt", "report");
    process.stdout.write("built\\n");
  } else if (mode === "interleave") {
    for (let i = 0; i < 4; i++) {
      process.stdout.write("out" + i + "\\n");
      await sleep(40);
      process.stderr.write("err" + i + "\\n");
      await sleep(40);
    }
  } else if (mode === "fail") {
    process.stderr.write("failed\\n");
    process.exitCode = Number(rest[0] ?? 3);
  } else if (mode === "die") {
    process.kill(process.pid, "SIGTERM");
  } else if (mode === "slow") {
    await sleep(800);
    process.stdout.write("slow done\\n");
  } else if (mode === "wait-for-signal") {
    process.on("SIGINT", () => {
      fs.writeFileSync(path.join(__dirname, "got-sigint"), "yes");
      process.removeAllListeners("SIGINT");
      process.kill(process.pid, "SIGINT");
    });
    process.stdout.write("ready\\n");
    setInterval(() => {}, 1000);
  } else if (mode === "tty") {
    process.stdout.write("stdout-is-tty=" + process.stdout.isTTY + "\\n");
  } else if (mode === "env") {
    const value = process.env.FOO;
    process.stdout.write("FOO is " + (value === undefined ? "unset" : value === "" ? "empty" : value.length + " characters") + "\\n");
  }
})();
`;

let projects = 0;
/** A fresh package (`demo-pkg`) with the build script and its own cache root. */
function project(): { dir: string; cache: string; runs: () => number } {
  const dir = join(scratch.path, `project-${projects++}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "demo-pkg", version: "1.0.0" }));
  writeFileSync(join(dir, "build.cjs"), BUILD_SCRIPT);
  const cache = join(dir, ".cache");
  const runs = (): number => (existsSync(join(dir, "runs.log")) ? readFileSync(join(dir, "runs.log"), "utf8").split("\n").length - 1 : 0);
  return { dir, cache, runs };
}

function run(p: { dir: string; cache: string }, args: string[], env: NodeJS.ProcessEnv = {}) {
  return runCli(["--cache-dir", p.cache, "run", ...args], env, { cwd: p.dir });
}

const BUILD = ["--", process.execPath, "build.cjs"];

/** `cachet run` of the interleaving build with stdout and stderr both into the file `name`: what the file holds. */
function interleavedIntoOneFile(p: { dir: string; cache: string }, name: string): string {
  const file = join(p.dir, name);
  const fd = openSync(file, "a");
  try {
    const child = spawnSync(process.execPath, [CLI, "--cache-dir", p.cache, "run", ...BUILD, "interleave"], {
      cwd: p.dir,
      stdio: ["ignore", fd, fd],
      timeout: 30_000,
      env: cleanEnv(),
    });
    assert.equal(child.status, 0);
  } finally {
    closeSync(fd);
  }
  return readFileSync(file, "utf8");
}

describe("cachet run: hits and misses", () => {
  test("a miss runs the command and stores it; a hit replays its output and exit code without running it", async () => {
    const p = project();
    const first = await run(p, ["--out", "out", ...BUILD, "ok"]);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout, "built\n");
    assert.equal(first.stderr, "");
    assert.equal(p.runs(), 1);
    rmSync(join(p.dir, "out"), { recursive: true });
    const second = await run(p, ["--out", "out", ...BUILD, "ok"]);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stdout, "built\n");
    assert.equal(second.stderr, "");
    assert.equal(p.runs(), 1);
    assert.equal(readFileSync(join(p.dir, "out", "sub", "b.txt"), "utf8"), "beta");
    const listed = await runCli(["--cache-dir", p.cache, "cache", "ls", "demo-pkg:node"]);
    assert.match(listed.stdout, /demo-pkg:node/, "the default name is the package name and the command's first word");
  });

  test("a failing command is not cached: its exit code and output are passed on, and it runs again", async () => {
    const p = project();
    for (const attempt of [1, 2]) {
      const result = await run(p, [...BUILD, "fail", "7"]);
      assert.equal(result.code, 7);
      assert.equal(result.stderr, "failed\n");
      assert.equal(p.runs(), attempt);
    }
  });

  test("a command killed by a signal exits 128 + the signal and is not cached", async () => {
    const p = project();
    const result = await run(p, [...BUILD, "die"]);
    assert.equal(result.code, 128 + 15);
    const again = await run(p, [...BUILD, "die"]);
    assert.equal(again.code, 128 + 15);
    assert.equal(p.runs(), 2);
  });

  test("a command that cannot be started exits 127 with one line", async () => {
    const p = project();
    const result = await run(p, ["--", join(p.dir, "no-such-program")]);
    assert.equal(result.code, 127);
    assert.match(result.stderr, /cannot run .*no-such-program/);
  });

  test("a shared tier that cannot be reached is one warning: the run works on the local cache and hits it next time", async () => {
    const p = project();
    // Nothing listens on port 1.
    const unreachable = "postgres://nobody@127.0.0.1:1/none";
    const first = await run(p, ["--remote", unreachable, "--out", "out", ...BUILD, "ok"]);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout, "built\n");
    assert.match(first.stderr, /^warning: .*127\.0\.0\.1:1/);
    assert.equal(first.stderr.trim().split("\n").length, 1, first.stderr);
    const second = await run(p, ["--out", "out", ...BUILD, "ok"], { CACHET_REMOTE: unreachable });
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stdout, "built\n");
    assert.equal(p.runs(), 1, "the second run replays the local entry");
  });

  test("the command must come after --", async () => {
    const p = project();
    const result = await run(p, ["true"]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /after --/);
  });

  test("stdout and stderr are replayed to the same streams in their original interleaving", async () => {
    const p = project();
    const separate = await run(p, [...BUILD, "interleave"]);
    assert.equal(separate.stdout, "out0\nout1\nout2\nout3\n");
    assert.equal(separate.stderr, "err0\nerr1\nerr2\nerr3\n");
    // Both streams into one file: the file's order is the order cachet wrote in, miss and hit alike.
    const expected = "out0\nerr0\nout1\nerr1\nout2\nerr2\nout3\nerr3\n";
    for (const label of ["hit-1", "hit-2"]) {
      assert.equal(interleavedIntoOneFile(p, `${label}.txt`), expected);
    }
    assert.equal(p.runs(), 1);
    const replayed = await run(p, [...BUILD, "interleave"]);
    assert.equal(replayed.stdout, separate.stdout);
    assert.equal(replayed.stderr, separate.stderr);
  });

  test("the interleaving of a miss is kept too, as it happened", async () => {
    const p = project();
    assert.equal(interleavedIntoOneFile(p, "miss.txt"), "out0\nerr0\nout1\nerr1\nout2\nerr2\nout3\nerr3\n");
    const hit = await run(p, [...BUILD, "interleave"]);
    assert.equal(hit.stderr, "err0\nerr1\nerr2\nerr3\n");
    assert.equal(p.runs(), 1);
  });

  test("on a terminal the command still sees a terminal, miss and hit alike", { skip: !terminalAvailable() && "util-linux script is not installed" }, async () => {
    const p = project();
    const args = ["--cache-dir", p.cache, "run", ...BUILD, "tty"];
    const miss = await runCliInTerminal(args, {}, { cwd: p.dir });
    assert.equal(miss.code, 0, miss.output);
    assert.match(miss.output, /stdout-is-tty=true/);
    const hit = await runCliInTerminal(args, {}, { cwd: p.dir });
    assert.match(hit.output, /stdout-is-tty=true/);
    assert.equal(p.runs(), 1);
  });
});

describe("cachet run: outputs", () => {
  test("a hit restores over modified, added-to and deleted outputs, so they equal what the command made", async () => {
    const p = project();
    const outs = ["--out", "out", "--out", "report.txt"];
    assert.equal((await run(p, [...outs, ...BUILD, "ok"])).code, 0);
    writeFileSync(join(p.dir, "out", "a.txt"), "edited");
    writeFileSync(join(p.dir, "out", "sub", "stray.txt"), "stray");
    writeFileSync(join(p.dir, "report.txt"), "edited report");
    const afterEdit = await run(p, [...outs, ...BUILD, "ok"]);
    assert.equal(afterEdit.code, 0, afterEdit.stderr);
    assert.equal(readFileSync(join(p.dir, "out", "a.txt"), "utf8"), "alpha");
    assert.equal(existsSync(join(p.dir, "out", "sub", "stray.txt")), false);
    assert.equal(readFileSync(join(p.dir, "report.txt"), "utf8"), "report");
    rmSync(join(p.dir, "out"), { recursive: true });
    rmSync(join(p.dir, "report.txt"));
    assert.equal((await run(p, [...outs, ...BUILD, "ok"])).code, 0);
    assert.equal(readFileSync(join(p.dir, "out", "sub", "b.txt"), "utf8"), "beta");
    assert.equal(readFileSync(join(p.dir, "report.txt"), "utf8"), "report");
    assert.equal(p.runs(), 1);
  });

  test("outputs in place and unchanged are left alone (same inodes), after the miss and after a restore", async () => {
    const p = project();
    const outs = ["--out", "out", "--out", "report.txt"];
    assert.equal((await run(p, [...outs, ...BUILD, "ok"])).code, 0);
    const inodes = () => [statSync(join(p.dir, "out", "a.txt")).ino, statSync(join(p.dir, "out", "sub")).ino, statSync(join(p.dir, "report.txt")).ino];
    const made = inodes();
    assert.equal((await run(p, [...outs, ...BUILD, "ok"])).code, 0);
    assert.deepEqual(inodes(), made);
    writeFileSync(join(p.dir, "out", "a.txt"), "edited");
    assert.equal((await run(p, [...outs, ...BUILD, "ok"])).code, 0);
    const restored = inodes();
    assert.notEqual(restored[0], made[0]);
    assert.equal((await run(p, [...outs, ...BUILD, "ok"])).code, 0);
    assert.deepEqual(inodes(), restored);
    assert.equal(p.runs(), 1);
  });

  test("an --out path the command did not make is recorded as absent: a warning on the miss, and a hit removes it", async () => {
    const p = project();
    const args = ["--out", "never-made", ...BUILD, "ok"];
    const miss = await run(p, args);
    assert.equal(miss.code, 0);
    assert.match(miss.stderr, /--out never-made was not made by the command/);
    mkdirSync(join(p.dir, "never-made"));
    writeFileSync(join(p.dir, "never-made", "stale.txt"), "stale");
    const hit = await run(p, args);
    assert.equal(hit.code, 0);
    assert.equal(hit.stderr, "");
    assert.equal(existsSync(join(p.dir, "never-made")), false);
    assert.equal(p.runs(), 1);
  });

  test("an --out that is the working directory, holds it, or holds the cache root is refused before anything runs", async () => {
    const p = project();
    mkdirSync(join(p.dir, "sub"));
    writeFileSync(join(p.dir, "notes.txt"), "mine");
    for (const [out, cwd] of [[".", p.dir], ["./", p.dir], [p.dir, p.dir], ["..", join(p.dir, "sub")]] as const) {
      const result = await runCli(["--cache-dir", p.cache, "run", "--out", out, ...BUILD, "ok"], {}, { cwd });
      assert.equal(result.code, 2, `--out ${out}: ${result.stderr}`);
      assert.equal(result.stderr, `error: --out ${out} is the working directory or holds it: a hit would replace it whole; name the folders or files the command writes (--out dist)\n`);
    }
    const aroundCache = await run(p, ["--out", ".cache", ...BUILD, "ok"]);
    assert.equal(aroundCache.code, 2);
    assert.match(aroundCache.stderr, /^error: --out \.cache holds the cache root /);
    assert.equal(p.runs(), 0, "the command never ran");
    assert.equal(readFileSync(join(p.dir, "notes.txt"), "utf8"), "mine");
    const sibling = await runCli(["--cache-dir", p.cache, "run", "--out", "../out", ...BUILD.slice(0, 2), "../build.cjs", "ok"], {}, { cwd: join(p.dir, "sub") });
    assert.equal(sibling.code, 0, `a folder beside the working directory is fine: ${sibling.stderr}`);
  });

  test("a scoped package's default name replaces the slash: @scope+pkg:node", async () => {
    const p = project();
    writeFileSync(join(p.dir, "package.json"), JSON.stringify({ name: "@scope/pkg", version: "1.0.0" }));
    assert.equal((await run(p, [...BUILD, "ok"])).code, 0);
    const listed = await runCli(["--cache-dir", p.cache, "cache", "ls", "@scope+pkg:node"]);
    assert.match(listed.stdout, /@scope\+pkg:node/);
  });

  test("with CACHET_LINK_MODE=hardlink a restore shares the cache's read-only files; an edit forced into one is caught", async () => {
    const p = project();
    const env = { CACHET_LINK_MODE: "hardlink" };
    assert.equal((await run(p, ["--out", "out", ...BUILD, "ok"], env)).code, 0);
    rmSync(join(p.dir, "out"), { recursive: true });
    assert.equal((await run(p, ["--out", "out", ...BUILD, "ok"], env)).code, 0);
    const file = join(p.dir, "out", "a.txt");
    assert.ok(statSync(file).nlink >= 2);
    assert.equal(p.runs(), 1);
    // Root may write to a read-only file: the cached copy changes, the next hit sees it and runs the command.
    writeFileSync(file, "forced");
    const next = await run(p, ["--out", "out", ...BUILD, "ok"], env);
    assert.equal(next.code, 0);
    assert.equal(readFileSync(file, "utf8"), "alpha");
    assert.equal(p.runs(), 2);
  });
});

describe("cachet run: keys, refresh, dry run", () => {
  test("--env keys on the variable: unset, empty and a value are three keys; the value is not stored", async () => {
    const p = project();
    const args = ["--env", "FOO", ...BUILD, "env"];
    assert.equal((await run(p, args)).stdout, "FOO is unset\n");
    assert.equal((await run(p, args, { FOO: "" })).stdout, "FOO is empty\n");
    assert.equal((await run(p, args, { FOO: "s3cret-value" })).stdout, "FOO is 12 characters\n");
    assert.equal(p.runs(), 3);
    assert.equal((await run(p, args, { FOO: "" })).stdout, "FOO is empty\n");
    assert.equal((await run(p, args)).stdout, "FOO is unset\n");
    assert.equal((await run(p, args, { FOO: "other-value!" })).stdout, "FOO is 12 characters\n");
    assert.equal(p.runs(), 4);
    // Without --env the variable is not part of the key: the first entry of that key is replayed.
    assert.equal((await run(p, [...BUILD, "env"], { FOO: "one" })).stdout, "FOO is 3 characters\n");
    assert.equal((await run(p, [...BUILD, "env"], { FOO: "three" })).stdout, "FOO is 3 characters\n");
    assert.equal(p.runs(), 5);
    const cached = filesUnder(p.cache).map((file) => readFileSync(file));
    assert.ok(cached.length > 0);
    assert.equal(cached.some((bytes) => bytes.includes("s3cret-value")), false, "the variable's value is in the cache");
  });

  test("--dry-run says hit or miss and why, without running", async () => {
    const p = project();
    const first = await run(p, ["--dry-run", "--env", "FOO", ...BUILD, "ok"]);
    assert.equal(first.code, 0);
    assert.match(first.stdout, /^miss: demo-pkg:node would run: no entry of demo-pkg:node yet/);
    assert.equal(p.runs(), 0);
    assert.equal((await run(p, ["--env", "FOO", ...BUILD, "ok"])).code, 0);
    assert.match((await run(p, ["--dry-run", "--env", "FOO", ...BUILD, "ok"])).stdout, /^hit: demo-pkg:node/);
    const changed = await run(p, ["--dry-run", "--env", "FOO", ...BUILD, "ok"], { FOO: "1" });
    assert.match(changed.stdout, /^miss: demo-pkg:node would run/);
    assert.match(changed.stdout, /--env FOO changed: unset → set/);
    const otherCommand = await run(p, ["--dry-run", "--env", "FOO", ...BUILD, "slow"]);
    assert.match(otherCommand.stdout, /the command changed/);
    assert.match((await run(p, ["--dry-run", "--env", "FOO", ...BUILD, "ok"], { CACHET_REFRESH: "1" })).stdout, /^miss: .*--refresh/);
    assert.equal(p.runs(), 1);
  });

  test("cachet cache explain shows a run entry's key and what changed against the name's previous entry", async () => {
    const p = project();
    assert.equal((await run(p, ["--env", "FOO", ...BUILD, "env"])).code, 0);
    assert.equal((await run(p, ["--env", "FOO", ...BUILD, "env"], { FOO: "x" })).code, 0);
    const explained = await runCli(["--cache-dir", p.cache, "cache", "explain", "demo-pkg:node"], {}, { cwd: p.dir });
    assert.equal(explained.code, 0, explained.stderr);
    assert.match(explained.stdout, /\(cachet run\)/);
    assert.match(explained.stdout, /env FOO set/);
    assert.match(explained.stdout, /--env FOO changed: unset → set/);
  });

  test("--refresh reruns and replaces; --refresh-package reruns only that name; --offline is accepted", async () => {
    const p = project();
    const args = ["--name", "build", "--out", "out", ...BUILD, "ok"];
    assert.equal((await run(p, args)).code, 0);
    assert.equal(p.runs(), 1);
    assert.equal((await runCli(["--cache-dir", p.cache, "--refresh", "run", ...args], {}, { cwd: p.dir })).code, 0);
    assert.equal(p.runs(), 2);
    assert.equal((await runCli(["--cache-dir", p.cache, "--refresh-package", "other", "run", ...args], {}, { cwd: p.dir })).code, 0);
    assert.equal(p.runs(), 2);
    assert.equal((await runCli(["--cache-dir", p.cache, "--refresh-package", "build", "run", ...args], {}, { cwd: p.dir })).code, 0);
    assert.equal(p.runs(), 3);
    const offline = await runCli(["--cache-dir", p.cache, "--offline", "run", ...args], {}, { cwd: p.dir });
    assert.equal(offline.code, 0);
    assert.equal(offline.stdout, "built\n");
    assert.equal(p.runs(), 3);
  });

  test("--key keys the run on what it reads: an edit reruns, a touch or an unrelated file does not; explain names the file", async () => {
    const p = project();
    mkdirSync(join(p.dir, "src"));
    writeFileSync(join(p.dir, "src", "a.ts"), "export const a = 1;\n");
    writeFileSync(join(p.dir, "notes.md"), "unrelated");
    const args = ["--name", "build", "--key", "src/**/*.ts", ...BUILD, "ok"];
    assert.equal((await run(p, args)).code, 0);
    assert.equal((await run(p, args)).code, 0);
    assert.equal(p.runs(), 1, "the second run is a hit");

    const touched = new Date(Date.now() + 5_000);
    utimesSync(join(p.dir, "src", "a.ts"), touched, touched);
    writeFileSync(join(p.dir, "notes.md"), "still unrelated");
    assert.equal((await run(p, args)).code, 0);
    assert.equal(p.runs(), 1, "a touch without an edit, or a file no key names, keeps the key");

    writeFileSync(join(p.dir, "src", "a.ts"), "export const a = 2;\n");
    assert.equal((await run(p, args)).code, 0);
    assert.equal(p.runs(), 2, "an edit reruns");
    const explain = await runCli(["--cache-dir", p.cache, "cache", "explain", "build"], {}, { cwd: p.dir });
    assert.equal(explain.code, 0, explain.stderr);
    assert.match(explain.stdout, /src\/a\.ts changed/);

    writeFileSync(join(p.dir, "src", "b.ts"), "export const b = 1;\n");
    assert.equal((await run(p, args)).code, 0);
    assert.equal(p.runs(), 3, "a new matching file reruns");

    const bad = await run(p, ["--key", "env:", ...BUILD, "ok"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--key env:/);
    assert.equal(p.runs(), 3);
  });

  test("the package's cacheKeys count (relative to its package.json); alwaysRun reruns every time", async () => {
    const p = project();
    writeFileSync(join(p.dir, "package.json"), JSON.stringify({ name: "demo-pkg", cachet: { cacheKeys: ["config.json"] } }));
    writeFileSync(join(p.dir, "config.json"), "{}");
    mkdirSync(join(p.dir, "sub"));
    const fromSub = (args: string[]) => runCli(["--cache-dir", p.cache, "run", ...args], {}, { cwd: join(p.dir, "sub") });
    const args = ["--name", "build", "--", process.execPath, "../build.cjs", "env"];
    assert.equal((await fromSub(args)).code, 0);
    assert.equal((await fromSub(args)).code, 0);
    assert.equal(p.runs(), 1);
    writeFileSync(join(p.dir, "config.json"), '{"changed":true}');
    assert.equal((await fromSub(args)).code, 0);
    assert.equal(p.runs(), 2, "a change in a file the package's cacheKeys name reruns");

    writeFileSync(join(p.dir, "package.json"), JSON.stringify({ name: "demo-pkg", cachet: { cacheKeys: ["config.json"], alwaysRun: ["build"] } }));
    assert.equal((await fromSub(args)).code, 0);
    assert.equal((await fromSub(args)).code, 0);
    assert.equal(p.runs(), 4, "alwaysRun names it: it runs every time");
    const dry = await fromSub(["--dry-run", ...args]);
    assert.match(dry.stdout, /alwaysRun/);
  });
});

describe("cachet run: processes and failures", () => {
  test("four identical runs at once: the command runs once, the others wait and replay it", async () => {
    const p = project();
    const children = Array.from({ length: 4 }, () =>
      startNode([CLI, "--cache-dir", p.cache, "run", ...BUILD, "slow"], {}, { cwd: p.dir }),
    );
    try {
      const exits = await Promise.all(children.map((child) => child.waitForExit()));
      assert.deepEqual(
        exits.map((exit) => exit.code),
        [0, 0, 0, 0],
      );
      for (const child of children) assert.equal(child.stdout(), "slow done\n");
      assert.equal(p.runs(), 1);
    } finally {
      await Promise.all(children.map((child) => child.kill9()));
    }
  });

  test("Ctrl-C during a miss is passed to the command, nothing is stored, and its signal exit is passed on", async () => {
    const p = project();
    const child = startNode([CLI, "--cache-dir", p.cache, "run", ...BUILD, "wait-for-signal"], {}, { cwd: p.dir });
    try {
      await child.waitFor("ready");
      child.process.kill("SIGINT");
      const exit = await child.waitForExit();
      assert.equal(exit.code, 130);
      assert.equal(readFileSync(join(p.dir, "got-sigint"), "utf8"), "yes");
    } finally {
      await child.kill9();
    }
    const dry = await run(p, ["--dry-run", ...BUILD, "wait-for-signal"]);
    assert.match(dry.stdout, /^miss: .*no entry/);
  });

  test("a reader that goes away (| head -1) ends the copy, not cachet; the incomplete output is not stored", async () => {
    const p = project();
    const lines = [process.execPath, "-e", "for (let i = 0; i < 300000; i++) console.log('line ' + i)"];
    const child = startNode([CLI, "--cache-dir", p.cache, "run", "--name", "lines", "--", ...lines], {}, { cwd: p.dir });
    try {
      await child.waitFor("line 0");
      child.process.stdout.destroy();
      const exit = await child.waitForExit();
      assert.equal(exit.signal, null);
      assert.doesNotMatch(child.stderr(), /Unhandled|EPIPE/);
    } finally {
      await child.kill9();
    }
    const dry = await run(p, ["--dry-run", "--name", "lines", "--", ...lines]);
    assert.match(dry.stdout, /^miss: lines would run: no entry/);
    const full = await run(p, ["--name", "lines", "--", ...lines]);
    assert.equal(full.code, 0);
    const replayed = startNode([CLI, "--cache-dir", p.cache, "run", "--name", "lines", "--", ...lines], {}, { cwd: p.dir });
    try {
      await replayed.waitFor("line 0");
      replayed.process.stdout.destroy();
      const exit = await replayed.waitForExit();
      assert.equal(exit.code, 0, replayed.stderr());
      assert.doesNotMatch(replayed.stderr(), /Unhandled|EPIPE/);
    } finally {
      await replayed.kill9();
    }
  });

  test("a cache that cannot be used runs the command uncached, with one warning", async () => {
    const p = project();
    const fileRoot = join(p.dir, "not-a-directory");
    writeFileSync(fileRoot, "");
    for (const attempt of [1, 2]) {
      const result = await runCli(["--cache-dir", fileRoot, "run", "--out", "out", ...BUILD, "ok"], {}, { cwd: p.dir });
      assert.equal(result.code, 0);
      assert.equal(result.stdout, "built\n");
      assert.equal(result.stderr.split("\n").filter(Boolean).length, 1, result.stderr);
      assert.match(result.stderr, /^warning: the cache cannot be used for demo-pkg:node/);
      assert.equal(p.runs(), attempt);
    }
  });
});

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name));
}

function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of Object.keys(env)) if (name.startsWith("CACHET_")) delete env[name];
  delete env.NODE_OPTIONS;
  delete env.NODE_TEST_CONTEXT;
  return env;
}
