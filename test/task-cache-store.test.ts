// Tasks depend on the CacheStore interface, not on the local Store: they run on a second implementation (kept in
// memory) exactly as on the local one. Both implementations keep the interface's contract, checked here alike.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  Cache,
  CachetError,
  EntryKindError,
  StoreClosedError,
  configureTasks,
  dir,
  explain,
  file,
  openStore,
  task,
  type CacheStore,
  type TaskEvent,
} from "../src/index.js";
import { tempDir } from "./helpers.js";
import { MemoryCacheStore } from "./memory-cache-store.js";

const root = tempDir();
after(() => root.cleanup());

describe("tasks on a CacheStore that is not the local Store", () => {
  test("values, file and dir results, explain and serialize all go through the interface", async () => {
    const store = new MemoryCacheStore();
    try {
      const work = join(root.path, "memory-work");
      const events: TaskEvent[] = [];
      let runs = 0;
      const build = task({ name: "build", store, onEvent: (event) => events.push(event) }, async (flavor: string) => {
        runs++;
        mkdirSync(join(work, "site"), { recursive: true });
        writeFileSync(join(work, "site", "index.html"), flavor);
        writeFileSync(join(work, "report.txt"), `report ${flavor}`);
        return { site: dir(join(work, "site")), report: file(join(work, "report.txt")), pages: 1 };
      });
      await build("a");
      rmSync(work, { recursive: true });
      const again = await build("a");
      assert.equal(runs, 1);
      assert.equal(again.pages, 1);
      assert.equal(readFileSync(join(work, "site", "index.html"), "utf8"), "a");
      assert.equal(readFileSync(join(work, "report.txt"), "utf8"), "report a");
      assert.deepEqual(events.map((event) => event.kind), ["miss", "hit"]);
      for (const method of ["getValue", "putTree", "putStream", "put", "linkTree", "getStream"]) assert.ok(store.calls.includes(method), method);

      const why = await explain(build, "b");
      assert.equal(why.wouldHit, false);
      assert.deepEqual(why.changes.map((change) => change.path), ["flavor"]);
      assert.equal((await explain(build, "a")).wouldHit, true);

      let serialRuns = 0;
      const slow = task({ name: "slow", store, cache: new Cache({ serialize: true }) }, async (x: number) => {
        serialRuns++;
        await new Promise((resolve) => setTimeout(resolve, 50));
        return x * 2;
      });
      assert.deepEqual(await Promise.all([slow(4), slow(4), slow(4)]), [8, 8, 8]);
      assert.equal(serialRuns, 1);
    } finally {
      await store.close();
    }
  });

  test("configureTasks({ store }) takes it as the default, and no cache directory is made", async () => {
    const store = new MemoryCacheStore();
    const unused = join(root.path, "never-made");
    const previous = process.env.CACHET_CACHE_DIR;
    process.env.CACHET_CACHE_DIR = unused;
    configureTasks({ store });
    try {
      let runs = 0;
      const square = task({ name: "square" }, async (x: number) => {
        runs++;
        return x * x;
      });
      assert.equal(await square(3), 9);
      assert.equal(await square(3), 9);
      assert.equal(runs, 1);
      assert.ok(store.calls.includes("put"));
      assert.equal(existsSync(unused), false);
    } finally {
      configureTasks({ store: undefined });
      if (previous === undefined) delete process.env.CACHET_CACHE_DIR;
      else process.env.CACHET_CACHE_DIR = previous;
      await store.close();
    }
  });
});

const implementations: Array<[string, () => Promise<CacheStore>]> = [
  ["the local Store", () => openStore({ cacheDir: join(root.path, "contract-cache") })],
  ["the in-memory store", async () => new MemoryCacheStore()],
];

for (const [label, open] of implementations) {
  describe(`the CacheStore contract: ${label}`, () => {
    test("a read returns exactly what was written, with its format and creation time, or a miss", async () => {
      const store = await open();
      try {
        const written = await store.put("contract", "k1", new Uint8Array([0, 1, 2, 255]), { format: "test/1", components: { a: [1, "x"] } });
        const value = await store.getValue("contract", "k1");
        assert.deepEqual([...value!.data], [0, 1, 2, 255]);
        assert.equal(value!.format, "test/1");
        assert.equal(value!.createdAt, written.createdAt.getTime());
        assert.equal(store.info("contract", "k1")?.format, "test/1");
        assert.deepEqual(store.components("contract", "k1"), { a: [1, "x"] });
        assert.equal(await store.getValue("contract", "absent"), undefined);
        assert.equal(store.info("contract", "absent"), undefined);

        await store.putStream("contract", "k2", [Buffer.from("str"), Buffer.from("eam")]);
        const chunks: Buffer[] = [];
        for await (const chunk of (await store.getStream("contract", "k2"))!) chunks.push(Buffer.from(chunk as Uint8Array));
        assert.equal(Buffer.concat(chunks).toString(), "stream");

        const keys: string[] = [];
        for await (const entry of store.list("contract")) keys.push(entry.key);
        assert.deepEqual(keys.sort(), ["k1", "k2"]);
        assert.equal(await store.delete("contract", "k1"), true);
        assert.equal(await store.delete("contract", "k1"), false);
        assert.equal(await store.getValue("contract", "k1"), undefined);
      } finally {
        await store.close();
      }
    });

    test("trees are copied in and restored whole; reading the wrong kind is an EntryKindError", async () => {
      const store = await open();
      try {
        const source = join(root.path, `tree-source-${label.length}`);
        mkdirSync(join(source, "sub"), { recursive: true });
        writeFileSync(join(source, "sub", "a.txt"), "a");
        await store.putTree("contract", "tree", source);
        writeFileSync(join(source, "sub", "a.txt"), "edited after storing");
        const target = join(root.path, `tree-target-${label.length}`);
        assert.ok(await store.linkTree("contract", "tree", target, { replace: true }));
        assert.equal(readFileSync(join(target, "sub", "a.txt"), "utf8"), "a");
        assert.equal(await store.linkTree("contract", "absent", target), undefined);
        await assert.rejects(store.getValue("contract", "tree"), EntryKindError);
        await store.put("contract", "value", "v");
        await assert.rejects(store.linkTree("contract", "value", target), EntryKindError);
      } finally {
        await store.close();
      }
    });

    test("a key lock excludes a second holder until released", async () => {
      const store = await open();
      try {
        const first = await store.lockKey("contract", "locked");
        let second = false;
        const waiting = store.lockKey("contract", "locked").then((lock) => {
          second = true;
          return lock;
        });
        await new Promise((resolve) => setTimeout(resolve, 100));
        assert.equal(second, false);
        first.release();
        (await waiting).release();
        assert.equal(second, true);
      } finally {
        await store.close();
      }
    });

    test("misuse is a CachetError: an invalid name or key, and any call after close()", async () => {
      const store = await open();
      await assert.rejects(store.put("a/b", "k", "x"), CachetError);
      await assert.rejects(store.put("ok", "", "x"), CachetError);
      await store.close();
      await store.close();
      await assert.rejects(store.getValue("ok", "k"), StoreClosedError);
    });
  });
}
