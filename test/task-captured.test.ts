// Variables a task function takes from an enclosing function (a factory's parameter, a loop variable) are part of
// what it computes: hashable values enter the version, read once at definition; others are named in one warning
// at definition with the fixes. Module-level names and globals do not count.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { Cache, explain, openStore, task, type KeyComponents, type StoreWarning } from "../src/index.js";
import { tempDir, writeModuleBlocker } from "./helpers.js";

const root = tempDir("cachet-captured-");
const store = await openStore({ cacheDir: root.path });
after(async () => {
  await store.close();
  root.cleanup();
});

/** Warnings of the tasks defined with `collect` as their handler. */
const warnings: StoreWarning[] = [];
const collect = (warning: StoreWarning) => warnings.push(warning);
const capturedWarnings = () => warnings.filter((warning) => warning.code === "CACHET_CAPTURED_VARIABLES");

/** The key components recorded with the entry of a call. */
async function componentsOf(fn: (...args: never[]) => unknown, ...args: unknown[]): Promise<KeyComponents> {
  const { key, task: name } = await explain(fn as (...a: unknown[]) => unknown, ...args);
  const components = store.components(name, key) as KeyComponents | undefined;
  assert.ok(components, "the call was stored with its components");
  return components;
}

const MODULE_FACTOR = 10;

// A loop at module level: `step` is a block-scoped variable, captured per iteration.
const addStep: Array<(x: number) => Promise<number>> = [];
for (const step of [1, 2]) addStep.push(task({ name: "add-step", store, onWarning: collect }, async (x: number) => x + step));

describe("captured values enter the version", () => {
  test("a factory's parameter: triple(2) does not return double(2)'s entry", async () => {
    let runs = 0;
    const makeScaler = (f: number) =>
      task({ name: "scale", store, onWarning: collect }, async function scale(x: number) {
        runs++;
        return x * f;
      });
    const double = makeScaler(2);
    const triple = makeScaler(3);
    assert.equal(await double(2), 4);
    assert.equal(await triple(2), 6);
    assert.equal(await makeScaler(2)(2), 4, "a new definition with the same value hits");
    assert.equal(runs, 2);
    const components = await componentsOf(triple, 2);
    assert.deepEqual(Object.keys(components.captured ?? {}), ["f"], "`runs` is state the function writes, not a value it is parametrized by");
  });

  test("a loop variable at module level", async () => {
    assert.equal(await addStep[0]!(10), 11);
    assert.equal(await addStep[1]!(10), 12);
  });

  test("plain data is keyed by value: equal objects hit, a changed property misses", async () => {
    let runs = 0;
    const makeFormatter = (options: { unit: string; digits: number }) =>
      task({ name: "format", store, onWarning: collect }, async (value: number) => {
        runs++;
        return `${value.toFixed(options.digits)} ${options.unit}`;
      });
    assert.equal(await makeFormatter({ unit: "cm", digits: 1 })(2), "2.0 cm");
    assert.equal(await makeFormatter({ digits: 1, unit: "cm" })(2), "2.0 cm");
    assert.equal(await makeFormatter({ unit: "mm", digits: 1 })(2), "2.0 mm");
    assert.equal(runs, 2);
  });

  test("explain names the captured variable that changed, not the version", async () => {
    const makeGreeter = (greeting: string) => task({ name: "greet", store, onWarning: collect }, async (who: string) => `${greeting}, ${who}`);
    await makeGreeter("hello")("ada");
    const explanation = await explain(makeGreeter("hi"), "ada");
    assert.equal(explanation.wouldHit, false);
    assert.deepEqual(explanation.changes.map((change) => [change.component, change.path, change.change]), [["captured", "greeting", "changed"]]);
    assert.match(explanation.reason, /captured variable "greeting" changed/);
  });

  test("module-level names, globals and the function's own name do not count", async () => {
    const fib = task({ name: "fib-module", store, onWarning: collect }, async (n: number): Promise<number> => (n < 2 ? n : Math.max(0, n) * MODULE_FACTOR));
    assert.equal(await fib(3), 30);
    assert.equal((await componentsOf(fib, 3)).captured, undefined);
    const before = capturedWarnings().length;
    function makeCountdown(start: number) {
      const countdown = async (n: number): Promise<number> => (n <= 0 ? start : countdown(n - 1));
      return task({ name: "countdown", store, onWarning: collect }, countdown);
    }
    assert.equal(await makeCountdown(7)(3), 7);
    assert.deepEqual(Object.keys((await componentsOf(makeCountdown(7), 3)).captured ?? {}), ["start"]);
    assert.equal(capturedWarnings().length, before, "referring to itself is not a captured value to warn about");
  });

  test("an explicit version is the user's promise: captured values are not read", async () => {
    let runs = 0;
    const makePinned = (f: number) =>
      task({ name: "pinned-scale", cache: new Cache({ version: "1" }), store, onWarning: collect }, async (x: number) => {
        runs++;
        return x * f;
      });
    const before = capturedWarnings().length;
    assert.equal(await makePinned(2)(5), 10);
    assert.equal(await makePinned(3)(5), 10, "same version, same input: the stored result");
    assert.equal(runs, 1);
    const unhashable = () => 1;
    task({ name: "pinned-fn", cache: new Cache({ version: "1" }), store, onWarning: collect }, async () => unhashable());
    assert.equal(capturedWarnings().length, before);
  });
});

