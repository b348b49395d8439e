// Trees in the cache and their restores: cached files are read-only and described by a manifest; a tree changed
// since it was stored is dropped, never handed out; a restore over an existing target is whole-or-absent even
// under SIGKILL, and what killed restores leave beside a target is swept by the next restore of it (but never a
// live process's restore in progress). Real processes, real SIGKILL.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { openStore, pruneCache, verifyStore, type Store, type StoreWarning } from "../src/index.js";
import { tempDir } from "./helpers.js";
import { startNode, workerPath, type Child } from "./workers/child.js";

const scratch = tempDir("cachet-tree-restore-");
after(() => scratch.cleanup());

let labels = 0;
/** A fresh cache and work folder, with no CACHET_* setting from the environment. */
async function fresh(): Promise<{ store: Store; warnings: StoreWarning[]; work: string }> {
  const work = join(scratch.path, `case-${labels++}`);
  mkdirSync(work, { recursive: true });
  const warnings: StoreWarning[] = [];
  const store = await openStore({ cacheDir: join(work, "cache"), env: {}, onWarning: (warning) => warnings.push(warning) });
  return { store, warnings, work };
}

/** Writes `files` (relative path → content) under `root`, creating folders. */
function writeFiles(root: string, files: Record<string, string>): void {
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(root, path, ".."), { recursive: true });
    writeFileSync(join(root, path), content);
  }
}

/** Every file under `dir` (relative path → content), or undefined if `dir` does not exist. */
function readFiles(dir: string): Record<string, string> | undefined {
  if (!existsSync(dir)) return undefined;
  const found: Record<string, string> = {};
  const visit = (relative: string): void => {
    for (const entry of readdirSync(join(dir, relative), { withFileTypes: true })) {
      const path = relative === "" ? entry.name : `${relative}/${entry.name}`;
      if (entry.isDirectory()) visit(path);
      else found[path] = readFileSync(join(dir, path), "utf8");
    }
  };
  visit("");
  return sortKeys(found);
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name));
}

/** The leftovers of restores of `target` beside it. */
function leftoversOf(target: string): string[] {
  const name = target.slice(target.lastIndexOf("/") + 1);
  return readdirSync(join(target, "..")).filter((entry) => entry.startsWith(`.${name}.cachet-`) || entry.startsWith(".cachet-restore-"));
}

