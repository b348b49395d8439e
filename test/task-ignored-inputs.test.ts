// ignoredInputs on a function taking one parameter: the parameter's own name ignores the whole argument; a name
// that matches neither the parameter nor a property of the argument at the first call is reported once.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Cache, openStore, task, TaskDefinitionError, type StoreWarning } from "../src/index.js";
import { tempDir } from "./helpers.js";

const root = tempDir("cachet-ignored-");
const store = await openStore({ cacheDir: root.path });
after(async () => {
  await store.close();
  root.cleanup();
});

describe("ignoredInputs with one parameter", () => {
  test("the parameter's own name ignores the whole argument", async () => {
    let runs = 0;
    const connect = task({ name: "connect", cache: new Cache({ version: "1", ignoredInputs: "client" }), store }, async function k(client: { url: string }) {
      runs++;
      return client.url.length;
    });
    assert.equal(await connect({ url: "https://a" }), 9);
    assert.equal(await connect({ url: "https://bbbb" }), 9, "the argument is ignored as a whole");
    assert.equal(runs, 1);
    const scalar = task({ name: "connect-scalar", cache: new Cache({ version: "1", ignoredInputs: "client" }), store }, async (client: string) => client.length);
    assert.equal(await scalar("ab"), 2);
    assert.equal(await scalar("abc"), 2);
  });

  test("a property of the argument can be ignored", async () => {
    const warnings: StoreWarning[] = [];
    let runs = 0;
    const render = task(
      { name: "render-one", cache: new Cache({ version: "1", ignoredInputs: "logger" }), store, onWarning: (w) => warnings.push(w) },
      async (request: { page: string; logger?: string }) => {
        runs++;
        return request.page;
      },
    );
    await render({ page: "a", logger: "x" });
    await render({ page: "a", logger: "y" });
    assert.equal(runs, 1);
    assert.deepEqual(warnings, []);
  });

  test("a name that matches nothing at the first call is reported once, naming the parameter and the properties", async () => {
    const warnings: StoreWarning[] = [];
    const fetchPage = task(
      { name: "typo", cache: new Cache({ version: "1", ignoredInputs: ["clinet"] }), store, onWarning: (w) => warnings.push(w) },
      async (client: { url: string; retries: number }) => client.url,
    );
    assert.equal(warnings.length, 0, "not knowable at definition");
    await fetchPage({ url: "u", retries: 1 });
    await fetchPage({ url: "v", retries: 2 });
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]!.code, "CACHET_UNKNOWN_IGNORED_INPUT");
    assert.match(warnings[0]!.message, /task "typo": ignored input "clinet" matches neither the parameter "client" nor a property of the argument of its first call \(properties: url, retries\), so it ignores nothing/);
  });

  test("with several parameters an unknown name is still an error at definition (this and captured names are known)", () => {
    assert.throws(
      () => task({ name: "bad", cache: new Cache({ ignoredInputs: "nope" }), store }, async (a: number, b: number) => a + b),
      (error: unknown) => error instanceof TaskDefinitionError && /ignored input "nope" matches no parameter \(parameters: a, b\)/.test(error.message),
    );
    const offset = 1;
    assert.doesNotThrow(() => task({ name: "ok", cache: new Cache({ ignoredInputs: ["this", "offset"] }), store }, async (a: number, b: number) => a + b + offset));
  });
});

describe("ignoredInputs and parameters a transpiler renamed", () => {
  test("a name matching one parameter but for trailing digits (esbuild's `logger` → `logger2`) ignores that parameter", async () => {
    let runs = 0;
    // As esbuild emits a parameter that shadows a module-level `logger`.
    const fetchPage = task(
      { name: "fetch-page-renamed", cache: new Cache({ version: "1", ignoredInputs: "logger" }), store },
      async function fetchPage(url: string, logger2: { id: number }) {
        runs++;
        return `${url}:${logger2.id > 0}`;
      },
    );
    assert.equal(await fetchPage("a", { id: 1 }), "a:true");
    assert.equal(await fetchPage("a", { id: 2 }), "a:true", "the renamed parameter is ignored");
    assert.equal(runs, 1);
  });

  test("with two candidates (`logger2` and `logger3`) nothing is guessed: the name matches no parameter", () => {
    assert.throws(
      () => task({ name: "ambiguous", cache: new Cache({ version: "1", ignoredInputs: "logger" }), store }, async (logger2: number, logger3: number) => logger2 + logger3),
      TaskDefinitionError,
    );
  });
});
