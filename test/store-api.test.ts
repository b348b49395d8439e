import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import {
  InvalidEntryNameError,
  StoreSettingError,
  LinkTargetError,
  EntryKindError,
  openStore,
  resolveCacheDir,
  verifyStore,
  type Store,
  type StoreWarning,
} from "../src/index.js";
import { tempDir } from "./helpers.js";
import { runToEnd } from "./workers/child.js";

describe("cache root", () => {
  const dir = tempDir();
  after(dir.cleanup);

  test("a new root has the DESIGN layout: tag, gitignore, lock, versioned buckets, tmp", async () => {
    const root = join(dir.path, "layout");
    const store = await openStore({ cacheDir: root });
    await store.close();
    const tag = readFileSync(join(root, "CACHEDIR.TAG"), "utf8");
    assert.match(tag, /^Signature: 8a477f597d28d172789f06886806bc55\n/);
    assert.equal(readFileSync(join(root, ".gitignore"), "utf8"), "*\n");
    for (const name of [".lock", "index-v1", "blobs-v1", "trees-v1", "tmp"]) assert.ok(existsSync(join(root, name)), name);
  });

  test("directory resolution: option > CACHET_CACHE_DIR > package.json > XDG > home", () => {
    const project = join(dir.path, "project", "nested");
    mkdirSync(project, { recursive: true });
    writeFileSync(join(dir.path, "project", "package.json"), JSON.stringify({ name: "p", cachet: { cacheDir: ".cache-here" } }));
    const env = { HOME: "/home/someone", XDG_CACHE_HOME: "/xdg" };
    assert.equal(resolveCacheDir({ cacheDir: "/opt/c", env: { ...env, CACHET_CACHE_DIR: "/env" }, cwd: project }).path, "/opt/c");
    assert.equal(resolveCacheDir({ env: { ...env, CACHET_CACHE_DIR: "/env" }, cwd: project }).path, "/env");
    assert.deepEqual(resolveCacheDir({ env, cwd: project }), {
      path: join(dir.path, "project", ".cache-here"),
      source: "package.json",
      temporary: false,
    });
    assert.equal(resolveCacheDir({ env, cwd: dir.path }).path, "/xdg/cachet");
    assert.equal(resolveCacheDir({ env: { HOME: "/home/someone" }, cwd: dir.path }).path, "/home/someone/.cache/cachet");
  });

  test("an unreadable package.json is a clear error naming the file", () => {
    const broken = join(dir.path, "broken");
    mkdirSync(broken);
    writeFileSync(join(broken, "package.json"), "{ not json");
    assert.throws(() => resolveCacheDir({ env: {}, cwd: broken }), (error: Error) => {
      assert.ok(error.message.includes(join(broken, "package.json")));
      return true;
    });
  });

  test("--no-cache makes a temporary root that is gone after the process exits", async () => {
    const script = `
      import { openStore } from ${JSON.stringify(new URL("../src/index.ts", import.meta.url).pathname)};
      const store = await openStore({ noCache: true });
      await store.put("t", "k", "v");
      console.log(store.root);
    `;
    const result = await runToEnd(["--import", "tsx", "--input-type=module", "-e", script], {}, { cwd: new URL("..", import.meta.url).pathname });
    assert.equal(result.code, 0, result.stderr);
    const root = result.stdout.trim();
    assert.match(root, /cachet-no-cache-/);
    assert.equal(existsSync(root), false);
  });

  test("bad CACHET_LOCK_TIMEOUT / CACHET_LINK_MODE values are refused with the variable's name", async () => {
    await assert.rejects(openStore({ cacheDir: join(dir.path, "bad"), env: { CACHET_LOCK_TIMEOUT: "soon" } }), StoreSettingError);
    await assert.rejects(openStore({ cacheDir: join(dir.path, "bad"), env: { CACHET_LINK_MODE: "teleport" } }), /CACHET_LINK_MODE/);
  });
});

