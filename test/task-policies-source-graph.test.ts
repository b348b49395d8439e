import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

import { Cache } from "../src/task/cache.js";
import { FunctionSourceError } from "../src/task/errors.js";
import { FunctionBodyPolicy } from "../src/task/policies/function-body.js";
import { SourceGraphPolicy, type SourceGraphEntry } from "../src/task/policies/source-graph.js";
import { task } from "../src/task/task.js";
import { runToEnd } from "./workers/child.js";
import { writeModuleBlocker } from "./helpers.js";

type AnyFn = (...args: never[]) => unknown;
type Edit = readonly [file: string, from: string, to: string];

const FIXTURES = new URL("./fixtures/source-graph/", import.meta.url);
const copies: string[] = [];
after(() => {
  for (const dir of copies) rmSync(dir, { recursive: true, force: true });
});

let counter = 0;

/**
 * Copies a fixture project to a fresh directory, installs the stand-in package `fixture-pad` at `padVersion`,
 * applies the edits, and imports `entry` from the copy.
 */
async function load(
  fixture: "ts" | "js",
  entry: string,
  edits: readonly Edit[] = [],
  padVersion = "1.0.0",
  padBody = "export function padLeft(text, width) { return text.padStart(width); }\n",
): Promise<Record<string, AnyFn>> {
  const dir = mkdtempSync(join(tmpdir(), "cachet-source-graph-"));
  copies.push(dir);
  cpSync(new URL(fixture, FIXTURES), dir, { recursive: true });
  const pkg = join(dir, "node_modules", "fixture-pad");
  mkdirSync(pkg, { recursive: true });
  writeFileSync(join(pkg, "package.json"), JSON.stringify({ name: "fixture-pad", version: padVersion, type: "module", main: "index.js" }));
  writeFileSync(join(pkg, "index.js"), padBody);
  for (const [file, from, to] of edits) {
    const path = join(dir, file);
    const text = readFileSync(path, "utf8");
    assert.ok(text.includes(from), `fixture edit: ${file} does not contain ${JSON.stringify(from)}`);
    writeFileSync(path, text.replace(from, to));
  }
  return (await import(`${pathToFileURL(join(dir, entry)).href}?copy=${++counter}`)) as Record<string, AnyFn>;
}

const policy = new SourceGraphPolicy();
const versionOf = (fn: AnyFn | undefined, salt = ""): string => {
  assert.equal(typeof fn, "function");
  return policy.getVersion(salt, { func: fn! });
};

async function tsVersion(edits: readonly Edit[] = [], padVersion?: string, padBody?: string, name = "summarize"): Promise<string> {
  return versionOf((await load("ts", "pipeline.ts", edits, padVersion, padBody))[name]);
}

async function jsVersion(edits: readonly Edit[] = []): Promise<string> {
  return versionOf((await load("js", "pipeline.mjs", edits)).analyze);
}

