// Restores that leave an unchanged target alone: `putTree(…, { stampSource })` and `linkTree(…, { keepUnchanged })`
// keep a stamp of what the target looked like; a target that still matches it (a stat each) is not touched, and
// any change (an edit, a touch, a chmod, a file added or removed) makes the restore replace it with the tree.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openStore, pruneCache, type Store } from "../src/index.js";
import { tempDir } from "./helpers.js";

const scratch = tempDir("cachet-restore-stamps-");
after(() => scratch.cleanup());

let cases = 0;
async function fresh(): Promise<{ store: Store; out: string }> {
  const work = join(scratch.path, `case-${cases++}`);
  const out = join(work, "out");
  mkdirSync(join(out, "sub"), { recursive: true });
  writeFileSync(join(out, "a.txt"), "alpha");
  writeFileSync(join(out, "sub", "b.txt"), "beta");
  const store = await openStore({ cacheDir: join(work, "cache"), env: {}, onWarning: () => {} });
  return { store, out };
}

function listing(dir: string): Record<string, string> {
  const found: Record<string, string> = {};
  const visit = (relative: string): void => {
    for (const entry of readdirSync(join(dir, relative), { withFileTypes: true })) {
      const path = relative === "" ? entry.name : `${relative}/${entry.name}`;
      if (entry.isDirectory()) visit(path);
      else found[path] = readFileSync(join(dir, path), "utf8");
    }
  };
  visit("");
  return found;
}

const ORIGINAL = { "a.txt": "alpha", "sub/b.txt": "beta" };

test("a published output left as it was is kept: no file is replaced", async () => {
  const { store, out } = await fresh();
  try {
    await store.putTree("build", "k", out, { stampSource: true });
    const inode = statSync(join(out, "a.txt")).ino;
    const tally = await store.linkTree("build", "k", out, { replace: true, keepUnchanged: true });
    assert.equal(tally?.kept, true);
    assert.equal(statSync(join(out, "a.txt")).ino, inode);
    assert.deepEqual(listing(out), ORIGINAL);
  } finally {
    await store.close();
  }
});

test("without keepUnchanged, or without a stamp, the target is restored; that restore stamps it for the next one", async () => {
  const { store, out } = await fresh();
  try {
    await store.putTree("build", "k", out);
    const inode = statSync(join(out, "a.txt")).ino;
    const first = await store.linkTree("build", "k", out, { replace: true, keepUnchanged: true });
    assert.equal(first?.kept, undefined);
    assert.equal(first?.files, 2);
    const restored = statSync(join(out, "a.txt")).ino;
    assert.notEqual(restored, inode);
    const second = await store.linkTree("build", "k", out, { replace: true, keepUnchanged: true });
    assert.equal(second?.kept, true);
    assert.equal(statSync(join(out, "a.txt")).ino, restored);
    const plain = await store.linkTree("build", "k", out, { replace: true });
    assert.equal(plain?.kept, undefined);
  } finally {
    await store.close();
  }
});

const changes: Record<string, (out: string) => void> = {
  "an edit of the same size": (out) => writeFileSync(join(out, "a.txt"), "ALPHA"),
  "a touch without an edit": (out) => utimesSync(join(out, "sub", "b.txt"), new Date(2001, 1, 1), new Date(2001, 1, 1)),
  "a chmod": (out) => chmodSync(join(out, "a.txt"), 0o600),
  "a file added in a subdirectory": (out) => writeFileSync(join(out, "sub", "extra.txt"), "x"),
  "a file removed": (out) => rmSync(join(out, "sub", "b.txt")),
  "the whole output removed": (out) => rmSync(out, { recursive: true }),
};

