// Crash safety with real processes: writers are SIGKILLed at random moments (≥ 200 kills), then the cache must
// open, every entry it lists must read back whole and self-consistent, no lock may be left behind, and
// `prune` must sweep the staging files the dead writers left in tmp/.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { openStore, type EntryInfo, type Store, type StoreWarning } from "../src/store/index.js";
import { assertCleaned, tempDir } from "./helpers.js";
import { runCliToEnd, startNode, workerPath, type Child } from "./workers/child.js";
import { decodeValue, verifyTree } from "./workers/self-describing.mjs";

const ROUNDS = 25;
const WRITERS = 8;
const WRITER = workerPath("crash-writer.mjs");

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("store under kill -9", () => {
  const scratch = tempDir("cachet-crash-");
  const root = join(scratch.path, "cache");
  const work = join(scratch.path, "work");
  let kills = 0;
  let finishedOps = 0;
  const problems: string[] = [];

  before(async () => {
    mkdirSync(work);
    let writerId = 0;
    const killAfterReady = async (child: Child, delayMs: number): Promise<void> => {
      try {
        await child.waitFor("ready");
      } catch (error) {
        problems.push((error as Error).message);
        await child.kill9();
        return;
      }
      await sleep(delayMs);
      if (child.exitedYet()) {
        problems.push(`writer pid ${child.pid} ended by itself before its kill:\n${child.stderr()}`);
        return;
      }
      const exit = await child.kill9();
      if (exit.signal === "SIGKILL") kills++;
      else problems.push(`writer pid ${child.pid} exited with code ${exit.code} instead of being killed:\n${child.stderr()}`);
    };
    for (let round = 0; round < ROUNDS; round++) {
      const children = Array.from({ length: WRITERS }, () => startNode([WRITER, root, work, String(writerId++)]));
      await Promise.all(children.map((child) => killAfterReady(child, 5 + Math.floor(Math.random() * 76))));
      for (const child of children) {
        finishedOps += child.stdout().split("+").length - 1;
        for (const line of child.stderr().split("\n")) if (line.startsWith("BAD")) problems.push(line);
      }
    }
    // One writer killed, for certain, in the middle of a streamed blob: its half-written staging file stays in tmp/.
    const staller = startNode([WRITER, root, work, String(writerId++), "stall-stream"]);
    try {
      await staller.waitFor("mid");
    } finally {
      if ((await staller.kill9()).signal === "SIGKILL") kills++;
    }
  });

  after(() => scratch.cleanup());

  it(`survives ${ROUNDS * WRITERS} SIGKILLs of writers without any writer seeing a bad value`, (t) => {
    t.diagnostic(`${kills} writers killed after ${finishedOps} finished operations in all`);
    assert.deepEqual(problems, []);
    assert.ok(kills >= ROUNDS * WRITERS, `only ${kills} writers were killed`);
  });

  it("opens afterwards, and every listed entry reads back byte-exact and self-consistent", async (t) => {
    const warnings: StoreWarning[] = [];
    const store = await openStore({ cacheDir: root, lockTimeout: 5, onWarning: (warning) => warnings.push(warning) });
    try {
      const entries = await checkEveryEntry(store, work);
      const counts = { inline: 0, blob: 0, tree: 0 };
      for (const entry of entries) counts[entry.storage]++;
      t.diagnostic(`${entries.length} entries: ${JSON.stringify(counts)}`);
      assert.ok(entries.length > 0, "the writers wrote nothing before being killed");
      // The stalled stream never finished, so its entry must not exist.
      assert.equal(store.info("crash-stall", `stall-${ROUNDS * WRITERS}`), undefined);
    } finally {
      await store.close();
    }
    assert.deepEqual(warnings, []);
  });

  it("keeps an intact index and only whole content in the buckets", () => {
    const db = new Database(join(root, "index-v1", "index.sqlite"), { readonly: true });
    try {
      assert.equal((db.pragma("integrity_check") as Array<{ integrity_check: string }>)[0]?.integrity_check, "ok");
    } finally {
      db.close();
    }
    // Every blob file, referenced or orphaned, is complete: a blob only ever appears by renaming a whole file.
    for (const path of filesUnder(join(root, "blobs-v1"))) {
      const name = path.slice(path.lastIndexOf("/") + 1);
      assert.equal(createHash("sha256").update(readFileSync(path)).digest("hex"), name, `torn blob ${path}`);
    }
    // Every tree, referenced or orphaned, is complete.
    for (const id of readdirSync(join(root, "trees-v1")).filter((name) => !name.endsWith(".manifest"))) {
      const result = verifyTree(join(root, "trees-v1", id));
      assert.ok(result.ok, `torn tree ${id}: ${result.ok ? "" : result.reason}`);
    }
  });

  it("is not left locked, and `cache prune` removes the dead writers' staging files", async (t) => {
    const staged = readdirSync(join(root, "tmp"));
    t.diagnostic(`${staged.length} staging files left in tmp/ by killed writers`);
    assert.ok(staged.length >= 1, "the writer killed mid-stream left no staging file");
    const prune = await runCliToEnd(["cache", "prune"], { CACHET_CACHE_DIR: root, CACHET_LOCK_TIMEOUT: "5" });
    assert.equal(prune.code, 0, prune.stderr);
    assert.doesNotMatch(prune.stderr, /in use/, "prune had to wait: a dead writer's lock survived");
    assert.deepEqual(readdirSync(join(root, "tmp")), []);

    // What prune kept is exactly what entries refer to, and every entry still reads back.
    const store = await openStore({ cacheDir: root, lockTimeout: 5 });
    try {
      const entries = await checkEveryEntry(store, work);
      const blobs = new Set(entries.filter((entry) => entry.storage === "blob").map((entry) => entry.digest));
      const trees = new Set(entries.filter((entry) => entry.storage === "tree").map((entry) => entry.digest));
      const blobFiles = filesUnder(join(root, "blobs-v1")).map((path) => path.slice(path.lastIndexOf("/") + 1));
      assert.deepEqual(new Set(blobFiles), blobs);
      // Each tree sits beside its manifest (a tree published just before a kill got one when it was read back).
      const treeNames = readdirSync(join(root, "trees-v1"));
      assert.deepEqual(new Set(treeNames.filter((name) => !name.endsWith(".manifest"))), trees);
      assert.deepEqual(new Set(treeNames.filter((name) => name.endsWith(".manifest")).map((name) => name.slice(0, -".manifest".length))), trees);
    } finally {
      await store.close();
    }
  });

  it("`cache clean` with a short CACHET_LOCK_TIMEOUT succeeds at once: the kernel dropped the killed writers' locks", async () => {
    const clean = await runCliToEnd(["cache", "clean"], { CACHET_CACHE_DIR: root, CACHET_LOCK_TIMEOUT: "2" });
    assert.equal(clean.code, 0, clean.stderr);
    assert.doesNotMatch(clean.stderr, /in use/);
    assert.match(clean.stderr, /Removed \d+ /);
    assertCleaned(root);
  });
});

