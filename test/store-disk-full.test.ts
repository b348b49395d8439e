// A full disk, for real: a small tmpfs is the cache's filesystem. Writes that do not fit fail with one clear
// error (CACHET_DISK_FULL, saying where), leave no entry and nothing in tmp/, and succeed once space is freed.
// Needs permission to mount a tmpfs (Linux, root); skipped otherwise.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statfsSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { runCli } from "./helpers.js";
import { join } from "node:path";
import { openStore, StoreWriteError, type Store } from "../src/store/index.js";
import { freeSlotsForTesting } from "../src/hash/sha256-worker.js";

const MOUNT_SIZE = "2m";

/** Mounts a fresh tmpfs; returns its path, or why it could not. */
function mountTmpfs(): { path?: string; skip?: string } {
  if (process.platform !== "linux") return { skip: `a tmpfs mount needs Linux (this is ${process.platform})` };
  const path = mkdtempSync(join(tmpdir(), "cachet-disk-full-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${MOUNT_SIZE}`, "tmpfs", path], { stdio: "pipe", timeout: 30_000, killSignal: "SIGKILL" });
    return { path };
  } catch (error) {
    rmSync(path, { recursive: true, force: true });
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
    return { skip: `cannot mount a tmpfs here (${stderr || (error as Error).message})` };
  }
}

const mount = mountTmpfs();
if (mount.skip) console.log(`# skipping the disk-full tests: ${mount.skip}`);

const freeBytes = (path: string): number => {
  const stats = statfsSync(path);
  return stats.bavail * stats.bsize;
};

/** Fills the filesystem at `dir` with `file` until at most `leave` bytes are free. */
function fill(file: string, leave: number): void {
  const size = Math.max(0, freeBytes(file.slice(0, file.lastIndexOf("/"))) - leave);
  try {
    writeFileSync(file, Buffer.alloc(size));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOSPC") throw error; // full is what we wanted
  }
}

async function expectDiskFull(write: Promise<unknown>, where: RegExp): Promise<void> {
  await assert.rejects(write, (error: unknown) => {
    assert.ok(error instanceof StoreWriteError, `expected a StoreWriteError, got ${String(error)}`);
    assert.equal(error.code, "CACHET_DISK_FULL");
    assert.match(error.message, /^no space left on device while writing /);
    assert.match(error.message, where);
    assert.doesNotMatch(error.message, /\n/);
    return true;
  });
}

async function names(store: Store): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of store.list()) out.push(`${entry.name}/${entry.key}`);
  return out.sort();
}

