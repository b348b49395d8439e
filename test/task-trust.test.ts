// A cache that cannot be used never breaks a task call (invariant 3), for real: corrupt index files, roots a
// non-root user cannot write or read, a read-only bind mount, roots that are files or under /sys or /proc, a full
// tmpfs, a rename out of tmp/ that crosses file systems, a serialize lock held past CACHET_LOCK_TIMEOUT. Each case
// runs in its own process (warnings are once per process): the function ran, its value came back, nothing
// escaped, and there is exactly one warning per failure class, naming the cache root and a fix.
// Cases that need root (setpriv, mount) are skipped with a message where they cannot run.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, statSync, symlinkSync, truncateSync, writeSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cache, openStore, task, type StoreWarning } from "../src/index.js";

const WORKER = new URL("./workers/task-trust-worker.ts", import.meta.url).pathname;
const REPO = new URL("..", import.meta.url).pathname;
const NOBODY = 65534;

interface WorkerReport {
  results: unknown[];
  runs: number;
  warnings: StoreWarning[];
  events: string[];
  processWarnings: string[];
  escaped: string[];
}

interface WorkerOptions {
  env?: NodeJS.ProcessEnv;
  /** Run as the unprivileged user `nobody` (through setpriv). */
  asNobody?: boolean;
  timeoutMs?: number;
  /** Called with the child once "running" is printed (for the lock holder). */
  onRunning?: () => void;
}

/** Starts the worker; `report` settles when it exits (or rejects after the time limit), and the child is killed then in every case. */
function startWorker(config: object, options: WorkerOptions = {}): { child: ChildProcess; report: Promise<WorkerReport> } {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(env)) if (name.startsWith("CACHET_")) delete env[name];
  const node = [process.execPath, "--import", "tsx", WORKER, JSON.stringify(config)];
  const [command, ...args] = options.asNobody
    ? ["setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", ...node]
    : node;
  const child = spawn(command!, args, { env: { ...env, ...options.env }, cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  let onRunning = options.onRunning;
  child.stdout!.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
    if (onRunning && stdout.includes("running\n")) {
      onRunning();
      onRunning = undefined;
    }
  });
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const limit = options.timeoutMs ?? 60_000;
  const report = (async () => {
    let timer: NodeJS.Timeout | undefined;
    try {
      const code = await new Promise<number | null>((resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`the worker did not finish within ${limit} ms (stderr: ${stderr.slice(-500)})`)), limit);
        child.on("error", reject);
        child.on("close", (exitCode) => resolve(exitCode));
      });
      assert.equal(code, 0, `worker exited ${code}: ${stderr.slice(-2000)}`);
      return JSON.parse(stdout.trim().split("\n").pop()!) as WorkerReport;
    } finally {
      clearTimeout(timer);
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
  })();
  return { child, report };
}

/** Runs the worker to completion within a time limit; the child is killed in every case. */
function runWorker(config: object, options: WorkerOptions = {}): Promise<WorkerReport> {
  return startWorker(config, options).report;
}

/** The common promise of every case: every call returned the function's value and nothing escaped. */
function assertCallsAnswered(report: WorkerReport, expected: unknown, calls = 3): void {
  assert.deepEqual(report.escaped, []);
  assert.deepEqual(report.results, Array.from({ length: calls }, () => expected));
  assert.deepEqual(report.processWarnings, [], "the library printed nothing itself (warnings went to onWarning)");
  const codes = report.warnings.map((warning) => warning.code);
  assert.equal(new Set(codes).size, codes.length, `one warning per failure class, got ${codes.join(", ")}`);
  for (const warning of report.warnings) {
    assert.doesNotMatch(warning.message, /\n/);
    assert.ok(warning.message.length < 1500, "a warning is one line of bounded length");
  }
}

/** A cache that could not be used at all: the function ran on every call, one warning says what, where and how. */
function assertRanWithoutCache(report: WorkerReport, root: string, fix: RegExp): void {
  assertCallsAnswered(report, 42);
  assert.equal(report.runs, 3, "every call ran the function");
  assert.deepEqual(report.events, ["miss", "miss", "miss"], "events are still reported");
  assert.equal(report.warnings.length, 1, JSON.stringify(report.warnings));
  const [warning] = report.warnings;
  assert.equal(warning!.code, "CACHET_CACHE_UNAVAILABLE");
  assert.ok(warning!.message.includes(root), `the warning names the root ${root}: ${warning!.message}`);
  assert.match(warning!.message, /tasks run without caching/);
  assert.match(warning!.message, fix);
  assert.match(warning!.message, /CACHET_NO_CACHE=1/);
}

