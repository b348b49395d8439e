import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, rmSync, writeFileSync, existsSync, statSync, chmodSync } from "node:fs";
import { join } from "node:path";
import {
  Cache,
  TaskDefinitionError,
  dir,
  explain,
  file,
  openStore,
  task,
  type Store,
  type TaskEvent,
  type StoreWarning,
} from "../src/index.js";
import { tempDir } from "./helpers.js";

const root = tempDir();
let store: Store;
before(async () => {
  store = await openStore({ cacheDir: root.path });
});
after(async () => {
  await store.close();
  root.cleanup();
});

const saltRuns: string[] = [];

function counter() {
  const calls: unknown[][] = [];
  return { calls, record: (...args: unknown[]) => calls.push(args) };
}

describe("running", () => {
  test("runs once per key; a hit returns the stored result without running", async () => {
    const { calls, record } = counter();
    const embed = task({ name: "embed", cache: true, store }, async (text: string, verbose: boolean) => {
      record(text, verbose);
      return { text, length: text.length, verbose };
    });
    assert.deepEqual(await embed("hello", false), { text: "hello", length: 5, verbose: false });
    assert.deepEqual(await embed("hello", false), { text: "hello", length: 5, verbose: false });
    await embed("hello", true);
    assert.equal(calls.length, 2);
  });

  test("the name defaults to the function's name; an anonymous function is refused", () => {
    async function summarize(text: string) {
      return text;
    }
    assert.equal(task({ store }, summarize).taskName, "summarize");
    assert.throws(() => task({ store }, ((x: number) => x) as (x: number) => number), TaskDefinitionError);
    // Arrow functions assigned to a const are named by JS.
    const named = (x: number) => x;
    assert.equal(task({ store }, named).taskName, "named");
  });

  test("a thrown error is not cached", async () => {
    let attempts = 0;
    const flaky = task({ name: "flaky", store }, async (n: number) => {
      attempts++;
      if (attempts === 1) throw new Error("boom");
      return n + 1;
    });
    await assert.rejects(flaky(1), /boom/);
    assert.equal(await flaky(1), 2);
    assert.equal(await flaky(1), 2);
    assert.equal(attempts, 2);
  });

  test("a result that cannot be stored is returned, warned about once per task, and not cached", async () => {
    const warnings: StoreWarning[] = [];
    let runs = 0;
    const makeHandler = task({ name: "handler", store, onWarning: (w) => warnings.push(w) }, async (n: number) => {
      runs++;
      return { n, callback: () => n };
    });
    const first = await makeHandler(1);
    assert.equal(first.callback(), 1);
    await makeHandler(1);
    assert.equal(runs, 2);
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]!.code, "CACHET_UNSTORABLE_RESULT");
    assert.match(warnings[0]!.message, /task "handler".*function/);
  });

  test("results round-trip: NaN, ±Infinity, -0, BigInt, Date, Map, Set, RegExp, typed arrays, Buffers, undefined", async () => {
    const value = {
      nan: NaN,
      inf: [Infinity, -Infinity],
      negZero: -0,
      big: -(2n ** 100n),
      date: new Date("2024-02-29T12:00:00Z"),
      map: new Map<unknown, unknown>([["b", 1], [{ a: 1 }, new Set([3, 1])]]),
      regexp: /a+b/gi,
      floats: new Float32Array([1.5, -2]),
      bytes: Buffer.from("buffer"),
      nothing: undefined,
      nested: [[{ deep: [null, undefined, "x"] }]],
    };
    let runs = 0;
    const produce = task({ name: "produce", store }, async () => {
      runs++;
      return value;
    });
    await produce();
    const again = await produce();
    assert.equal(runs, 1);
    assert.deepEqual(again, value);
    assert.ok(Object.is(again.negZero, -0));
    assert.ok(Buffer.isBuffer(again.bytes));
    assert.deepEqual([...again.map.keys()], ["b", { a: 1 }]);
  });

  test("inputs refused for hashing name the input path", async () => {
    class Agent {}
    const call = task({ name: "uses-client", store }, async (client: { agent: Agent }) => String(client));
    await assert.rejects(call({ agent: new Agent() }), /input "agent": cannot hash an instance of Agent/);
    const positional = task({ name: "positional-client", store }, async (client: { agent: Agent }, n: number) => n);
    await assert.rejects(positional({ agent: new Agent() }, 1), /input "client.agent": cannot hash an instance of Agent/);
  });
});