describe("store on a full disk (tmpfs)", { skip: mount.skip }, () => {
  const mnt = mount.path!;
  const root = join(mnt, "cache");
  const filler = join(mnt, "filler");
  const outside = mkdtempSync(join(tmpdir(), "cachet-disk-full-src-"));

  after(() => {
    if (mount.path) {
      execFileSync("umount", [mount.path], { stdio: "pipe", timeout: 30_000, killSignal: "SIGKILL" });
      rmSync(mount.path, { recursive: true, force: true });
    }
    rmSync(outside, { recursive: true, force: true });
  });

  it("refuses a blob bigger than the free space with CACHET_DISK_FULL, keeps nothing of it, and takes it once space is freed", async () => {
    const store = await openStore({ cacheDir: root });
    try {
      await store.put("tool", "before", "written while there was room");
      fill(filler, 256 * 1024);
      const big = Buffer.alloc(768 * 1024);
      for (let i = 0; i < big.length; i += 4) big.writeUInt32LE(i, i);
      const tree = join(outside, "tree");
      mkdirSync(join(tree, "sub"), { recursive: true });
      writeFileSync(join(tree, "a.bin"), big.subarray(0, 400 * 1024));
      writeFileSync(join(tree, "sub", "b.bin"), big.subarray(400 * 1024));

      const where = new RegExp(`while writing ${root}/tmp/`);
      await expectDiskFull(store.put("tool", "big", big), where);
      await expectDiskFull(store.putStream("tool", "streamed", chunks(big, 64 * 1024)), where);
      await expectDiskFull(store.putTree("tool", "tree", tree), where);

      assert.deepEqual(await names(store), ["tool/before"]);
      assert.equal(await store.get("tool", "big"), undefined);
      assert.deepEqual(readdirSync(join(root, "tmp")), [], "staging leftovers in tmp/");
      assert.deepEqual(readdirSync(join(root, "trees-v1")), []);
      assert.equal(Buffer.from((await store.get("tool", "before"))!).toString(), "written while there was room");

      rmSync(filler);
      await store.put("tool", "big", big);
      await store.putStream("tool", "streamed", chunks(big, 64 * 1024));
      assert.ok(Buffer.from((await store.get("tool", "big"))!).equals(big));
      assert.ok(Buffer.from((await store.get("tool", "streamed"))!).equals(big));
      // The tree is as big as the blob already stored: free that first.
      await store.delete("tool", "streamed");
      await store.delete("tool", "big");
    } finally {
      await store.close();
      rmSync(filler, { force: true });
    }
  });

  it("refuses an inline value when the index cannot grow, naming the index, and works again once space is freed", async () => {
    rmSync(root, { recursive: true, force: true });
    const store = await openStore({ cacheDir: root });
    try {
      await store.put("tool", "before", "written while there was room");
      fill(filler, 0);
      // The index's write-ahead log may still have a little room; it cannot take 100 × 8 KiB.
      let failedAt: number | undefined;
      for (let i = 0; i < 100 && failedAt === undefined; i++) {
        try {
          await store.put("tool", `small-${i}`, Buffer.alloc(8000, i));
        } catch (error) {
          failedAt = i;
          await expectDiskFull(Promise.reject(error), new RegExp(`while writing ${join(root, "index-v1")}/`));
        }
      }
      assert.notEqual(failedAt, undefined, "100 puts of 8 KiB fitted on a full 2 MiB disk");
      assert.equal(store.info("tool", `small-${failedAt}`), undefined, "the failed put left an entry");
      assert.equal(Buffer.from((await store.get("tool", "before"))!).toString(), "written while there was room");

      rmSync(filler);
      await store.put("tool", `small-${failedAt}`, Buffer.alloc(8000, 1));
      assert.equal((await store.get("tool", `small-${failedAt}`))?.byteLength, 8000);
    } finally {
      await store.close();
      rmSync(filler, { force: true });
    }
  });

  it("creates no half-written root files when the disk is full on first use", async () => {
    const fresh = join(mnt, "fresh");
    fill(filler, 0);
    try {
      await assert.rejects(openStore({ cacheDir: fresh }), (error: unknown) => {
        assert.ok(error instanceof StoreWriteError);
        assert.equal(error.code, "CACHET_DISK_FULL");
        return true;
      });
      // Whatever got created must not be a truncated CACHEDIR.TAG that later opens would take as present.
      if (existsSync(join(fresh, "CACHEDIR.TAG"))) {
        assert.match(readFileSync(join(fresh, "CACHEDIR.TAG"), "utf8"), /^Signature: 8a477f597d28d172789f06886806bc55\n/);
      }
    } finally {
      rmSync(filler, { force: true });
    }
    const store = await openStore({ cacheDir: fresh });
    await store.close();
    assert.match(readFileSync(join(fresh, "CACHEDIR.TAG"), "utf8"), /^Signature: 8a477f597d28d172789f06886806bc55\n/);
    assert.equal(readFileSync(join(fresh, ".gitignore"), "utf8"), "*\n");
  });

  it("through the CLI: cachet run still runs the command and passes its output on, stores nothing, and stores once space is freed", async () => {
    const cliRoot = join(mnt, "cli-cache");
    const project = join(outside, "cli-project");
    mkdirSync(project, { recursive: true });
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "full-disk" }));
    // 1 MiB of output file: more than the full disk has room for.
    const make = `require("fs").writeFileSync("big.bin", Buffer.alloc(1 << 20, 7)); console.log("made")`;
    const args = ["--cache-dir", cliRoot, "run", "--name", "make", "--out", "big.bin", "--", process.execPath, "-e", make];
    (await openStore({ cacheDir: cliRoot })).close();
    fill(filler, 64 * 1024);
    try {
      const full = await runCli(args, {}, { cwd: project });
      assert.equal(full.code, 0, full.stderr);
      assert.equal(full.stdout, "made\n", "the command's own output passes through");
      assert.match(full.stderr, /no space left on device/);
      assert.equal(full.stderr.trim().split("\n").length, 1, `one warning line, got: ${full.stderr}`);
      const store = await openStore({ cacheDir: cliRoot });
      try {
        assert.deepEqual((await names(store)).filter((name) => name.startsWith("make/")), [], "no part of the run was stored");
      } finally {
        await store.close();
      }
      assert.deepEqual(readdirSync(join(cliRoot, "tmp")), [], "nothing left in tmp/");
    } finally {
      rmSync(filler, { force: true });
    }
    const roomy = await runCli(args, {}, { cwd: project });
    assert.equal(roomy.code, 0, roomy.stderr);
    assert.equal(roomy.stderr, "");
    const hit = await runCli(args, {}, { cwd: project });
    assert.equal(hit.stdout, "made\n");
    const store = await openStore({ cacheDir: cliRoot });
    try {
      assert.ok((await names(store)).some((name) => name.startsWith("make/")), "stored once there was room");
    } finally {
      await store.close();
    }
  });

  it("gives every slot of the hash pool back when streamed writes fail on a full disk, again and again", async () => {
    rmSync(root, { recursive: true, force: true });
    const store = await openStore({ cacheDir: root });
    try {
      fill(filler, 512 * 1024);
      const big = Buffer.alloc(6 * 1024 * 1024, 7);
      // More failed streams than the pool has slots: a slot lost per failure would empty it.
      for (let attempt = 0; attempt < freeSlotsForTesting().total + 2; attempt++) {
        await expectDiskFull(store.putStream("tool", `streamed-${attempt}`, chunks(big, 64 * 1024)), new RegExp(`while writing ${root}/tmp/`));
      }
      for (let waited = 0; waited < 5000 && freeSlotsForTesting().free < freeSlotsForTesting().total; waited += 10) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.deepEqual(freeSlotsForTesting(), { free: freeSlotsForTesting().total, total: freeSlotsForTesting().total }, "every slot of the hash pool is back");
      assert.deepEqual(readdirSync(join(root, "tmp")), [], "staging leftovers in tmp/");
      assert.deepEqual(await names(store), []);
    } finally {
      await store.close();
      rmSync(filler, { force: true });
    }
  });
});

async function* chunks(bytes: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let offset = 0; offset < bytes.length; offset += size) yield bytes.subarray(offset, offset + size);
}
