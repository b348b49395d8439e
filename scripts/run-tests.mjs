#!/usr/bin/env node
// Runs the whole suite with Node's test runner: every test/**/*.test.ts file, TypeScript through tsx.
// Tests of the remote tier check PostgreSQL and Redis themselves and skip (saying so) when they do not answer.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
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
const result = spawnSync(
  process.execPath,
  ["--import", "tsx", "--test", "--test-concurrency=2", "--test-timeout=600000", "--test-reporter=spec", ...files],
  { cwd: root, stdio: "inherit", env: { ...process.env, CACHET_TEST: "1" } },
);
process.exit(result.status ?? 1);
