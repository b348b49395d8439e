// A warning handler that throws never turns a call into a failure: the warning goes to the process instead.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { Cache, task } from "../src/index.js";
import { openStore } from "../src/store/index.js";
import { tempDir } from "./helpers.js";

const scratch = tempDir("cachet-warn-");
after(scratch.cleanup);

test("an onWarning handler that throws: the task still returns its value, and the warning reaches the process", async () => {
  const emitted: string[] = [];
  const listener = (warning: Error & { code?: string }) => emitted.push(warning.code ?? "");
  process.on("warning", listener);
  try {
    const closed = await openStore({ cacheDir: join(scratch.path, "closed") });
    await closed.close(); // every use of a closed store fails: a cache failure the task must survive
    const onWarning = () => {
      throw new Error("the handler is broken");
    };
    const double = task({ name: "double", cache: new Cache({ version: "1" }), store: closed, onWarning }, async (n: number) => n * 2);
    assert.equal(await double(21), 42);
    assert.equal(await double(21), 42);
    await new Promise((resolve) => setImmediate(resolve));
    assert.ok(emitted.length >= 1, "the warning went to the process");
  } finally {
    process.off("warning", listener);
  }
});
