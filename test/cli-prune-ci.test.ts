// `cachet cache prune --ci` keeps computed results and drops downloads (git checkouts and their databases among
// them); `cachet cache clean NAME` removes a git source's database once no other entry uses it.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { gitSource, openStore, readSettings } from "../src/index.js";
import { assertCleaned, runCli, tempDir } from "./helpers.js";
import { makeRepository } from "./git-servers.js";

const settings = readSettings({ env: {} });

function namesIn(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}

/** A cache holding a task-like computed entry, a downloaded value, and two git sources (one database each). */
async function seed(root: string, repositories: { lib: string; tool: string }) {
  const store = await openStore({ cacheDir: root });
  try {
    await store.put("build", "k1", "computed output");
    await store.putTree("compiled", "k2", repositories.tool, { origin: "computed" });
    await store.put("download", "k3", "downloaded body", { origin: "downloaded" });
    const lib = await gitSource(repositories.lib, { store, settings });
    const libAgain = await gitSource(repositories.lib, { store, name: "lib-vendored", settings });
    const tool = await gitSource(repositories.tool, { store, settings });
    return { lib, libAgain, tool };
  } finally {
    await store.close();
  }
}

describe("cachet cache prune --ci and clean NAME with git sources", () => {
  const dir = tempDir("cachet-prune-ci-");
  const repositories = { lib: join(dir.path, "lib"), tool: join(dir.path, "tool") };
  before(() => {
    makeRepository(repositories.lib, { "lib.txt": "lib\n" });
    makeRepository(repositories.tool, { "tool.txt": "tool\n", "bin/run": "#!/bin/sh\n" });
  });
  after(dir.cleanup);

  test("prune --ci drops downloaded entries, their checkouts and git databases, and keeps computed ones", async () => {
    const root = join(dir.path, "ci");
    const { lib, tool } = await seed(root, repositories);
    assert.equal(namesIn(join(root, "git-v1", "db")).length, 2);
    const result = await runCli(["cache", "prune", "--ci", "--json", "--cache-dir", root]);
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout) as { items: Array<{ kind: string; name?: string; reason?: string }> };
    assert.deepEqual(
      report.items.filter((item) => item.kind === "entry").map((item) => item.name).sort(),
      ["download", "lib", "lib-vendored", "tool"],
    );
    assert.equal(report.items.filter((item) => item.kind === "git").length, 2);

    assert.deepEqual(namesIn(join(root, "git-v1", "db")), []);
    assert.equal(existsSync(lib.path), false);
    assert.equal(existsSync(tool.path), false);
    const store = await openStore({ cacheDir: root });
    try {
      assert.equal((await store.getValue("build", "k1"))?.data.toString(), "computed output");
      assert.ok(await store.treePath("compiled", "k2"));
      assert.equal(store.info("download", "k3"), undefined);
      assert.equal(store.info("lib", lib.commit), undefined);
      // Pruned downloads come back on the next call.
      assert.equal((await gitSource(repositories.lib, { store, settings })).commit, lib.commit);
    } finally {
      await store.close();
    }
  });

  test("prune without --ci keeps the databases entries name and removes the others", async () => {
    const root = join(dir.path, "plain");
    await seed(root, repositories);
    const orphan = join(root, "git-v1", "db", "0".repeat(64));
    mkdirSync(orphan);
    const result = await runCli(["cache", "prune", "--cache-dir", root]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(existsSync(orphan), false);
    assert.equal(namesIn(join(root, "git-v1", "db")).length, 2);
  });

  test("clean NAME removes a git source's database once no other entry uses it; clean removes git-v1", async () => {
    const root = join(dir.path, "clean");
    const { lib } = await seed(root, repositories);
    const databases = join(root, "git-v1", "db");
    assert.equal((await runCli(["cache", "clean", "lib", "--cache-dir", root])).code, 0);
    assert.equal(namesIn(databases).length, 2, "lib-vendored still uses lib's database");
    assert.equal(existsSync(lib.path), true, "and its checkout");
    assert.equal((await runCli(["cache", "clean", "lib-vendored", "--cache-dir", root])).code, 0);
    assert.equal(namesIn(databases).length, 1);
    assert.equal(existsSync(lib.path), false);
    assert.equal((await runCli(["cache", "clean", "--cache-dir", root])).code, 0);
    assertCleaned(root);
  });
});