/** Reads every listed entry back (get, getStream or linkTree) and checks it describes itself correctly. */
async function checkEveryEntry(store: Store, work: string): Promise<EntryInfo[]> {
  const entries: EntryInfo[] = [];
  for await (const entry of store.list()) entries.push(entry);
  const where = mkdtempSync(join(work, "check-"));
  for (const [i, entry] of entries.entries()) {
    const label = `${entry.name}/${entry.key} (${entry.storage})`;
    if (entry.storage === "tree") {
      const target = join(where, String(i));
      const tally = await store.linkTree(entry.name, entry.key, target);
      assert.ok(tally, `${label}: listed but linkTree missed`);
      const result = verifyTree(target);
      assert.ok(result.ok, `${label}: ${result.ok ? "" : result.reason}`);
      assert.deepEqual([result.meta.name, result.meta.key], [entry.name, entry.key], label);
      continue;
    }
    const data = await store.get(entry.name, entry.key);
    assert.ok(data, `${label}: listed but get missed`);
    assert.equal(data.byteLength, entry.size, `${label}: size`);
    const result = decodeValue(data);
    assert.ok(result.ok, `${label}: ${result.ok ? "" : result.reason}`);
    assert.deepEqual([result.meta.name, result.meta.key], [entry.name, entry.key], label);
    if (entry.storage === "blob") {
      const stream = await store.getStream(entry.name, entry.key);
      assert.ok(stream, `${label}: listed but getStream missed`);
      const chunks: Buffer[] = [];
      for await (const chunk of stream) chunks.push(chunk as Buffer);
      assert.ok(Buffer.concat(chunks).equals(Buffer.from(data)), `${label}: getStream differs from get`);
    }
  }
  return entries;
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(path));
    else out.push(path);
  }
  return out;
}
