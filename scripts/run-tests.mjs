#!/usr/bin/env node
// Runs the whole suite with Node's test runner: every test/**/*.test.ts file, TypeScript through tsx.
// Tests that cannot run here (no docker-registry, no tmpfs, PostgreSQL or Redis not answering) skip, saying why;
// after Node's own report, a closing summary names every skipped test and suite with its reason and counts a
// skipped suite too (Node's count leaves it and its tests out). The exit status is the test runner's.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const only = process.argv.slice(2);

function findTests(dir) {
  const found = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory() && entry.name !== "fixtures") found.push(...findTests(path));
    else if (entry.isFile() && entry.name.endsWith(".test.ts")) found.push(relative(root, path));
  }
  return found.sort();
}

const files = findTests(join(root, "test")).filter((file) => only.length === 0 || only.some((part) => file.includes(part)));
if (files.length === 0) {
  console.error("no test files matched");
  process.exit(1);
}

const scratch = mkdtempSync(join(tmpdir(), "cachet-test-events-"));
const eventsFile = join(scratch, "events.jsonl");
let status;
try {
  const result = spawnSync(
    process.execPath,
    [
      "--import",
      "tsx",
      "--test",
      "--test-concurrency=2",
      // A backstop only (waits on child processes fail on their own, test/workers/child.ts): in Node 20 this bounds
      // each test file as a whole, and the slowest takes ~20 s.
      "--test-timeout=180000",
      "--test-reporter=spec",
      "--test-reporter-destination=stdout",
      `--test-reporter=${join(root, "scripts", "test-events-reporter.mjs")}`,
      `--test-reporter-destination=${eventsFile}`,
      ...files,
    ],
    { cwd: root, stdio: "inherit", env: { ...process.env, CACHET_TEST: "1" } },
  );
  status = result.status ?? 1;
  summarize(eventsFile);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
process.exit(status);

/** Prints the skipped tests and suites (with reasons and where) and one closing count line. */
function summarize(path) {
  let lines;
  try {
    lines = readFileSync(path, "utf8").split("\n").filter(Boolean);
  } catch (error) {
    console.log(`\n(no test summary: the test runner wrote no events: ${error.message})`);
    return;
  }
  const records = withPaths(lines.map((line) => JSON.parse(line)));
  const tests = records.filter((record) => !record.suite);
  const passed = tests.filter((record) => record.passed && record.skip === null && record.todo === null).length;
  const failed = tests.filter((record) => !record.passed && record.todo === null).length;
  const skipped = records.filter((record) => record.skip !== null);
  console.log("");
  if (skipped.length > 0) {
    const suites = skipped.filter((record) => record.suite).length;
    const kinds = [suites && `${suites} suite${suites === 1 ? "" : "s"}, whose tests did not run`, skipped.length - suites && `${skipped.length - suites} test${skipped.length - suites === 1 ? "" : "s"}`];
    console.log(`skipped ${skipped.length} (${kinds.filter(Boolean).join("; ")}):`);
    for (const record of skipped) {
      const where = record.file ? relative(root, record.file) : "?";
      console.log(`  ${record.suite ? "suite " : ""}${record.path} (${where}) — ${record.skip || "no reason given"}`);
    }
  }
  console.log(`tests: ${passed} passed, ${failed} failed, ${skipped.length} skipped`);
}

/**
 * Gives each record its full name ("suite › test"). Within a file, Node reports a test's subtests before the test
 * itself, so the records just before one at nesting n with a deeper nesting are its descendants.
 */
function withPaths(records) {
  const pending = new Map(); // file -> records whose parent has not been reported yet
  for (const record of records) {
    record.path = record.name;
    const open = pending.get(record.file) ?? [];
    while (open.length > 0 && open[open.length - 1].nesting > record.nesting) {
      const child = open.pop();
      for (const descendant of child.descendants ?? []) descendant.path = `${record.name} › ${descendant.path}`;
      child.path = `${record.name} › ${child.path}`;
      (record.descendants ??= []).push(child, ...(child.descendants ?? []));
    }
    open.push(record);
    pending.set(record.file, open);
  }
  return records;
}
