// file() and dir() say what went wrong in words: which input (or result) names a missing file, what file() takes,
// and which of file() and dir() fits the path.
import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FileRefError, dir, explain, file, task, type StoreWarning } from "../src/index.js";
import { suiteStore } from "./suite-store.js";

const suite = suiteStore();
const work = join(suite.root, "work");
before(() => {
  mkdirSync(join(work, "site"), { recursive: true });
  writeFileSync(join(work, "notes.txt"), "notes");
});

function fileRefError(message: RegExp, where?: string) {
  return (error: unknown) => {
    assert.ok(error instanceof FileRefError, String(error));
    assert.equal(error.code, "CACHET_FILE_REF");
    assert.match(error.message, message);
    if (where !== undefined) assert.equal(error.path, where);
    return true;
  };
}

describe("file() and dir() as inputs", () => {
  test("a missing file or directory names the input and the path", async () => {
    let runs = 0;
    const count = task({ name: "count-lines", store: suite.store }, async (src: unknown, flavor: string) => {
      runs++;
      return flavor;
    });
    const missing = join(work, "missing.txt");
    await assert.rejects(count(file(missing), "a"), fileRefError(new RegExp(`^input "src": no such file ${missing}$`), "src"));
    await assert.rejects(count(dir(join(work, "gone")), "a"), fileRefError(/^input "src": no such directory .*gone$/));
    await assert.rejects(count({ sources: [file(join(work, "notes.txt")), file(missing)] }, "a"), fileRefError(/^input "src\.sources\[1\]": no such file /));
    await assert.rejects(count(file(join(work, "notes.txt", "inside")), "a"), fileRefError(/^input "src": no such file .*notes\.txt\/inside$/));
    // explain keys the call the same way, so it says the same.
    await assert.rejects(explain(count, file(missing), "a"), fileRefError(/^input "src": no such file /));
    assert.equal(runs, 0);
  });

  test("file() given a directory suggests dir(), and dir() given a file suggests file()", async () => {
    const read = task({ name: "read-input", store: suite.store }, async (src: unknown) => String(src));
    await assert.rejects(read(file(join(work, "site"))), fileRefError(/^input "src": .*\/site is a directory; use dir\(\) for a directory$/));
    await assert.rejects(read(dir(join(work, "notes.txt"))), fileRefError(/^input "src": .*\/notes\.txt is not a directory; use file\(\) for a file$/));
    assert.equal(await read(file(join(work, "notes.txt"))), join(work, "notes.txt"));
  });

  test("file() and dir() take a path string and say so", () => {
    assert.throws(() => file(123 as never), fileRefError(/^file\(path\) takes a file's path as a non-empty string, got a number \(123\)$/));
    assert.throws(() => file(""), fileRefError(/^file\(path\) takes a file's path as a non-empty string, got a string \(""\)$/));
    assert.throws(() => file(undefined as never), fileRefError(/got undefined$/));
    assert.throws(() => dir({ path: "/tmp" } as never), fileRefError(/^dir\(path\) takes a directory's path as a non-empty string, got a plain object$/));
  });
});

describe("file() and dir() as results", () => {
  test("a result naming a missing file, or a directory through file(), is returned with one warning saying so", async () => {
    const warnings: StoreWarning[] = [];
    const onWarning = (warning: StoreWarning) => warnings.push(warning);
    const missing = join(work, "never-written.txt");
    const lost = task({ name: "lost-output", store: suite.store, onWarning }, async () => ({ report: file(missing) }));
    assert.equal((await lost()).report.path, missing);
    const wrongKind = task({ name: "wrong-kind-output", store: suite.store, onWarning }, async () => file(join(work, "site")));
    assert.equal((await wrongKind()).path, join(work, "site"));
    assert.deepEqual(
      warnings.map((warning) => warning.code),
      ["CACHET_UNSTORABLE_RESULT", "CACHET_UNSTORABLE_RESULT"],
    );
    assert.match(warnings[0]!.message, /"lost-output" was returned but not cached: result "report": no such file .*never-written\.txt$/);
    assert.match(warnings[1]!.message, /"wrong-kind-output" was returned but not cached: result: .*\/site is a directory; use dir\(\) for a directory$/);
    for (const name of ["lost-output", "wrong-kind-output"]) {
      for await (const entry of suite.store.list(name)) assert.fail(`nothing is stored for ${name}, found ${entry.key}`);
    }
  });

  test("a dir() result that is the current directory or holds it is not stored: a hit would replace it whole", async () => {
    const here = join(work, "here");
    mkdirSync(here, { recursive: true });
    writeFileSync(join(here, "mine.txt"), "mine");
    const warnings: StoreWarning[] = [];
    const previous = process.cwd();
    process.chdir(here);
    try {
      let runs = 0;
      const whole = task({ name: "whole-cwd-output", store: suite.store, onWarning: (warning) => warnings.push(warning) }, async (target: string) => {
        runs++;
        writeFileSync(join(target === "." ? here : work, "made.txt"), "made");
        return { out: dir(target) };
      });
      for (const target of [".", "..", "."]) assert.equal((await whole(target)).out.path, target === "." ? here : work);
      assert.equal(runs, 3, "every call runs: nothing was stored to hit");
    } finally {
      process.chdir(previous);
    }
    assert.equal(warnings.length, 1, "one warning per task");
    assert.equal(warnings[0]!.code, "CACHET_UNSTORABLE_RESULT");
    assert.match(warnings[0]!.message, /result "out": .*\/here is the current directory or holds it; a hit would replace it whole/);
    for await (const entry of suite.store.list("whole-cwd-output")) assert.fail(`nothing is stored, found ${entry.key}`);
    assert.equal(readFileSync(join(here, "mine.txt"), "utf8"), "mine");
  });
});