for (const [change, apply] of Object.entries(changes)) {
  test(`after ${change}, the restore puts back exactly the tree`, async () => {
    const { store, out } = await fresh();
    try {
      chmodSync(join(out, "a.txt"), 0o644);
      await store.putTree("build", "k", out, { stampSource: true });
      apply(out);
      const tally = await store.linkTree("build", "k", out, { replace: true, keepUnchanged: true });
      assert.equal(tally?.kept, undefined);
      assert.deepEqual(listing(out), ORIGINAL);
      assert.equal(statSync(join(out, "a.txt")).mode & 0o777, 0o644);
      const again = await store.linkTree("build", "k", out, { replace: true, keepUnchanged: true });
      assert.equal(again?.kept, true);
    } finally {
      await store.close();
    }
  });
}

test("a stamp is for one tree: restoring another tree's entry into the same target replaces it", async () => {
  const { store, out } = await fresh();
  try {
    await store.putTree("build", "k1", out, { stampSource: true });
    writeFileSync(join(out, "a.txt"), "changed");
    await store.putTree("build", "k2", out, { stampSource: true });
    const tally = await store.linkTree("build", "k1", out, { replace: true, keepUnchanged: true });
    assert.equal(tally?.kept, undefined);
    assert.deepEqual(listing(out), ORIGINAL);
    assert.ok(existsSync(join(out, "sub", "b.txt")));
  } finally {
    await store.close();
  }
});

test("a damaged stamp, or one in the first (JSON) format, counts as changed: the target is restored and stamped anew", async () => {
  const damages: Record<string, (stamp: Buffer) => Buffer> = {
    truncated: (stamp) => stamp.subarray(0, stamp.length - 3),
    "a number changed": (stamp) => {
      const copy = Buffer.from(stamp);
      copy[copy.length - 1] = copy[copy.length - 1]! ^ 0x40;
      return copy;
    },
    "an entry count that does not match": (stamp) => Buffer.from(stamp.toString("latin1").replace(/"count":(\d+)/, (_, n: string) => `"count":${Number(n) + 1}`), "latin1"),
    "the first format": () => Buffer.from(JSON.stringify({ format: "cachet-restore-stamp/1", target: "", digest: "", entries: [] })),
    empty: () => Buffer.alloc(0),
  };
  for (const [damage, apply] of Object.entries(damages)) {
    const { store, out } = await fresh();
    try {
      await store.putTree("build", "k", out, { stampSource: true });
      const stamps = join(store.root, "stamps-v1");
      const [name] = readdirSync(stamps);
      assert.match(name ?? "", /^[0-9a-f]{64}\.stamp$/, damage);
      const file = join(stamps, name!);
      writeFileSync(file, apply(readFileSync(file)));
      const inode = statSync(join(out, "a.txt")).ino;
      const tally = await store.linkTree("build", "k", out, { replace: true, keepUnchanged: true });
      assert.equal(tally?.kept, undefined, damage);
      assert.notEqual(statSync(join(out, "a.txt")).ino, inode, damage);
      assert.deepEqual(listing(out), ORIGINAL, damage);
      const again = await store.linkTree("build", "k", out, { replace: true, keepUnchanged: true });
      assert.equal(again?.kept, true, damage);
    } finally {
      await store.close();
    }
  }
});