/** Rejects if `promise` has not settled within `ms` (every wait on a child process is bounded). */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Rewrites a (read-only) cached file in place, as a tool holding a hard link to it could. */
function rewrite(path: string, content: string): void {
  chmodSync(path, 0o644);
  writeFileSync(path, content);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Enough for the filesystem's coarse clock to tick, so a change made now gets a new mtime. */
const CLOCK_TICK_MS = 30;

describe("trees in the cache", () => {
  test("files in the cache are read-only (trees and blobs); restored copies get their original modes back", async () => {
    const { store, work } = await fresh();
    try {
      const source = join(work, "source");
      const modes: Record<string, number> = { "run.sh": 0o755, "notes.txt": 0o644, "private/key": 0o600, "group.txt": 0o664 };
      writeFiles(source, Object.fromEntries(Object.keys(modes).map((path) => [path, path])));
      for (const [path, mode] of Object.entries(modes)) chmodSync(join(source, path), mode);
      chmodSync(join(source, "private"), 0o700);
      const tree = await store.putTree("build", "k", source);
      const blob = await store.put("build", "big", Buffer.alloc(100_000, 7));

      const cached = filesUnder(store.layout.tree(tree.digest));
      assert.equal(cached.length, 4);
      for (const path of [...cached, store.layout.blob(blob.digest)]) {
        assert.equal(statSync(path).mode & 0o222, 0, `${path} is writable: mode ${(statSync(path).mode & 0o777).toString(8)}`);
      }
      assert.ok(statSync(join(store.layout.tree(tree.digest), "run.sh")).mode & 0o100, "the cached copy keeps the executable bit");
      assert.ok(existsSync(`${store.layout.tree(tree.digest)}.manifest`), "the manifest sits beside the tree");

      const target = join(work, "out");
      const tally = await store.linkTree("build", "k", target);
      assert.notEqual(tally?.mode, "hardlink");
      for (const [path, mode] of Object.entries(modes)) {
        const stats = statSync(join(target, path));
        assert.equal((stats.mode & 0o7777).toString(8), mode.toString(8), path);
        assert.equal(stats.nlink, 1, `${path} shares its inode with the cache`);
      }
      assert.equal((statSync(join(target, "private")).mode & 0o777).toString(8), "700");
    } finally {
      await store.close();
    }
  });

  test("files over 1 MiB (copied by the kernel, beside the small ones) are restored whole, checked, with their modes", async () => {
    const { store, warnings, work } = await fresh();
    try {
      const source = join(work, "source");
      const big = Buffer.alloc(3 * 1024 * 1024 + 17);
      for (let i = 0; i + 4 <= big.length; i += 4) big.writeUInt32LE(i, i);
      writeFiles(source, { "a.txt": "alpha", "sub/c.txt": "gamma" });
      writeFileSync(join(source, "sub", "big.bin"), big);
      writeFileSync(join(source, "tool"), big.subarray(0, 2 * 1024 * 1024));
      chmodSync(join(source, "tool"), 0o750);
      const tree = await store.putTree("build", "k", source);
      const target = join(work, "out");
      const tally = await store.linkTree("build", "k", target);
      assert.equal(tally?.files, 4);
      assert.ok(readFileSync(join(target, "sub", "big.bin")).equals(big));
      assert.ok(readFileSync(join(target, "tool")).equals(big.subarray(0, 2 * 1024 * 1024)));
      assert.equal((statSync(join(target, "tool")).mode & 0o777).toString(8), "750");
      assert.equal((statSync(join(target, "sub", "big.bin")).mode & 0o777).toString(8), (statSync(join(source, "sub", "big.bin")).mode & 0o777).toString(8));
      assert.equal(warnings.length, 0, JSON.stringify(warnings));

      await sleep(CLOCK_TICK_MS);
      rewrite(join(store.layout.tree(tree.digest), "sub", "big.bin"), "short now");
      assert.equal(await store.linkTree("build", "k", join(work, "out-2")), undefined);
      assert.match(warnings[0]?.message ?? "", /"sub\/big\.bin" was modified/);
      assert.equal(existsSync(join(work, "out-2")), false);
      assert.deepEqual(leftoversOf(join(work, "out-2")), []);
    } finally {
      await store.close();
    }
  });

  test("CACHET_LINK_MODE=clone where the filesystem has no reflinks fails with one clear error, and restores nothing", async (t) => {
    const { store, work } = await fresh();
    const cloning = await openStore({ cacheDir: store.root, env: { CACHET_LINK_MODE: "clone" } });
    try {
      writeFiles(join(work, "source"), { "a.txt": "alpha" });
      await store.putTree("build", "k", join(work, "source"));
      const target = join(work, "out");
      let error: unknown;
      try {
        await cloning.linkTree("build", "k", target);
      } catch (caught) {
        error = caught;
      }
      if (error === undefined) {
        t.skip("this filesystem has reflinks");
        return;
      }
      assert.equal((error as { code?: string }).code, "CACHET_LINK_MODE");
      assert.match((error as Error).message, /^CACHET_LINK_MODE=clone cannot be used from .* to .* \(E[A-Z]+.*\); unset it/);
      assert.equal(existsSync(target), false);
      assert.deepEqual(leftoversOf(target), []);
    } finally {
      await cloning.close();
      await store.close();
    }
  });

  for (const [label, change, expected] of [
    ["a file rewritten in place", (tree: string) => rewrite(join(tree, "sub/b.txt"), "changed!"), /"sub\/b\.txt" was modified/],
    ["a file touched to another mtime", (tree: string) => utimesSync(join(tree, "a.txt"), new Date(), new Date(Date.now() - 60_000)), /"a\.txt" was modified \(mtime/],
    ["a file removed", (tree: string) => rmSync(join(tree, "sub/b.txt")), /"sub\/b\.txt" is missing|directory "sub" changed/],
    ["a file added", (tree: string) => writeFileSync(join(tree, "sub/extra.txt"), "extra"), /directory "sub" changed/],
    ["a file added at the top", (tree: string) => writeFileSync(join(tree, "extra.txt"), "extra"), /top directory changed/],
  ] as const) {
    test(`a tree changed in the cache (${label}) is a miss: the entry is dropped with one warning naming it`, async () => {
      const { store, warnings, work } = await fresh();
      try {
        const source = join(work, "source");
        writeFiles(source, { "a.txt": "alpha", "sub/b.txt": "beta" });
        const tree = await store.putTree("build", "k", source);
        await sleep(CLOCK_TICK_MS);
        change(store.layout.tree(tree.digest));

        const target = join(work, "out");
        writeFiles(target, { "old.txt": "kept" });
        assert.equal(await store.linkTree("build", "k", target, { replace: true }), undefined);
        assert.deepEqual(readFiles(target), { "old.txt": "kept" }, "the target is left as it was");
        assert.deepEqual(leftoversOf(target), []);
        assert.equal(store.info("build", "k"), undefined, "the entry is dropped");
        assert.equal(warnings.length, 1, JSON.stringify(warnings));
        assert.equal(warnings[0]!.code, "CACHET_INTEGRITY");
        assert.match(warnings[0]!.message, /dropped entry build\/k/);
        assert.match(warnings[0]!.message, expected);
      } finally {
        await store.close();
      }
    });
  }

  test("storing the same tree again replaces a cached copy that changed, so its entries are sound again", async () => {
    const { store, warnings, work } = await fresh();
    try {
      const source = join(work, "source");
      writeFiles(source, { "a.txt": "alpha", "sub/b.txt": "beta" });
      const first = await store.putTree("build", "k1", source);
      await sleep(CLOCK_TICK_MS);
      rewrite(join(store.layout.tree(first.digest), "a.txt"), "ALPHA");
      const second = await store.putTree("build", "k2", source);
      assert.equal(second.digest, first.digest);
      for (const key of ["k1", "k2"]) {
        const target = join(work, `out-${key}`);
        assert.ok(await store.linkTree("build", key, target), key);
        assert.deepEqual(readFiles(target), { "a.txt": "alpha", "sub/b.txt": "beta" }, key);
      }
      assert.deepEqual(warnings, []);
      assert.deepEqual(readdirSync(store.layout.tmp), [], "the replaced copy was removed");
    } finally {
      await store.close();
    }
  });

  test("a tree without a manifest (an older build's) is re-hashed: kept with a new manifest if sound, dropped if not", async () => {
    const { store, warnings, work } = await fresh();
    try {
      const sound = join(work, "sound");
      const broken = join(work, "broken");
      writeFiles(sound, { "a.txt": "alpha", "sub/b.txt": "beta" });
      writeFiles(broken, { "c.txt": "gamma" });
      const good = await store.putTree("old", "sound", sound);
      const bad = await store.putTree("old", "broken", broken);
      // What an older build left: no manifest, files with their own (writable) modes.
      for (const digest of [good.digest, bad.digest]) {
        rmSync(`${store.layout.tree(digest)}.manifest`);
        for (const path of filesUnder(store.layout.tree(digest))) chmodSync(path, 0o644);
      }
      writeFileSync(join(store.layout.tree(bad.digest), "c.txt"), "GAMMA");

      const target = join(work, "out");
      assert.ok(await store.linkTree("old", "sound", target));
      assert.deepEqual(readFiles(target), { "a.txt": "alpha", "sub/b.txt": "beta" });
      assert.equal((statSync(join(target, "a.txt")).mode & 0o777).toString(8), "644");
      assert.ok(existsSync(`${store.layout.tree(good.digest)}.manifest`), "a manifest was written");
      assert.equal(statSync(join(store.layout.tree(good.digest), "a.txt")).mode & 0o222, 0, "and the tree made read-only");
      assert.equal(warnings.length, 0, JSON.stringify(warnings));

      assert.equal(await store.linkTree("old", "broken", join(work, "out-broken")), undefined);
      assert.equal(store.info("old", "broken"), undefined);
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!.message, /dropped entry old\/broken: .*no longer matches its digest/);
    } finally {
      await store.close();
    }
  });

  test("prune keeps the manifests of referenced trees and removes them with their trees", async () => {
    const { store, work } = await fresh();
    const root = store.root;
    let kept;
    try {
      writeFiles(join(work, "one"), { "a.txt": "one" });
      writeFiles(join(work, "two"), { "a.txt": "two" });
      kept = await store.putTree("t", "kept", join(work, "one"));
      const gone = await store.putTree("t", "gone", join(work, "two"));
      await store.delete("t", "gone");
      assert.deepEqual(readdirSync(store.layout.bucket("trees")).sort(), [gone.digest, `${gone.digest}.manifest`, kept.digest, `${kept.digest}.manifest`].sort());
    } finally {
      await store.close();
    }
    await pruneCache({ cacheDir: root, env: {} });
    assert.deepEqual(readdirSync(join(root, "trees-v1")).sort(), [kept.digest, `${kept.digest}.manifest`].sort());
  });

  test("verify re-hashes trees, refreshes a manifest that is out of date, and drops a tree that changed", async () => {
    const { store, warnings, work } = await fresh();
    try {
      writeFiles(join(work, "one"), { "a.txt": "one" });
      writeFiles(join(work, "two"), { "b.txt": "two" });
      const touched = await store.putTree("t", "touched", join(work, "one"));
      const changed = await store.putTree("t", "changed", join(work, "two"));
      await sleep(CLOCK_TICK_MS);
      utimesSync(join(store.layout.tree(touched.digest), "a.txt"), new Date(), new Date(Date.now() - 60_000)); // same content
      rewrite(join(store.layout.tree(changed.digest), "b.txt"), "TWO");

      const result = await verifyStore(store);
      assert.deepEqual(result.bad.map((entry) => entry.key), ["changed"]);
      assert.equal(existsSync(store.layout.tree(changed.digest)), false);
      assert.equal(existsSync(`${store.layout.tree(changed.digest)}.manifest`), false);
      assert.ok(await store.linkTree("t", "touched", join(work, "out")), "the touched tree is sound again");
      assert.deepEqual(warnings, []);
    } finally {
      await store.close();
    }
  });
});

describe("restoring over an existing target", () => {
  test("what dead restores left beside a target is swept, but a live process's restore in progress is not", async () => {
    const { store, work } = await fresh();
    const live = startNode(["-e", "setInterval(() => {}, 1000)"]);
    const dead = startNode(["-e", "0"]);
    try {
      await within(dead.exit, 30_000, "a child that exits at once");
      writeFiles(join(work, "source"), { "a.txt": "alpha" });
      await store.putTree("t", "k", join(work, "source"));
      const target = join(work, "out");
      const report = join(work, "report.txt");
      const leftovers = {
        liveStage: join(work, `.out.cachet-stage-${live.pid}-0123456789ab`),
        liveOld: join(work, `.out.cachet-old-${live.pid}-0123456789ab`),
        deadStage: join(work, `.out.cachet-stage-${dead.pid}-0123456789ab`),
        deadOld: join(work, `.out.cachet-old-${dead.pid}-0123456789ab`),
        ownAbandoned: join(work, `.out.cachet-stage-${process.pid}-0123456789ab`),
        olderBuild: join(work, `.cachet-restore-${dead.pid}-0123456789ab`),
        otherTarget: join(work, `.other.cachet-stage-${dead.pid}-0123456789ab`),
      };
      for (const path of Object.values(leftovers)) writeFiles(path, { "half.txt": "half" });
      const reportLeftover = join(work, `.report.txt.cachet-stage-${dead.pid}-0123456789ab`);
      writeFileSync(reportLeftover, "half");

      await store.linkTree("t", "k", target, { replace: true });
      assert.deepEqual(readFiles(target), { "a.txt": "alpha" });
      const remaining = Object.entries(leftovers).filter(([, path]) => existsSync(path)).map(([name]) => name);
      assert.deepEqual(remaining.sort(), ["liveOld", "liveStage", "otherTarget"]);

      // A file restore follows the same rules.
      const { restoreFileInto } = await import("../src/store/restore-swap.js");
      const { Readable } = await import("node:stream");
      await restoreFileInto(report, Readable.from([Buffer.from("report")]), 0o640);
      assert.equal(readFileSync(report, "utf8"), "report");
      assert.equal((statSync(report).mode & 0o777).toString(8), "640");
      assert.equal(existsSync(reportLeftover), false);

      await live.kill9();
      await store.linkTree("t", "k", target, { replace: true });
      assert.deepEqual(leftoversOf(target), []);
    } finally {
      await Promise.all([live.kill9(), dead.kill9()]);
      await store.close();
    }
  });

  const KILLS = 40;
  test(`a restore SIGKILLed at random moments (${KILLS} times) leaves the target whole-old, whole-new or absent; the next restore sweeps its leftovers`, async (t) => {
    const { store, work } = await fresh();
    const children: Child[] = [];
    try {
      // Two trees that differ in every file and in their file lists, so any mix or part of them shows.
      const files = 800;
      const treeA: Record<string, string> = {};
      const treeB: Record<string, string> = {};
      for (let i = 0; i < files; i++) {
        treeA[`d${i % 15}/a-${i}.txt`] = `A ${i}\n`.repeat(1 + (i % 7));
        treeB[`d${i % 15}/${i % 3 === 0 ? "a" : "b"}-${i}.txt`] = `B ${i}\n`.repeat(1 + (i % 5));
      }
      writeFiles(join(work, "a"), treeA);
      writeFiles(join(work, "b"), treeB);
      await store.putTree("restore", "a", join(work, "a"));
      await store.putTree("restore", "b", join(work, "b"));
      const target = join(work, "target");
      const started = performance.now();
      await store.linkTree("restore", "a", target);
      const restoreMs = performance.now() - started;

      const outcomes = { a: 0, b: 0, absent: 0 };
      const bad: string[] = [];
      let sawLeftovers = 0;
      for (let kill = 0; kill < KILLS; kill++) {
        const child = startNode([workerPath("tree-restorer.mjs"), store.root, "restore", target, "b", "a"]);
        children.push(child);
        await within(child.waitFor("+"), 60_000, "the restorer's first restore");
        await sleep(Math.random() * 2 * restoreMs);
        const exit = await within(child.kill9(), 30_000, "the killed restorer to be reaped");
        if (exit.signal !== "SIGKILL") bad.push(`restorer exited by itself: ${child.stderr()}`);
        for (const line of child.stderr().split("\n")) if (line.startsWith("BAD")) bad.push(line);

        const after = readFiles(target);
        const holds = (tree: Record<string, string>) => JSON.stringify(after) === JSON.stringify(sortKeys(tree));
        if (after === undefined) outcomes.absent++;
        else if (holds(treeA)) outcomes.a++;
        else if (holds(treeB)) outcomes.b++;
        else bad.push(`kill ${kill}: the target holds ${Object.keys(after).length} files, neither tree whole`);
        const left = leftoversOf(target);
        if (left.length > 0) sawLeftovers++;
        // Leftovers of earlier, dead restorers were swept by this one's first restore.
        const stale = left.filter((name) => !name.includes(`-${child.pid}-`));
        if (stale.length > 0) bad.push(`kill ${kill}: leftovers of earlier restores are still there: ${stale.join(", ")}`);
        if (after === undefined) await store.linkTree("restore", "a", target); // the next round starts from a whole target
      }
      t.diagnostic(`restore of ${files} files: ${restoreMs.toFixed(0)} ms; after the kills: ${JSON.stringify(outcomes)}; leftovers after ${sawLeftovers} kills`);
      assert.deepEqual(bad, []);
      assert.ok(sawLeftovers > 0, "no kill landed inside a restore: the test did not test anything");

      await store.linkTree("restore", "b", target, { replace: true });
      assert.deepEqual(readFiles(target), sortKeys(treeB));
      assert.deepEqual(leftoversOf(target), [], "the next restore swept what the last killed one left");
    } finally {
      await Promise.all(children.map((child) => child.kill9()));
      await store.close();
    }
  });
});

function sortKeys(record: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