describe("SourceGraphPolicy on a TypeScript module (through tsx)", () => {
  let base: string;

  test("identical copies in different directories give the same version", async () => {
    base = await tsVersion();
    assert.match(base, /^[0-9a-f]{64}$/);
    assert.equal(await tsVersion(), base);
  });

  test("it lists what the task reaches, and nothing it does not", async () => {
    const mod = await load("ts", "pipeline.ts");
    const entries = policy.dependencies(mod.summarize!);
    const modules = new Set(entries.flatMap((entry: SourceGraphEntry) => ("module" in entry ? [entry.module] : [])));
    assert.deepEqual([...modules].sort(), ["./format/bullet.ts", "./pipeline.ts", "./report.ts", "./text/split.ts", "./text/tokenize.ts"]);
    assert.ok(entries.some((entry) => entry.kind === "package" && entry.name === "fixture-pad" && entry.version === "1.0.0"));
    assert.ok(entries.some((entry) => entry.kind === "builtin" && entry.name === "crypto"));
    assert.equal(entries.filter((entry) => entry.kind === "function").length, 1);
  });

  test("comments and formatting in the task do not count", async () => {
    const edited = await tsVersion([
      ["pipeline.ts", "  const words = tokenize(text)\n    .map(normalize)", "  // split, then normalize\n  const words = tokenize(text).map(normalize)"],
    ]);
    assert.equal(edited, base);
  });

  test("editing a helper the task calls changes the version", async () => {
    assert.notEqual(await tsVersion([["pipeline.ts", "return words.length * WORD_WEIGHT;", "return words.length * WORD_WEIGHT + 1;"]]), base);
    assert.notEqual(await tsVersion([["pipeline.ts", "return word.toLowerCase();", "return word.toLocaleLowerCase();"]]), base);
  });

  test("editing a constant a helper uses changes the version", async () => {
    assert.notEqual(await tsVersion([["pipeline.ts", "const WORD_WEIGHT = 10;", "const WORD_WEIGHT = 11;"]]), base);
  });

  test("editing a statement that mutates a reached declaration changes the version", async () => {
    assert.notEqual(await tsVersion([["pipeline.ts", 'seen.set("warmup", 0);', 'seen.set("warmup", 1);']]), base);
  });

  test("editing an unrelated function or class in the same file does not", async () => {
    assert.equal(await tsVersion([["pipeline.ts", 'return text.split("").reverse().join("");', "return text;"]]), base);
    assert.equal(await tsVersion([["pipeline.ts", "return `hello ${name}`;", "return `bye ${name}`;"]]), base);
    assert.equal(await tsVersion([["pipeline.ts", "/** Not used by any task. */", "/** Not used. */\nexport const EXTRA = 1;"]]), base);
  });

  test("editing a relatively imported module the task reaches changes it, transitively", async () => {
    assert.notEqual(await tsVersion([["text/tokenize.ts", "word.length > 0", "word.length > 1"]]), base);
    assert.notEqual(await tsVersion([["text/split.ts", "text.split(/\\s+/)", "text.split(/[\\s,]+/)"]]), base);
    assert.notEqual(await tsVersion([["format/bullet.ts", 'const MARKER = "-";', 'const MARKER = "*";']]), base);
    assert.notEqual(await tsVersion([["text/tokenize.ts", '"a", "an", "the"', '"a", "an", "the", "of"']]), base);
  });

  test("editing exports of those modules that the task does not reach does not", async () => {
    assert.equal(await tsVersion([["text/tokenize.ts", "word.charAt(0).toUpperCase()", "word.charAt(0)"]]), base);
    assert.equal(await tsVersion([["report.ts", 'row.join(" | ")', 'row.join(", ")']]), base);
    assert.equal(await tsVersion([["types.ts", "score: number;", "score: number;\n  extra?: string;"]]), base);
  });

  test("a package counts by its installed version, not its code", async () => {
    assert.notEqual(await tsVersion([], "1.1.0"), base);
    assert.equal(await tsVersion([], "1.0.0", "export const padLeft = (t, w) => t.padStart(w);\n"), base);
  });

  test("the salt changes the version", async () => {
    const mod = await load("ts", "pipeline.ts");
    assert.equal(versionOf(mod.summarize), base);
    assert.notEqual(versionOf(mod.summarize, "salt"), base);
  });

  test("a closure counts the enclosing declaration it captures from", async () => {
    const scaler = await tsVersion([], undefined, undefined, "scaleByThree");
    assert.notEqual(await tsVersion([["pipeline.ts", "const offset = 0;", "const offset = 1;"]], undefined, undefined, "scaleByThree"), scaler);
    assert.equal(await tsVersion([["pipeline.ts", "return word.toLowerCase();", "return word;"]], undefined, undefined, "scaleByThree"), scaler);
  });

  test("FunctionBodyPolicy does not see a helper edit that SourceGraphPolicy sees", async () => {
    const body = new FunctionBodyPolicy();
    const a = await load("ts", "pipeline.ts");
    const b = await load("ts", "pipeline.ts", [["pipeline.ts", "return words.length * WORD_WEIGHT;", "return words.length;"]]);
    assert.equal(body.getVersion("", { func: a.summarize! }), body.getVersion("", { func: b.summarize! }));
    assert.notEqual(versionOf(a.summarize), versionOf(b.summarize));
  });

  test("an explicit module option gives the same version", async () => {
    const mod = await load("ts", "pipeline.ts");
    const copy = copies[copies.length - 1]!;
    const explicit = new SourceGraphPolicy({ module: pathToFileURL(join(copy, "pipeline.ts")).href });
    assert.deepEqual(explicit.dependencies(mod.summarize!), policy.dependencies(mod.summarize!));
    assert.equal(explicit.getVersion("", { func: mod.summarize! }), base);
    const asPath = new SourceGraphPolicy({ module: join(copy, "pipeline.ts") });
    assert.equal(asPath.getVersion("", { func: mod.summarize! }), base);
  });

  test("a cached task is looked at through the function it wraps, not cachet's wrapper", async () => {
    const mod = await load("ts", "pipeline.ts");
    const cached = task({ name: "summarize", cache: false }, mod.summarize!);
    assert.notEqual(cached as unknown, mod.summarize, "task() returns a wrapper");
    assert.deepEqual(policy.dependencies(cached), policy.dependencies(mod.summarize!));
    assert.equal(policy.getVersion("", { func: cached }), base);
    const copy = copies[copies.length - 1]!;
    const explicit = new SourceGraphPolicy({ module: pathToFileURL(join(copy, "pipeline.ts")).href });
    assert.equal(explicit.getVersion("", { func: task({ name: "summarize2", cache: false }, mod.summarize!) }), base);
    const edited = await load("ts", "pipeline.ts", [["pipeline.ts", "return words.length * WORD_WEIGHT;", "return words.length;"]]);
    assert.notEqual(policy.getVersion("", { func: task({ name: "summarize", cache: false }, edited.summarize!) }), base, "a helper edit shows through the task");
  });

  test("works inside a Cache", async () => {
    const mod = await load("ts", "pipeline.ts");
    const cache = new Cache({ policies: [new SourceGraphPolicy()] });
    assert.match(cache.getVersion({ func: mod.summarize! }), /^[0-9a-f]{64}$/);
  });
});