describe("keys", () => {
  test("ignoredInputs do not enter the key; a name that matches no parameter is an error at definition", async () => {
    const { calls, record } = counter();
    const fetchPage = task(
      { name: "fetch-page", cache: new Cache({ ignoredInputs: "verbose" }), store },
      async (url: string, verbose: boolean) => {
        record(url, verbose);
        return url.length;
      },
    );
    await fetchPage("https://a", false);
    await fetchPage("https://a", true);
    assert.equal(calls.length, 1);
    assert.throws(
      () => task({ name: "bad-ignore", cache: new Cache({ ignoredInputs: ["nope"] }), store }, async (a: number, b: number) => a + b),
      /ignored input "nope" matches no parameter \(parameters: a, b\)/,
    );
  });

  test("for a function taking one object, its properties are the inputs", async () => {
    const { calls, record } = counter();
    const render = task(
      { name: "render", cache: new Cache({ ignoredInputs: ["logger"] }), store },
      async ({ template, data, logger }: { template: string; data: object; logger?: unknown }) => {
        record(template, logger);
        return `${template}:${JSON.stringify(data)}`;
      },
    );
    await render({ template: "t", data: { a: 1 }, logger: "one" });
    await render({ data: { a: 1 }, template: "t", logger: "two" }); // key order and ignored logger don't matter
    assert.equal(calls.length, 1);
    assert.throws(
      () => task({ name: "bad-object", cache: new Cache({ ignoredInputs: ["nope"] }), store }, async ({ a }: { a: number }) => a),
      /matches no parameter/,
    );
  });

  test("a changed function body is a new version; an explicit version survives edits", async () => {
    const first = task({ name: "versioned", store }, async (n: number) => n + 1);
    const edited = task({ name: "versioned", store }, async (n: number) => n + 2);
    assert.equal(await first(1), 2);
    assert.equal(await edited(1), 3, "edited body must not hit the old entry");
    const pinnedA = task({ name: "pinned", cache: new Cache({ version: "v1" }), store }, async (n: number) => n + 1);
    const pinnedB = task({ name: "pinned", cache: new Cache({ version: "v1" }), store }, async (n: number) => n + 100);
    assert.equal(await pinnedA(1), 2);
    assert.equal(await pinnedB(1), 2, "same explicit version: the stored result is used");
  });

  test("the salt changes the key", async () => {
    saltRuns.length = 0;
    // (saltRuns is module-level: a captured array the function mutates would change the version between definitions.)
    const fn = async (n: number) => {
      saltRuns.push("ran");
      return n;
    };
    await task({ name: "salted", cache: new Cache({ salt: "a" }), store }, fn)(1);
    await task({ name: "salted", cache: new Cache({ salt: "a" }), store }, fn)(1);
    await task({ name: "salted", cache: new Cache({ salt: "b" }), store }, fn)(1);
    assert.equal(saltRuns.length, 2);
  });

  test("maxAge makes older entries misses, and entries dated ahead of the clock too (a clock we move, no sleeping)", async (t) => {
    const start = Date.now();
    t.mock.timers.enable({ apis: ["Date"], now: start });
    let runs = 0;
    const fresh = task({ name: "aging", cache: new Cache({ version: "1", maxAge: "1h" }), store }, async () => ++runs);
    assert.equal(await fresh(), 1);
    t.mock.timers.tick(59 * 60_000);
    assert.equal(await fresh(), 1, "59 minutes old: still fresh");
    t.mock.timers.tick(2 * 60_000);
    assert.equal(await fresh(), 2, "61 minutes old: expired, so it ran again");
    // The entry just written is now 'from the future' for a clock an hour behind: its age cannot be trusted.
    t.mock.timers.reset();
    t.mock.timers.enable({ apis: ["Date"], now: start });
    assert.equal(await fresh(), 3);
    const unlimited = task({ name: "aging", cache: new Cache({ version: "1" }), store }, async () => ++runs);
    t.mock.timers.reset();
    t.mock.timers.enable({ apis: ["Date"], now: start - 3_600_000 });
    assert.equal(await unlimited(), 3, "without maxAge an entry's date does not matter");
  });

  test("an entry in an unknown format is a miss, not a crash", async () => {
    let runs = 0;
    const future = task({ name: "future-format", cache: new Cache({ version: "1" }), store }, async () => ++runs);
    const { key } = await explain(future);
    await store.put("future-format", key, "from a newer cachet", { format: "cachet-value/99" });
    assert.equal(await future(), 1);
    assert.equal(await future(), 1);
  });
});

