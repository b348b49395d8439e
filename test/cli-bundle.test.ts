// The package's `bin` is the CLI bundled after `tsc` (scripts/bundle-cli.mjs): it must be the same program as the
// unbundled dist/cli/main.js (version, help, a run's miss and hit), with every chunk it loads in dist/cli/chunks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { CLI, tempDir } from "./helpers.js";

const repo = new URL("..", import.meta.url).pathname;
const UNBUNDLED = join(repo, "dist", "cli", "main.js");

function cli(entry: string, args: string[], cwd = repo): { code: number | null; stdout: string; stderr: string } {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("CACHET_")));
  const run = spawnSync(process.execPath, [entry, ...args], { cwd, env, encoding: "utf8" });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

test("the bin is the bundle, and it says and does what the unbundled CLI does", () => {
  const manifest = JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as { version: string; bin: Record<string, string> };
  assert.equal(join(repo, manifest.bin.cachet!), CLI);
  assert.ok(readdirSync(join(repo, "dist", "cli", "chunks")).some((name) => name.startsWith("run-")), "a chunk for `cachet run`");
  for (const args of [["--version"], ["--help"], ["run", "--help"], ["cache", "nope"]]) {
    const bundled = cli(CLI, args);
    assert.deepEqual(bundled, cli(UNBUNDLED, args), args.join(" "));
    if (args[0] === "--version") assert.equal(bundled.stdout.trim(), manifest.version);
  }
  const scratch = tempDir("cachet-bundle-");
  try {
    const run = ["--cache-dir", join(scratch.path, "cache"), "run", "--name", "hello", "--", process.execPath, "-e", "console.log('made')"];
    const first = cli(CLI, run, scratch.path);
    const second = cli(UNBUNDLED, run, scratch.path);
    const third = cli(CLI, [...run.slice(0, 5), "--dry-run", ...run.slice(5)], scratch.path);
    assert.deepEqual([first.code, first.stdout, second.code, second.stdout], [0, "made\n", 0, "made\n"]);
    assert.match(third.stdout, /^hit: hello would replay/);
  } finally {
    scratch.cleanup();
  }
});