describe("SourceGraphPolicy on plain JavaScript (.mjs and .cjs)", () => {
  let base: string;

  test("identical copies give the same version", async () => {
    base = await jsVersion();
    assert.equal(await jsVersion(), base);
  });

  test("a module-local helper and its constant count", async () => {
    assert.notEqual(await jsVersion([["pipeline.mjs", "const PRECISION = 2;", "const PRECISION = 3;"]]), base);
    assert.notEqual(await jsVersion([["pipeline.mjs", "return Number(value.toFixed(PRECISION));", "return value;"]]), base);
  });

  test("an unrelated function, and an imported but unused binding, do not", async () => {
    assert.equal(await jsVersion([["pipeline.mjs", 'return "unrelated";', 'return "changed";']]), base);
    assert.equal(await jsVersion([["lib/stats.mjs", "return Math.max(...values);", "return Math.min(...values);"]]), base);
  });

  test("an imported function and what it calls count", async () => {
    assert.notEqual(await jsVersion([["lib/stats.mjs", "total + value, 0", "total + value, 1"]]), base);
    assert.notEqual(await jsVersion([["lib/stats.mjs", "values.length === 0 ? 0", "values.length === 0 ? NaN"]]), base);
  });

  test("a module Node has not loaded (a lazy dynamic import) is read from disk and counts", async () => {
    assert.notEqual(await jsVersion([["lib/streaming.mjs", "(index + 1)", "(index + 2)"]]), base);
    const entries = policy.dependencies((await load("js", "pipeline.mjs")).analyze!);
    assert.ok(entries.some((entry) => entry.kind === "code" && entry.module === "./lib/streaming.mjs"));
  });

  test("a CommonJS module counts as a whole", async () => {
    assert.notEqual(await jsVersion([["legacy.cjs", 'count + " values"', 'count + " items"']]), base);
    const entries = policy.dependencies((await load("js", "pipeline.mjs")).analyze!);
    assert.ok(entries.some((entry) => entry.kind === "code" && entry.module === "./legacy.cjs"));
  });
});