describe("files and directories", () => {
  const work = tempDir();
  after(work.cleanup);

  test("file() inputs hash by content, not by path or mtime", async () => {
    const a = join(work.path, "a.csv");
    const b = join(work.path, "b.csv");
    writeFileSync(a, "1,2,3\n");
    writeFileSync(b, "1,2,3\n");
    let runs = 0;
    const sum = task({ name: "sum-file", store }, async (input: ReturnType<typeof file>) => {
      runs++;
      return readFileSync(input.path, "utf8").split(",").map(Number).reduce((x, y) => x + y, 0);
    });
    assert.equal(await sum(file(a)), 6);
    assert.equal(await sum(file(b)), 6);
    assert.equal(runs, 1, "same content elsewhere is a hit");
    writeFileSync(a, "1,2,4\n");
    assert.equal(await sum(file(a)), 7);
    assert.equal(runs, 2);
  });

  test("dir() results are stored and linked back out on a hit", async () => {
    const out = join(work.path, "build-out");
    let runs = 0;
    const build = task({ name: "build", store }, async (target: string, flavor: string) => {
      runs++;
      mkdirSync(join(target, "bin"), { recursive: true });
      writeFileSync(join(target, "bin", "app"), `#!/bin/sh\necho ${flavor}\n`);
      chmodSync(join(target, "bin", "app"), 0o755);
      writeFileSync(join(target, "README"), flavor);
      return { output: dir(target), files: 2 };
    });
    const first = await build(out, "release");
    assert.equal(first.output.path, out);
    rmSync(out, { recursive: true });
    const second = await build(out, "release");
    assert.equal(runs, 1);
    assert.equal(second.files, 2);
    assert.equal(second.output.path, out);
    assert.equal(readFileSync(join(out, "README"), "utf8"), "release");
    assert.ok(statSync(join(out, "bin", "app")).mode & 0o100);
  });

  test("file() results are restored on a hit", async () => {
    const report = join(work.path, "report.txt");
    let runs = 0;
    const write = task({ name: "write-report", store }, async (text: string) => {
      runs++;
      writeFileSync(report, text);
      return file(report);
    });
    await write("contents");
    rmSync(report);
    const restored = await write("contents");
    assert.equal(runs, 1);
    assert.equal(readFileSync(restored.path, "utf8"), "contents");
  });
});

describe("refresh, no-cache and events", () => {
  test("refresh: true runs and replaces the entry", async () => {
    let runs = 0;
    const events: TaskEvent[] = [];
    const opts = { name: "refreshing", cache: new Cache({ version: "1" }), store, onEvent: (e: TaskEvent) => events.push(e) };
    const plain = task(opts, async () => ++runs);
    const refreshing = task({ ...opts, refresh: true }, async () => ++runs);
    assert.equal(await plain(), 1);
    assert.equal(await refreshing(), 2);
    assert.equal(await plain(), 2, "the refreshed result replaced the entry");
    assert.deepEqual(events.map((e) => e.kind), ["miss", "refresh", "hit"]);
    assert.ok(events.every((e) => e.task === "refreshing" && e.durationMs >= 0 && e.key.length === 64));
  });

  test("CACHET_REFRESH=1 refreshes every task, CACHET_REFRESH=a,b only those", async () => {
    let runs = 0;
    const a = task({ name: "env-a", cache: new Cache({ version: "1" }), store }, async () => ++runs);
    const b = task({ name: "env-b", cache: new Cache({ version: "1" }), store }, async () => ++runs);
    await a();
    await b();
    assert.equal(runs, 2);
    process.env.CACHET_REFRESH = "env-b,other";
    try {
      await a();
      await b();
      assert.equal(runs, 3);
      process.env.CACHET_REFRESH = "1";
      await a();
      assert.equal(runs, 4);
    } finally {
      delete process.env.CACHET_REFRESH;
    }
  });

  test("CACHET_NO_CACHE=1 turns caching off", async () => {
    let runs = 0;
    const events: TaskEvent[] = [];
    const off = task({ name: "no-cache", store, onEvent: (e) => events.push(e) }, async () => ++runs);
    process.env.CACHET_NO_CACHE = "1";
    try {
      await off();
      await off();
    } finally {
      delete process.env.CACHET_NO_CACHE;
    }
    assert.equal(runs, 2);
    assert.deepEqual(events.map((e) => e.kind), ["bypass", "bypass"]);
  });
});

describe("explain", () => {
  test("says whether a call would hit, and which component changed", async () => {
    const classify = task({ name: "classify", cache: new Cache({ version: "1" }), store }, async (text: string, options: { model: string; temperature: number }) => `${text}:${options.model}`);
    const first = await explain(classify, "hi", { model: "small", temperature: 0 });
    assert.equal(first.wouldHit, false);
    assert.match(first.reason, /no entries for task "classify"/);
    await classify("hi", { model: "small", temperature: 0 });
    const same = await explain(classify, "hi", { model: "small", temperature: 0 });
    assert.equal(same.wouldHit, true);
    const changed = await explain(classify, "hi", { model: "large", temperature: 0 });
    assert.equal(changed.wouldHit, false);
    assert.deepEqual(changed.changes.map((c) => [c.component, c.path, c.change]), [["input", "options.model", "changed"]]);
    assert.match(changed.reason, /input "options.model" changed/);

    const bumped = task({ name: "classify", cache: new Cache({ version: "2" }), store }, async (text: string, options: { model: string; temperature: number }) => `${text}:${options.model}`);
    const byVersion = await explain(bumped, "hi", { model: "small", temperature: 0 });
    assert.deepEqual(byVersion.changes.map((c) => c.component), ["version"]);
  });

  test("names a salt change", async () => {
    const fn = async (n: number) => n;
    await task({ name: "salt-explained", cache: new Cache({ salt: "one" }), store }, fn)(1);
    const result = await explain(task({ name: "salt-explained", cache: new Cache({ salt: "two" }), store }, fn), 1);
    assert.deepEqual(result.changes.map((c) => c.component), ["salt"]);
  });
});
