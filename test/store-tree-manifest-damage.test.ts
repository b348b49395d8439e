// A tree's manifest is checked before it is trusted: a changed byte (a mode, a symlink target, a record left out)
// makes it no manifest at all, so the tree is re-hashed against its digest and restored as it was stored.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openStore, type StoreWarning } from "../src/store/index.js";
import { tempDir } from "./helpers.js";

const scratch = tempDir("cachet-manifest-");
after(scratch.cleanup);
let count = 0;

async function storedTree(): Promise<{ root: string; cache: string; manifest: string }> {
  const root = join(scratch.path, `case-${count++}`);
  const source = join(root, "src");
  mkdirSync(source, { recursive: true });
  writeFileSync(join(source, "a.txt"), "AAAA\n");
  writeFileSync(join(source, "run.sh"), "#!/bin/sh\n");
  chmodSync(join(source, "run.sh"), 0o755);
  symlinkSync("a.txt", join(source, "link"));
  const cache = join(root, "cache");
  const store = await openStore({ cacheDir: cache });
  await store.putTree("t", "k", source);
  await store.close();
  const trees = join(cache, "trees-v1");
  const manifest = join(trees, readdirSync(trees).find((name) => name.endsWith(".manifest"))!);
  return { root, cache, manifest };
}

function edit(file: string, change: (text: string) => string): void {
  chmodSync(file, 0o644);
  const before = readFileSync(file, "utf8");
  const after = change(before);
  assert.notEqual(after, before, "the edit changed the manifest");
  writeFileSync(file, after);
}

async function restore(cache: string, target: string): Promise<StoreWarning[]> {
  const warnings: StoreWarning[] = [];
  const store = await openStore({ cacheDir: cache, onWarning: (w) => warnings.push(w) });
  try {
    assert.ok(await store.linkTree("t", "k", target, { replace: true }), "the tree is still served");
  } finally {
    await store.close();
  }
  return warnings;
}

function assertAsStored(target: string): void {
  assert.deepEqual(readdirSync(target).sort(), ["a.txt", "link", "run.sh"]);
  assert.equal(readFileSync(join(target, "a.txt"), "utf8"), "AAAA\n");
  assert.equal(readlinkSync(join(target, "link")), "a.txt");
  assert.equal(lstatSync(join(target, "run.sh")).mode & 0o7777, 0o755);
}

describe("a tampered tree manifest", () => {
  const edits: Array<[string, (text: string) => string]> = [
    ["a symlink target changed", (text) => text.replace('"link","a.txt"', '"link","a.txu"')],
    ["set-id bits added to a mode", (text) => text.replace(/("run\.sh",)493/, "$13565")],
    ["a file's record removed", (text) => text.replace(/\["f","a\.txt",[^\]]*\],/, "")],
    ["one byte flipped", (text) => text.replace('"a.txt"', '"b.txt"')],
  ];
  for (const [label, change] of edits) {
    test(`${label}: the tree is re-hashed and restored exactly as stored`, async () => {
      const { root, cache, manifest } = await storedTree();
      edit(manifest, change);
      const target = join(root, "out");
      await restore(cache, target);
      assertAsStored(target);
      // The manifest was rebuilt: the next restore uses it without re-hashing, and it is right too.
      await restore(cache, join(root, "again"));
      assertAsStored(join(root, "again"));
    });
  }

  test("a manifest without set-id bits is never restored with them, even when the stored file had them", async () => {
    const { root, cache } = await storedTree();
    await restore(cache, join(root, "out"));
    for (const name of ["a.txt", "run.sh"]) assert.equal(lstatSync(join(root, "out", name)).mode & 0o7000, 0);
  });
});