describe("SourceGraphPolicy without an inspector", () => {
  test("asks for the module option, and with it reads the sources from disk", async () => {
    const mod = await load("js", "pipeline.mjs");
    const copy = copies[copies.length - 1]!;
    const entry = pathToFileURL(join(copy, "pipeline.mjs")).href;
    // A child process in which `node:inspector` cannot be loaded.
    const blocker = writeModuleBlocker(join(copy, "block-inspector.cjs"), ["node:inspector", "inspector"], "inspector disabled for this test");
    const policyModule = new URL("../src/task/policies/source-graph.ts", import.meta.url).href;
    const script = `
      const { SourceGraphPolicy } = await import(${JSON.stringify(policyModule)});
      const { analyze } = await import(${JSON.stringify(entry)});
      let error = "";
      try { new SourceGraphPolicy().getVersion("", { func: analyze }); } catch (e) { error = e.code + ": " + e.message; }
      const explicit = new SourceGraphPolicy({ module: ${JSON.stringify(entry)} });
      const version = explicit.getVersion("", { func: analyze });
      console.log(JSON.stringify({ error, version, entries: explicit.dependencies(analyze) }));
    `;
    const child = await runToEnd(["--require", blocker, "--import", "tsx", "--input-type=module", "--eval", script], {}, {
      cwd: new URL("..", import.meta.url).pathname,
    });
    assert.equal(child.code, 0, child.stderr);
    const result = JSON.parse(child.stdout.trim().split("\n").pop()!) as { error: string; version: string; entries: SourceGraphEntry[] };
    assert.match(result.error, /^CACHET_FUNCTION_SOURCE: .*inspector is not available.*module: import\.meta\.url/);
    assert.match(result.version, /^[0-9a-f]{64}$/);
    // The same graph is found from disk. (Digests may differ: tsx rewrites dynamic import() in what V8 runs.)
    const modules = (entries: readonly SourceGraphEntry[]): string[] =>
      [...new Set(entries.flatMap((entry) => ("module" in entry ? [entry.module] : [])))].sort();
    assert.deepEqual(modules(result.entries), modules(policy.dependencies(mod.analyze!)));
    assert.deepEqual(modules(result.entries), ["./legacy.cjs", "./lib/stats.mjs", "./lib/streaming.mjs", "./pipeline.mjs"]);
  });
});

describe("SourceGraphPolicy errors", () => {
  test("a function without a module file is refused with a clear message", () => {
    const evaluated = (0, eval)("(function fromEval() { return 1; })") as AnyFn;
    assert.throws(() => policy.getVersion("", { func: evaluated }), (e: unknown) =>
      e instanceof FunctionSourceError && /cannot find the module that defines function "fromEval"/.test(e.message) && /explicit version/.test(e.message));
    assert.throws(() => policy.getVersion("", { func: Math.max as AnyFn }), FunctionSourceError);
  });

  test("a bad module option is refused at construction", () => {
    assert.throws(() => new SourceGraphPolicy({ module: 42 as never }), /"module" must be import.meta.url/);
  });

  test("a module option naming a file without the function is refused", async () => {
    const mod = await load("js", "pipeline.mjs");
    const wrong = new SourceGraphPolicy({ module: new URL("./fixtures/source-graph/js/lib/stats.mjs", import.meta.url) });
    assert.throws(() => wrong.getVersion("", { func: mod.analyze! }), /cannot find function "analyze"/);
  });
});