describe("captured values that cannot be keyed", () => {
  class Client {
    constructor(readonly region: string) {}
  }

  test("one warning at definition names each variable and the three fixes", () => {
    const before = capturedWarnings().length;
    const makeFetcher = (client: Client, log: (line: string) => void, retries: number) =>
      task({ name: "fetcher", store, onWarning: collect }, async (url: string) => {
        log(url);
        return `${client.region}:${url}:${retries}`;
      });
    makeFetcher(new Client("eu"), () => {}, 3);
    const added = capturedWarnings().slice(before);
    assert.equal(added.length, 1);
    const message = added[0]!.message;
    assert.match(message, /task "fetcher" uses variables of an enclosing function whose values cannot be part of its key/);
    assert.match(message, /client \(cannot hash an instance of Client\)/);
    assert.match(message, /log \(cannot hash a function\)/);
    assert.doesNotMatch(message, /retries/, "a number is keyed, not warned about");
    assert.match(message, /Pass them as inputs, give the Cache an explicit version, or list them in ignoredInputs \("client", "log"\)/);
    makeFetcher(new Client("us"), () => {}, 3);
    assert.equal(capturedWarnings().length, before + 1, "a factory defining the same task again does not warn again");
  });

  test("listing them in ignoredInputs silences the warning (and leaves them out of the key)", async () => {
    const before = capturedWarnings().length;
    let runs = 0;
    const makeFetcher = (client: Client, retries: number) =>
      task({ name: "fetcher-ignoring", cache: new Cache({ ignoredInputs: ["client", "retries"] }), store, onWarning: collect }, async (url: string) => {
        runs++;
        return `${client.region}:${url}:${retries}`;
      });
    assert.equal(await makeFetcher(new Client("eu"), 1)("x"), "eu:x:1");
    assert.equal(await makeFetcher(new Client("us"), 2)("x"), "eu:x:1", "ignored: the caller said they do not matter");
    assert.equal(runs, 1);
    assert.equal(capturedWarnings().length, before);
  });

  test("an arrow function's `this` from an enclosing class is named too", () => {
    const before = capturedWarnings().length;
    class Service {
      readonly run;
      constructor(readonly base: number) {
        this.run = task({ name: "service-run", store, onWarning: collect }, async (x: number) => this.base * x);
      }
    }
    new Service(2);
    const added = capturedWarnings().slice(before);
    assert.equal(added.length, 1);
    assert.match(added[0]!.message, /this \(the `this` of the function that defined it/);
    assert.match(added[0]!.message, /ignoredInputs \("this"\)/);
    class Quiet {
      readonly run;
      constructor(readonly base: number) {
        this.run = task({ name: "quiet-run", cache: new Cache({ ignoredInputs: "this" }), store, onWarning: collect }, async (x: number) => this.base * x);
      }
    }
    new Quiet(2);
    assert.equal(capturedWarnings().length, before + 1);
  });
});

describe("CommonJS", () => {
  const scalers = createRequire(import.meta.url)("./fixtures/captured/scalers.cjs") as {
    addOffset: (x: number) => Promise<number>;
    makeScaler: (factor: number) => (x: number) => Promise<number>;
  };

  test("the module's top level is not an enclosing function; a factory's parameter is", async () => {
    const addOffset = task({ name: "cjs-add-offset", store, onWarning: collect }, scalers.addOffset);
    assert.equal(await addOffset(1), 101);
    assert.equal((await componentsOf(addOffset, 1)).captured, undefined);
    const double = task({ name: "cjs-scale", store, onWarning: collect }, scalers.makeScaler(2));
    const triple = task({ name: "cjs-scale", store, onWarning: collect }, scalers.makeScaler(3));
    assert.equal(await double(1), 102);
    assert.equal(await triple(1), 103);
    assert.deepEqual(Object.keys((await componentsOf(triple, 1)).captured ?? {}), ["factor"]);
  });
});

describe("without an inspector", () => {
  test("the warning names every variable that may be captured (not module-level names or globals)", () => {
    const dir = tempDir("cachet-uninspected-");
    try {
      const blocker = writeModuleBlocker(join(dir.path, "block-inspector.cjs"), ["node:inspector", "inspector"], "inspector disabled for this test");
      const fixture = new URL("./fixtures/captured/uninspected.ts", import.meta.url).pathname;
      const child = spawnSync(process.execPath, ["--require", blocker, "--import", "tsx", fixture, join(dir.path, "cache")], {
        encoding: "utf8",
        cwd: new URL("..", import.meta.url).pathname,
        timeout: 60_000,
        killSignal: "SIGKILL",
      });
      assert.equal(child.status, 0, child.stderr);
      const result = JSON.parse(child.stdout.trim().split("\n").pop()!) as { first: number; warnings: StoreWarning[] };
      assert.equal(result.first, 102);
      assert.equal(result.warnings.length, 1, JSON.stringify(result.warnings));
      const message = result.warnings[0]!.message;
      assert.equal(result.warnings[0]!.code, "CACHET_CAPTURED_VARIABLES");
      assert.match(message, /may use variables of an enclosing function, and without Node's inspector their values cannot be read/);
      assert.match(message, /factor \(its value cannot be read without Node's inspector\)/);
      assert.doesNotMatch(message, /offset|Math/);
      assert.match(message, /ignoredInputs \("factor"\)/);
    } finally {
      dir.cleanup();
    }
  });
});