describe("entries", () => {
  const dir = tempDir();
  let store: Store;
  before(async () => {
    store = await openStore({ cacheDir: dir.path });
  });
  after(async () => {
    await store.close();
    dir.cleanup();
  });

  test("put/get round-trips strings and bytes; a miss is undefined", async () => {
    await store.put("task", "k1", "hello");
    assert.equal(Buffer.from((await store.get("task", "k1"))!).toString(), "hello");
    const bytes = randomBytes(100);
    await store.put("task", "k2", bytes);
    assert.deepEqual(Buffer.from((await store.get("task", "k2"))!), bytes);
    assert.equal(await store.get("task", "nope"), undefined);
    assert.equal(await store.get("other", "k1"), undefined);
  });

  test("small values live inline, large ones as sha256-addressed blobs", async () => {
    const small = await store.put("task", "small", randomBytes(1024));
    assert.equal(small.storage, "inline");
    const big = randomBytes(200_000);
    const info = await store.put("task", "big", big);
    assert.equal(info.storage, "blob");
    const path = store.layout.blob(info.digest);
    assert.ok(path.includes(join("blobs-v1", info.digest.slice(0, 2), info.digest.slice(2, 4))));
    assert.deepEqual(readFileSync(path), big);
    assert.deepEqual(Buffer.from((await store.get("task", "big"))!), big);
  });

  test("replacing an entry swaps it whole", async () => {
    await store.put("task", "swap", randomBytes(50_000));
    const second = randomBytes(60_000);
    await store.put("task", "swap", second, { origin: "downloaded" });
    assert.deepEqual(Buffer.from((await store.get("task", "swap"))!), second);
    assert.equal(store.info("task", "swap")?.origin, "downloaded");
  });

  test("delete removes an entry and says whether it existed", async () => {
    await store.put("task", "gone", "x");
    assert.equal(await store.delete("task", "gone"), true);
    assert.equal(await store.delete("task", "gone"), false);
    assert.equal(await store.get("task", "gone"), undefined);
  });

  test("list shows name, key, size, origin and times, per name or all", async () => {
    await store.put("lister", "a", "12345", { origin: "downloaded", costMs: 12 });
    await store.put("lister", "b", "1");
    const entries = [];
    for await (const entry of store.list("lister")) entries.push(entry);
    assert.deepEqual(entries.map((e) => e.key).sort(), ["a", "b"]);
    const a = entries.find((e) => e.key === "a")!;
    assert.equal(a.size, 5);
    assert.equal(a.origin, "downloaded");
    assert.equal(a.costMs, 12);
    assert.ok(a.createdAt instanceof Date && a.lastUsedAt instanceof Date);
    let all = 0;
    for await (const entry of store.list()) {
      all++;
      // Calls inside the loop must work: list does not hold the connection.
      await store.get(entry.name, entry.key);
    }
    assert.ok(all >= 2);
  });

  test("names that could escape the root are refused", async () => {
    for (const bad of ["..", ".", "a/b", "a\\b", "nul\0byte", "", "x".repeat(300)]) {
      await assert.rejects(store.put(bad, "k", "v"), InvalidEntryNameError, JSON.stringify(bad));
    }
    await assert.rejects(store.get("ok", ""), /invalid entry key/);
  });

  test("putStream / getStream round-trip content in chunks (corruption: store-read-guards.test.ts)", async () => {
    const chunks = [randomBytes(70_000), randomBytes(70_000), randomBytes(5)];
    const info = await store.putStream("stream", "k", (async function* () {
      yield* chunks;
    })());
    assert.equal(info.size, 140_005);
    const stream = await store.getStream("stream", "k");
    const parts: Buffer[] = [];
    for await (const part of stream!) parts.push(part as Buffer);
    assert.deepEqual(Buffer.concat(parts), Buffer.concat(chunks));
  });

  test("a write through another store on the same root is visible at once in this process", async () => {
    const other = await openStore({ cacheDir: dir.path });
    assert.equal(await store.get("visible", "k"), undefined); // opens this store's read snapshot
    await other.put("visible", "k", "now");
    assert.equal(Buffer.from((await store.get("visible", "k"))!).toString(), "now");
    await other.put("visible", "k", "replaced");
    assert.equal(Buffer.from((await store.get("visible", "k"))!).toString(), "replaced");
    await other.close();
  });

  test("repeated reads return fresh copies: changing one never changes what the cache returns", async () => {
    await store.put("memo", "k", "original");
    for (let i = 0; i < 3; i++) {
      const bytes = (await store.get("memo", "k"))!;
      assert.equal(Buffer.from(bytes).toString(), "original");
      bytes.fill(0x21); // a caller scribbling on its copy
    }
  });

  test("a memoized value is replaced as soon as another connection writes a new one", async () => {
    const other = await openStore({ cacheDir: dir.path });
    await other.put("memo", "shared", "v1");
    for (let i = 0; i < 3; i++) assert.equal(Buffer.from((await store.get("memo", "shared"))!).toString(), "v1");
    await other.put("memo", "shared", "v2");
    assert.equal(Buffer.from((await store.get("memo", "shared"))!).toString(), "v2");
    await other.delete("memo", "shared");
    assert.equal(await store.get("memo", "shared"), undefined);
    await other.close();
  });

  test("components and format are kept with the entry", async () => {
    await store.put("explained", "k", "v", { format: "cachet-value/1", components: { version: "abc", inputs: { x: "1" } } });
    assert.deepEqual(store.components("explained", "k"), { version: "abc", inputs: { x: "1" } });
    assert.equal((await store.getEntry("explained", "k"))?.format, "cachet-value/1");
  });
});