test("prune removes the stamps of folders that are gone and of trees no entry holds, and keeps the ones a restore can use", async () => {
  const { store, out } = await fresh();
  const cacheDir = store.root;
  const gone = join(out, "..", "gone");
  const other = join(out, "..", "other");
  try {
    await store.putTree("build", "k", out, { stampSource: true });
    assert.ok(await store.linkTree("build", "k", gone, { replace: true, keepUnchanged: true }));
    assert.ok(await store.linkTree("build", "k", other, { replace: true, keepUnchanged: true }));
    writeFileSync(join(out, "..", "dropped.txt"), "x");
    mkdirSync(join(out, "..", "dropped"));
    writeFileSync(join(out, "..", "dropped", "c.txt"), "gamma");
    assert.ok(await store.putTree("dropped", "k", join(out, "..", "dropped"), { stampSource: true }));
    await store.delete("dropped", "k");
  } finally {
    await store.close();
  }
  rmSync(gone, { recursive: true });
  const stamps = join(cacheDir, "stamps-v1");
  writeFileSync(join(stamps, "0".repeat(64) + ".json"), "{}"); // the first format's file
  assert.equal(readdirSync(stamps).length, 5);

  const removed: string[] = [];
  const result = await pruneCache({ cacheDir, onItem: (item) => void (item.kind === "stamp" && removed.push(item.path)) });
  assert.equal(result.found, true);
  assert.equal(removed.length, 3, "the gone folder's, the deleted entry's and the old-format stamp");
  assert.equal(readdirSync(stamps).length, 2);

  // The two kept stamps still serve: both folders are left alone by the next restore.
  const reopened = await openStore({ cacheDir, env: {}, onWarning: () => {} });
  try {
    assert.equal((await reopened.linkTree("build", "k", out, { replace: true, keepUnchanged: true }))?.kept, true);
    assert.equal((await reopened.linkTree("build", "k", other, { replace: true, keepUnchanged: true }))?.kept, true);
  } finally {
    await reopened.close();
  }
});

test("a stamps bucket that is a file holds no stamp: restores still work, and prune removes the file", async () => {
  const { store, out } = await fresh();
  const cacheDir = store.root;
  const bucket = join(cacheDir, "stamps-v1");
  try {
    await store.putTree("build", "k", out, { stampSource: true });
    rmSync(bucket, { recursive: true });
    writeFileSync(bucket, "not a directory");
    writeFileSync(join(out, "a.txt"), "edited");
    const tally = await store.linkTree("build", "k", out, { replace: true, keepUnchanged: true });
    assert.ok(tally, "restored from the cache");
    assert.equal(tally.kept, undefined);
    assert.deepEqual(listing(out), ORIGINAL);
  } finally {
    await store.close();
  }
  const removed: string[] = [];
  const result = await pruneCache({ cacheDir, onItem: (item) => void (item.kind === "stamp" && removed.push(item.path)) });
  assert.equal(result.found, true);
  assert.deepEqual(removed, [bucket]);
  assert.equal(existsSync(bucket), false);
  const reopened = await openStore({ cacheDir, env: {}, onWarning: () => {} });
  try {
    assert.equal((await reopened.linkTree("build", "k", out, { replace: true, keepUnchanged: true }))?.kept, undefined);
    assert.equal((await reopened.linkTree("build", "k", out, { replace: true, keepUnchanged: true }))?.kept, true, "stamps are written again");
  } finally {
    await reopened.close();
  }
});

test("a directory or a symlink where a stamp should be is no stamp: the target is restored and stamped anew", async () => {
  for (const kind of ["directory", "symlink"] as const) {
    const { store, out } = await fresh();
    try {
      await store.putTree("build", "k", out, { stampSource: true });
      const stamps = join(store.root, "stamps-v1");
      const [name] = readdirSync(stamps);
      const file = join(stamps, name!);
      const copy = join(store.root, "..", "stamp-copy");
      writeFileSync(copy, readFileSync(file));
      rmSync(file);
      if (kind === "directory") mkdirSync(join(file, "inside"), { recursive: true });
      else symlinkSync(copy, file);
      writeFileSync(join(out, "a.txt"), "edited");
      const tally = await store.linkTree("build", "k", out, { replace: true, keepUnchanged: true });
      assert.ok(tally, kind);
      assert.equal(tally.kept, undefined, kind);
      assert.deepEqual(listing(out), ORIGINAL, kind);
      assert.ok(lstatSync(file).isFile(), `${kind}: replaced by a stamp`);
      assert.equal((await store.linkTree("build", "k", out, { replace: true, keepUnchanged: true }))?.kept, true, kind);
    } finally {
      await store.close();
    }
  }
});