const scratch = mkdtempSync(join(tmpdir(), "cachet-task-trust-"));
chmodSync(scratch, 0o755); // nobody must reach the roots inside
after(() => rmSync(scratch, { recursive: true, force: true }));

let counter = 0;
const freshRoot = (label: string) => join(scratch, `${label}-${++counter}`);

/** A root with one entry in it, made by this (root) process, so its index exists. */
async function populatedRoot(label: string): Promise<string> {
  const root = freshRoot(label);
  const seeded = await runWorker({ calls: 1, input: 1 }, { env: { CACHET_CACHE_DIR: root } });
  assert.deepEqual(seeded.warnings, []);
  return root;
}

const isRoot = process.getuid?.() === 0;
const canSetpriv = isRoot && commandWorks("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "true"]);
const privilegeSkip = canSetpriv ? false : "needs root and setpriv to run a process as the user nobody";

function commandWorks(command: string, args: string[]): boolean {
  try {
    execFileSync(command, args, { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Mounts `source` on `target` (bind, read-only, or a tmpfs); the reason it cannot, or undefined. */
function tryMount(args: string[]): string | undefined {
  if (process.platform !== "linux") return `mounting needs Linux (this is ${process.platform})`;
  try {
    execFileSync("mount", args, { stdio: "pipe" });
    return undefined;
  } catch (error) {
    return `cannot mount here (${(error as { stderr?: Buffer }).stderr?.toString().trim() || (error as Error).message})`;
  }
}

describe("a broken index: compute, return, warn once", () => {
  test("an index cut in half (SQLITE_CORRUPT)", async () => {
    const root = await populatedRoot("truncated");
    const index = join(root, "index-v1", "index.sqlite");
    truncateSync(index, Math.floor(statSync(index).size / 2));
    const report = await runWorker({ calls: 3 }, { env: { CACHET_CACHE_DIR: root } });
    assertCallsAnswered(report, 42);
    // Whether the store recovers (moving the index aside) or the cache is skipped, someone says so, naming the root.
    assert.ok(report.warnings.length >= 1);
    assert.ok(report.warnings.some((warning) => warning.message.includes(root)), JSON.stringify(report.warnings));
  });

  test("a garbage first page (SQLITE_NOTADB)", async () => {
    const root = await populatedRoot("garbage");
    const fd = openSync(join(root, "index-v1", "index.sqlite"), "r+");
    try {
      writeSync(fd, randomBytes(4096), 0, 4096, 0);
    } finally {
      closeSync(fd);
    }
    const report = await runWorker({ calls: 3 }, { env: { CACHET_CACHE_DIR: root } });
    assertCallsAnswered(report, 42);
    assert.ok(report.warnings.length >= 1);
    assert.ok(report.warnings.some((warning) => warning.message.includes(root)), JSON.stringify(report.warnings));
  });
});

describe("a root this user cannot use (run as nobody)", { skip: privilegeSkip }, () => {
  test("a root that cannot be created: its parent is not writable (EACCES)", async () => {
    const parent = freshRoot("parent");
    mkdirSync(parent, { mode: 0o755 });
    const root = join(parent, "cache");
    const report = await runWorker({ calls: 3 }, { env: { CACHET_CACHE_DIR: root }, asNobody: true });
    assertRanWithoutCache(report, root, /writable by this user/);
  });

  test("an existing root owned by another user (not writable)", async () => {
    const root = await populatedRoot("foreign");
    const report = await runWorker({ calls: 3 }, { env: { CACHET_CACHE_DIR: root }, asNobody: true });
    assertRanWithoutCache(report, root, /writable by this user/);
  });

  test("a root that is not readable (mode 000)", async () => {
    const root = freshRoot("unreadable");
    mkdirSync(root);
    chownSync(root, NOBODY, NOBODY);
    chmodSync(root, 0o000);
    const report = await runWorker({ calls: 3 }, { env: { CACHET_CACHE_DIR: root }, asNobody: true });
    assertRanWithoutCache(report, root, /readable and writable by this user/);
  });
});

describe("roots that cannot be a cache", () => {
  test("CACHET_CACHE_DIR names a file", async () => {
    const root = freshRoot("file");
    writeFileSync(root, "not a directory");
    const report = await runWorker({ calls: 3 }, { env: { CACHET_CACHE_DIR: root } });
    assertRanWithoutCache(report, root, /at a directory/);
  });

  test("CACHET_CACHE_DIR under /sys", { skip: existsSync("/sys/kernel") ? false : "no /sys here" }, async () => {
    const root = "/sys/cachet-test/cache";
    const report = await runWorker({ calls: 3 }, { env: { CACHET_CACHE_DIR: root } });
    assertRanWithoutCache(report, root, /CACHET_CACHE_DIR/);
  });

  test("CACHET_CACHE_DIR=/proc/nonexist/cache finishes in bounded time", { skip: existsSync("/proc/self") ? false : "no /proc here" }, async () => {
    const root = "/proc/nonexist/cache";
    const report = await runWorker({ calls: 3 }, { env: { CACHET_CACHE_DIR: root }, timeoutMs: 20_000 });
    assertRanWithoutCache(report, root, /CACHET_CACHE_DIR/);
  });

  test("a read-only bind mount (EROFS)", async (t) => {
    const source = await populatedRoot("ro-source");
    const target = freshRoot("ro-target");
    mkdirSync(target);
    const cannot = tryMount(["--bind", "-o", "ro", source, target]);
    if (cannot) {
      t.skip(cannot);
      return;
    }
    try {
      const report = await runWorker({ calls: 3, input: 5 }, { env: { CACHET_CACHE_DIR: target } });
      // Opening needs to write (the lock file, the index's shared memory): nothing can be used.
      assertCallsAnswered(report, 10);
      assert.equal(report.runs, 3);
      assert.equal(report.warnings.length, 1, JSON.stringify(report.warnings));
      assert.ok(report.warnings[0]!.message.includes(target));
      assert.match(report.warnings[0]!.message, /read-only file system; set CACHET_CACHE_DIR to a writable directory/);
    } finally {
      execFileSync("umount", [target], { stdio: "pipe" });
    }
  });
});

describe("a full disk (a 2 MiB tmpfs)", () => {
  function mountTmpfs(t: { skip: (message: string) => void }): string | undefined {
    const mount = freshRoot("tmpfs");
    mkdirSync(mount);
    const cannot = tryMount(["-t", "tmpfs", "-o", "size=2m", "tmpfs", mount]);
    if (cannot) {
      t.skip(cannot);
      return undefined;
    }
    return mount;
  }

  test("full while opening the cache", async (t) => {
    const mount = mountTmpfs(t);
    if (!mount) return;
    try {
      // Fill it completely, then ask for a fresh root on it.
      try {
        execFileSync("dd", ["if=/dev/zero", `of=${join(mount, "filler")}`, "bs=64k"], { stdio: "pipe" });
      } catch {
        // dd stops with ENOSPC, which is the point
      }
      const root = join(mount, "cache");
      const report = await runWorker({ calls: 3 }, { env: { CACHET_CACHE_DIR: root } });
      assertRanWithoutCache(report, root, /free space on the file system/);
    } finally {
      execFileSync("umount", [mount], { stdio: "pipe" });
    }
  });

  test("full when a result is written: the value is returned, the write failure reported once", async (t) => {
    const mount = mountTmpfs(t);
    if (!mount) return;
    try {
      const root = join(mount, "cache");
      const report = await runWorker({ calls: 3, size: 200_000, input: 7, fill: join(mount, "filler") }, { env: { CACHET_CACHE_DIR: root } });
      assertCallsAnswered(report, { length: 200_002, head: "7:xxxxxx" });
      assert.equal(report.runs, 4, "the warm-up call and three calls that could not be stored");
      const failures = report.warnings.filter((warning) => warning.code === "CACHET_CACHE_WRITE_FAILED");
      assert.equal(failures.length, 1, JSON.stringify(report.warnings));
      assert.ok(failures[0]!.message.includes(root));
      assert.match(failures[0]!.message, /returned but not stored/);
      assert.match(failures[0]!.message, /no space left on device/);
      assert.match(failures[0]!.message, /free space on the file system/);
    } finally {
      execFileSync("umount", [mount], { stdio: "pipe" });
    }
  });
});

describe("a rename out of tmp/ that fails after the function ran", () => {
  const otherFs = "/dev/shm";
  const crossDevice = existsSync(otherFs) && statSync(otherFs).dev !== statSync(scratch).dev;
  test("tmp/ on another file system (EXDEV): the value is returned, one write warning", { skip: crossDevice ? false : `needs ${otherFs} on another file system than ${scratch}` }, async () => {
    const root = await populatedRoot("xdev");
    const elsewhere = mkdtempSync(join(otherFs, "cachet-xdev-"));
    try {
      rmSync(join(root, "tmp"), { recursive: true, force: true });
      symlinkSync(elsewhere, join(root, "tmp"));
      const report = await runWorker({ calls: 3, size: 100_000, input: 9 }, { env: { CACHET_CACHE_DIR: root } });
      assertCallsAnswered(report, { length: 100_002, head: "9:xxxxxx" });
      assert.equal(report.runs, 3);
      assert.deepEqual(report.events, ["miss", "miss", "miss"]);
      assert.equal(report.warnings.length, 1, JSON.stringify(report.warnings));
      const [warning] = report.warnings;
      assert.equal(warning!.code, "CACHET_CACHE_WRITE_FAILED");
      assert.ok(warning!.message.includes(root));
      assert.match(warning!.message, /EXDEV/);
      assert.match(warning!.message, /must be on the same file system as the cache/);
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });
});

describe("serialize: a waiter whose lock wait times out", () => {
  test("computes the value itself, with one warning naming CACHET_LOCK_TIMEOUT", async () => {
    const root = freshRoot("lock-timeout");
    let markRunning: () => void;
    const running = new Promise<void>((resolve) => (markRunning = resolve));
    const holder = startWorker({ calls: 1, serialize: true, hold: true }, { env: { CACHET_CACHE_DIR: root }, timeoutMs: 60_000, onRunning: () => markRunning() });
    holder.report.catch(() => {}); // it is killed below
    try {
      const state = await Promise.race([running.then(() => "running"), holder.report.then(() => "exited", () => "failed")]);
      assert.equal(state, "running", "the holder runs the function and holds the key's lock");
      const report = await runWorker({ calls: 1, serialize: true }, { env: { CACHET_CACHE_DIR: root, CACHET_LOCK_TIMEOUT: "1" }, timeoutMs: 30_000 });
      assertCallsAnswered(report, 42, 1);
      assert.equal(report.runs, 1, "the waiter ran the function itself");
      assert.deepEqual(report.events, ["miss"]);
      assert.equal(report.warnings.length, 1, JSON.stringify(report.warnings));
      const [warning] = report.warnings;
      assert.equal(warning!.code, "CACHET_CACHE_LOCK_FAILED");
      assert.match(warning!.message, /ran without waiting for another caller of the same key/);
      assert.match(warning!.message, /waited 1s for the lock .*locks-v1/);
      assert.match(warning!.message, /raise CACHET_LOCK_TIMEOUT/);
      assert.doesNotMatch(warning!.message, /--force/, "no CLI advice for a library user");
    } finally {
      holder.child.kill("SIGKILL");
    }
  });
});

describe("in process: a store that fails on every call", () => {
  test("a closed store: the function runs, its value returns, one read and one write warning", async () => {
    const root = freshRoot("closed");
    const store = await openStore({ cacheDir: root });
    await store.close();
    const warnings: StoreWarning[] = [];
    let runs = 0;
    const square = task({ name: "square", cache: new Cache({ version: "1" }), store, onWarning: (w) => warnings.push(w) }, async (n: number) => {
      runs++;
      return n * n;
    });
    const cube = task({ name: "cube", cache: new Cache({ version: "1" }), store, onWarning: (w) => warnings.push(w) }, async (n: number) => n ** 3);
    assert.equal(await square(3), 9);
    assert.equal(await square(3), 9);
    assert.equal(await cube(2), 8);
    assert.equal(runs, 2);
    assert.deepEqual(warnings.map((w) => w.code).sort(), ["CACHET_CACHE_READ_FAILED", "CACHET_CACHE_WRITE_FAILED"]);
    for (const warning of warnings) assert.ok(warning.message.includes(root));
  });

  test("the cached function never throws synchronously: a throwing getter or an unhashable input rejects its promise", async () => {
    const root = freshRoot("sync");
    const store = await openStore({ cacheDir: root });
    try {
      // One destructured parameter: its properties are read to name the inputs, before anything is hashed.
      const call = task({ name: "sync-throw", cache: new Cache({ version: "1" }), store }, async ({ x }: { x: number }) => x);
      const hostile = Object.defineProperty({}, "x", {
        enumerable: true,
        get(): number {
          throw new Error("getter exploded");
        },
      }) as { x: number };
      let pending: Promise<number> | undefined;
      assert.doesNotThrow(() => (pending = call(hostile)));
      await assert.rejects(pending!, /getter exploded/);
      let unhashable: Promise<number> | undefined;
      assert.doesNotThrow(() => (unhashable = call({ x: 1, f: () => 1 } as never)));
      await assert.rejects(unhashable!, /input "f": cannot hash a function/);
    } finally {
      await store.close();
    }
  });
});