describe("integrity", () => {
  const dir = tempDir();
  after(dir.cleanup);

  test("a flipped byte in a blob is a miss on get, the entry is dropped, a warning names it", async () => {
    const warnings: StoreWarning[] = [];
    const store = await openStore({ cacheDir: dir.path, onWarning: (w) => warnings.push(w) });
    const info = await store.put("t", "k", randomBytes(100_000));
    const path = store.layout.blob(info.digest);
    const bytes = readFileSync(path);
    bytes[5000] = bytes[5000]! ^ 0x01;
    chmodSync(path, 0o644);
    writeFileSync(path, bytes);
    assert.equal(await store.get("t", "k"), undefined);
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]!.code, "CACHET_INTEGRITY");
    assert.ok(warnings[0]!.message.includes("t/k") && warnings[0]!.message.includes(path));
    assert.equal(store.info("t", "k"), undefined);
    await store.close();
  });

  test("verify finds a corrupt blob, drops the entry and removes the bad content", async () => {
    const store = await openStore({ cacheDir: dir.path, onWarning: () => {} });
    const good = await store.put("t", "good", randomBytes(50_000));
    const bad = await store.put("t", "bad", randomBytes(50_000));
    const path = store.layout.blob(bad.digest);
    const bytes = readFileSync(path);
    bytes[0] = bytes[0]! ^ 0xff;
    writeFileSync(path, bytes);
    const result = await verifyStore(store);
    assert.equal(result.bad.length, 1);
    assert.equal(result.bad[0]!.key, "bad");
    assert.ok(existsSync(store.layout.blob(good.digest)));
    assert.equal(existsSync(path), false);
    assert.equal(store.info("t", "bad"), undefined);
    await store.close();
  });

  test("a blob deleted behind the store's back is a miss with a warning, not a crash", async () => {
    const warnings: StoreWarning[] = [];
    const store = await openStore({ cacheDir: dir.path, onWarning: (w) => warnings.push(w) });
    const info = await store.put("t", "vanish", randomBytes(30_000));
    const { rmSync } = await import("node:fs");
    rmSync(store.layout.blob(info.digest));
    assert.equal(await store.get("t", "vanish"), undefined);
    assert.equal(warnings[0]?.code, "CACHET_MISSING_CONTENT");
    await store.close();
  });
});

