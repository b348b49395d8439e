// Task outputs restored on a hit must never share writable state with the cache: a build step that rewrites its
// own output folder in place (which they all do) must not change what later hits return. Through the public
// task()/dir()/file() API, on this machine's filesystem (ext4 here: no reflinks, so the default is a copy).
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { dir, file, openStore, task, type Store, type StoreWarning, type TaskEventKind } from "../src/index.js";
import { tempDir } from "./helpers.js";

const scratch = tempDir("cachet-task-restore-");
after(() => scratch.cleanup());

/** A store of its own, with no CACHET_* setting from the environment unless given. */
async function freshStore(label: string, env: NodeJS.ProcessEnv = {}): Promise<{ store: Store; warnings: StoreWarning[] }> {
  const warnings: StoreWarning[] = [];
  const store = await openStore({ cacheDir: join(scratch.path, label, "cache"), env, onWarning: (warning) => warnings.push(warning) });
  return { store, warnings };
}

/**
 * A build step as they are written: it rewrites `index.html` in its output folder in place (same inode) and
 * returns the folder. Takes everything it uses as inputs, so its key and version depend on nothing captured.
 */
function siteBuilder(store: Store, events: TaskEventKind[]) {
  return task({ name: "site", store, onEvent: (event) => events.push(event.kind) }, async function site(page: string, out: string) {
    mkdirSync(join(out, "assets"), { recursive: true });
    writeFileSync(join(out, "index.html"), `<h1>${page}</h1>\n`);
    writeFileSync(join(out, "assets", "page.txt"), page);
    return dir(out);
  });
}

/** The same step building from scratch (it may run over hard-linked, read-only files, which it must not write). */
function cleanSiteBuilder(store: Store, events: TaskEventKind[]) {
  return task({ name: "site", store, onEvent: (event) => events.push(event.kind) }, async function site(page: string, out: string) {
    rmSync(out, { recursive: true, force: true });
    mkdirSync(join(out, "assets"), { recursive: true });
    writeFileSync(join(out, "index.html"), `<h1>${page}</h1>\n`);
    writeFileSync(join(out, "assets", "page.txt"), page);
    return dir(out);
  });
}

describe("dir() results restored on a hit", () => {
  test("A, B, A (hit), C (rewrites the restored output in place), A (hit) returns A's page, not C's", async () => {
    const { store, warnings } = await freshStore("abaca");
    const out = join(scratch.path, "abaca", "out");
    const events: TaskEventKind[] = [];
    const site = siteBuilder(store, events);
    try {
      for (const page of ["A", "B", "A", "C", "A"]) await site(page, out);
      assert.deepEqual(events, ["miss", "miss", "hit", "miss", "hit"]);
      assert.equal(readFileSync(join(out, "index.html"), "utf8"), "<h1>A</h1>\n");
      assert.equal(readFileSync(join(out, "assets", "page.txt"), "utf8"), "A");
      assert.equal(statSync(join(out, "index.html")).nlink, 1, "a restored output shares no inode with the cache");
      assert.deepEqual(warnings, []);
    } finally {
      await store.close();
    }
  });

  test("CACHET_LINK_MODE=hardlink: an in-place edit of a restored file is caught on the next hit (dropped, warned, recomputed)", async () => {
    const { store, warnings } = await freshStore("hardlink", { CACHET_LINK_MODE: "hardlink" });
    const out = join(scratch.path, "hardlink", "out");
    const events: TaskEventKind[] = [];
    const site = cleanSiteBuilder(store, events);
    try {
      await site("A", out);
      rmSync(out, { recursive: true });
      await site("A", out);
      assert.deepEqual(events, ["miss", "hit"]);
      const page = join(out, "index.html");
      assert.ok(statSync(page).nlink > 1, "the hit was restored by hard links");
      assert.equal(statSync(page).mode & 0o222, 0, "a hard-linked file is the cache's own, read-only");

      // A tool that makes the file writable and edits it in place edits the cache's copy too.
      chmodSync(page, 0o644);
      writeFileSync(page, "<h1>edited in place</h1>\n");
      await site("A", out);
      assert.deepEqual(events, ["miss", "hit", "miss"], "the changed tree is not a hit");
      assert.equal(readFileSync(page, "utf8"), "<h1>A</h1>\n");
      assert.equal(warnings.length, 1, JSON.stringify(warnings));
      assert.equal(warnings[0]!.code, "CACHET_INTEGRITY");
      assert.match(warnings[0]!.message, /dropped entry site\//);
      assert.match(warnings[0]!.message, /"index\.html" was modified/);

      // The recomputed result replaced the changed tree in the cache: the next call is a sound hit.
      rmSync(out, { recursive: true });
      await site("A", out);
      assert.deepEqual(events, ["miss", "hit", "miss", "hit"]);
      assert.equal(readFileSync(page, "utf8"), "<h1>A</h1>\n");
      assert.equal(warnings.length, 1);
    } finally {
      await store.close();
    }
  });

  test("restored outputs get their original modes back: writable by their owner, executables executable", async () => {
    const { store } = await freshStore("modes");
    const out = join(scratch.path, "modes", "out");
    const events: TaskEventKind[] = [];
    const modes = { "run.sh": 0o755, "notes.txt": 0o644, "secret.key": 0o600, "shared.txt": 0o664, "frozen.txt": 0o444 };
    const build = task({ name: "modes", store, onEvent: (event) => events.push(event.kind) }, async function build(out: string, modes: Record<string, number>) {
      mkdirSync(out, { recursive: true });
      for (const [name, mode] of Object.entries(modes)) {
        writeFileSync(join(out, name), name);
        chmodSync(join(out, name), mode);
      }
      return dir(out);
    });
    try {
      await build(out, modes);
      rmSync(out, { recursive: true });
      await build(out, modes);
      assert.deepEqual(events, ["miss", "hit"]);
      for (const [name, mode] of Object.entries(modes)) {
        assert.equal((statSync(join(out, name)).mode & 0o7777).toString(8), mode.toString(8), name);
      }
    } finally {
      await store.close();
    }
  });
});

describe("file() results restored on a hit", () => {
  test("keep their original mode, and replace what is at the path whole", async () => {
    const { store } = await freshStore("file-mode");
    const key = join(scratch.path, "file-mode", "id.key");
    const events: TaskEventKind[] = [];
    const makeKey = task({ name: "make-key", store, onEvent: (event) => events.push(event.kind) }, async function makeKey(path: string) {
      writeFileSync(path, "secret");
      chmodSync(path, 0o600);
      return file(path);
    });
    try {
      await makeKey(key);
      writeFileSync(key, "overwritten by something else");
      chmodSync(key, 0o644);
      const restored = await makeKey(key);
      assert.deepEqual(events, ["miss", "hit"]);
      assert.equal(readFileSync(restored.path, "utf8"), "secret");
      assert.equal((statSync(key).mode & 0o777).toString(8), "600");
    } finally {
      await store.close();
    }
  });
});
