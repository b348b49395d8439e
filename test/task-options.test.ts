// task()'s options are checked as strictly as Cache's (unknown names with a suggestion, wrong types), and an
// onEvent handler that fails never fails a call.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  Cache,
  CacheConfigError,
  ImageSpec,
  PodTemplate,
  TaskDefinitionError,
  configureTasks,
  task,
  type StoreWarning,
  type TaskEvent,
} from "../src/index.js";
import { suiteStore } from "./suite-store.js";

const suite = suiteStore();

async function double(x: number): Promise<number> {
  return x * 2;
}

function refusal(pattern: RegExp) {
  return (error: unknown) => error instanceof TaskDefinitionError && error.code === "CACHET_TASK_DEFINITION" && pattern.test(error.message);
}

describe("task() options", () => {
  test("an unknown option is refused with the nearest known name and the list", () => {
    const cases: Array<[string, string]> = [
      ["nmae", "name"],
      ["onevent", "onEvent"],
      ["cahce", "cache"],
      ["podTemplateNmae", "podTemplateName"],
      ["refersh", "refresh"],
      ["onWarnings", "onWarning"],
    ];
    for (const [given, meant] of cases) {
      assert.throws(
        () => task({ [given]: true } as never, double),
        refusal(new RegExp(`^task\\(options, fn\\): unknown option "${given}" \\(did you mean "${meant}"\\? known options: name, cache, .*onWarning\\)$`)),
        given,
      );
    }
    // Nothing close: no guess, only the list.
    assert.throws(() => task({ verbose: true } as never, double), (error: unknown) => {
      assert.ok(error instanceof TaskDefinitionError);
      assert.match(error.message, /unknown option "verbose" \(known options: name, cache,/);
      assert.doesNotMatch(error.message, /did you mean/);
      return true;
    });
    // Names of Object.prototype are not options either.
    assert.throws(() => task(JSON.parse('{"constructor": 1}') as never, double), refusal(/unknown option "constructor"/));
  });

  test("Cache options get the same suggestion", () => {
    assert.throws(
      () => new Cache({ serialise: true } as never),
      (error: unknown) => error instanceof CacheConfigError && /unknown option "serialise" \(did you mean "serialize"\? known options: version,/.test(error.message),
    );
  });

  test("each option must have its type; the message names the option, what it takes and what it got", () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ name: 42 }, /^task option "name" must be a non-empty string, got a number \(42\)$/],
      [{ name: "" }, /task option "name" must be a non-empty string, got a string \(""\)/],
      [{ cache: "yes" }, /task option "cache" must be true, false or a Cache, got a string \("yes"\)/],
      [{ cache: { version: "1" } }, /task option "cache" must be true, false or a Cache, got a plain object/],
      [{ containerImage: 3 }, /task option "containerImage" must be an image name \(a string\) or an ImageSpec, got a number/],
      [{ podTemplate: { spec: {} } }, /task option "podTemplate" must be a PodTemplate, got a plain object/],
      [{ podTemplateName: ["a"] }, /task option "podTemplateName" must be a string, got an array/],
      [{ refresh: "true" }, /task option "refresh" must be a boolean, got a string/],
      [{ onEvent: "log" }, /task option "onEvent" must be a function, got a string/],
      [{ onWarning: {} }, /task option "onWarning" must be a function, got a plain object/],
      [{ store: { cacheDir: "/tmp/x" } }, /task option "store" must be a CacheStore \(such as openStore\(\) returns\), got a plain object lacking root, put, putStream, getValue/],
      [{ store: "/tmp/cache" }, /task option "store" must be a CacheStore .*got a string/],
    ];
    for (const [options, pattern] of cases) {
      assert.throws(() => task(options as never, double), refusal(pattern), JSON.stringify(options));
    }
    for (const options of [null, "name", ["name"], 7]) {
      assert.throws(() => task(options as never, double), refusal(/^task\(options, fn\): options must be an object, got /), String(options));
    }
    assert.throws(() => task({ name: "x" }, "fn" as never), refusal(/fn must be a function, got a string/));
  });

  test("valid options pass, and an option set to undefined counts as not given", () => {
    const spec = new ImageSpec({ name: "ghcr.io/example/app", packages: ["numpy"] });
    const template = new PodTemplate({ primaryContainerName: "main", podSpec: { containers: [{ name: "main" }] } });
    const all = task(
      {
        name: "all-options",
        cache: new Cache({ version: "1" }),
        containerImage: spec,
        podTemplate: template,
        podTemplateName: "gpu",
        refresh: false,
        store: suite.store,
        onEvent: () => {},
        onWarning: () => {},
      },
      double,
    );
    assert.equal(all.taskName, "all-options");
    assert.equal(task({ containerImage: "python:3.12", cache: false }, double).cache, undefined);
    assert.equal(task({ name: undefined, store: undefined, onEvent: undefined }, double).taskName, "double");
  });

  test("configureTasks refuses a store that has some of a store's methods but not all", () => {
    assert.throws(
      () => configureTasks({ store: { root: "/tmp", put: async () => {}, getValue: async () => undefined } as never }),
      refusal(/configureTasks\(\{ store \}\): the store lacks putStream, getStream, .* of the CacheStore interface/),
    );
  });
});

/** A task of `fn` whose events go to `onEvent` and whose warnings are collected. */
function observed<A extends unknown[], R>(name: string, onEvent: (event: TaskEvent) => unknown, fn: (...args: A) => Promise<R>) {
  const warnings: StoreWarning[] = [];
  const run = task({ name, store: suite.store, onWarning: (warning) => warnings.push(warning), onEvent: onEvent as never }, fn);
  return { run, warnings };
}

describe("an onEvent handler that fails", () => {
  test("a throwing handler: every call still returns its value; one warning names the task and the reason", async () => {
    let runs = 0;
    const { run, warnings } = observed(
      "throwing-handler",
      () => {
        throw new Error("dashboard is down");
      },
      async (x: number) => {
        runs++;
        return x + 1;
      },
    );
    assert.equal(await run(1), 2); // miss
    assert.equal(await run(1), 2); // hit
    assert.equal(await run(2), 3);
    assert.equal(runs, 2);
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.equal(warnings[0]!.code, "CACHET_EVENT_HANDLER_FAILED");
    assert.match(warnings[0]!.message, /onEvent handler of task "throwing-handler" failed \(dashboard is down\)/);
  });

  test("a handler that throws on the function's own error leaves that error to the caller", async () => {
    const { run, warnings } = observed(
      "throwing-handler-on-error",
      () => {
        throw new Error("handler bug");
      },
      async () => {
        throw new Error("the function's own error");
      },
    );
    await assert.rejects(run(), /the function's own error/);
    assert.deepEqual(warnings.map((warning) => warning.code), ["CACHET_EVENT_HANDLER_FAILED"]);
  });

  test("a rejecting (async) handler is reported the same way, not as an unhandled rejection", async () => {
    const events: TaskEvent[] = [];
    const { run, warnings } = observed(
      "rejecting-handler",
      async (event) => {
        events.push(event);
        throw new Error("async sink failed");
      },
      async (x: number) => x,
    );
    assert.equal(await run(5), 5);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(events.map((event) => event.kind), ["miss"]);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!.message, /failed \(async sink failed\)/);
  });
});