describe("trees and link-out", () => {
  const dir = tempDir();
  let store: Store;
  const source = join(dir.path, "source");
  before(async () => {
    store = await openStore({ cacheDir: join(dir.path, "cache") });
    mkdirSync(join(source, "sub", "empty"), { recursive: true });
    writeFileSync(join(source, "a.txt"), "alpha");
    writeFileSync(join(source, "sub", "run.sh"), "#!/bin/sh\necho hi\n");
    chmodSync(join(source, "sub", "run.sh"), 0o755);
    symlinkSync("a.txt", join(source, "link"));
  });
  after(async () => {
    await store.close();
    dir.cleanup();
  });

  test("putTree stores an immutable copy; linkTree materializes it with modes and symlinks", async () => {
    const info = await store.putTree("build", "k", source);
    assert.equal(info.storage, "tree");
    writeFileSync(join(source, "a.txt"), "changed later"); // the cache has its own copy
    const target = join(dir.path, "out");
    const tally = await store.linkTree("build", "k", target);
    assert.ok(tally);
    assert.equal(tally.files, 2);
    assert.equal(readFileSync(join(target, "a.txt"), "utf8"), "alpha");
    assert.ok(statSync(join(target, "sub", "run.sh")).mode & 0o100);
    assert.equal(readlinkSync(join(target, "link")), "a.txt");
    assert.ok(existsSync(join(target, "sub", "empty")));
    writeFileSync(join(source, "a.txt"), "alpha");
  });

  test("treePath gives the checked tree in the cache; a tree changed there is a miss and is dropped", async () => {
    const path = await store.treePath("build", "k");
    assert.ok(path);
    assert.equal(readFileSync(join(path, "a.txt"), "utf8"), "alpha");
    assert.equal(await store.treePath("build", "absent"), undefined);
    await store.put("value", "k", "bytes");
    await assert.rejects(store.treePath("value", "k"), EntryKindError);
    const other = join(dir.path, "other-source");
    mkdirSync(other);
    writeFileSync(join(other, "a.txt"), "only here");
    await store.putTree("scratch", "k", other);
    const scratch = (await store.treePath("scratch", "k"))!;
    chmodSync(join(scratch, "a.txt"), 0o644);
    writeFileSync(join(scratch, "a.txt"), "tampered!");
    assert.equal(await store.treePath("scratch", "k"), undefined);
    assert.equal(store.info("scratch", "k"), undefined);
  });

  test("a read-only source is hard-linked (or cloned) on one filesystem, never plainly copied", async () => {
    const target = join(dir.path, "linked");
    const tally = await store.linkTree("build", "k", target, { purpose: "source" });
    assert.notEqual(tally!.mode, "copy");
    if (tally!.mode === "hardlink") assert.ok(statSync(join(target, "a.txt")).nlink > 1);
  });

  test("an output (the default purpose) is cloned or copied, never hard-linked", async () => {
    const target = join(dir.path, "output");
    const tally = await store.linkTree("build", "k", target);
    assert.notEqual(tally!.mode, "hardlink");
    assert.equal(statSync(join(target, "a.txt")).nlink, 1);
  });

  test("CACHET_LINK_MODE=copy forces copies", async () => {
    const copying = await openStore({ cacheDir: join(dir.path, "cache"), env: { CACHET_LINK_MODE: "copy" } });
    const target = join(dir.path, "copied");
    const tally = await copying.linkTree("build", "k", target);
    assert.equal(tally!.mode, "copy");
    assert.equal(statSync(join(target, "a.txt")).nlink, 1);
    await copying.close();
  });

  test("an existing non-empty target is refused unless replace is asked", async () => {
    const target = join(dir.path, "occupied");
    mkdirSync(target);
    writeFileSync(join(target, "mine.txt"), "keep me");
    await assert.rejects(store.linkTree("build", "k", target), LinkTargetError);
    assert.equal(readFileSync(join(target, "mine.txt"), "utf8"), "keep me");
    await store.linkTree("build", "k", target, { replace: true });
    assert.deepEqual(readdirSync(target).sort(), ["a.txt", "link", "sub"]);
  });

  test("the same tree stored twice is kept once", async () => {
    const first = await store.putTree("build", "k2", source);
    const second = await store.putTree("other", "k3", source);
    assert.equal(first.digest, second.digest);
    assert.equal(readdirSync(store.layout.bucket("trees")).filter((n) => n === first.digest).length, 1);
  });
});
