// The sources on the configured store: given `openConfiguredStore()` with a remote, a download, an HTTP response
// and a git checkout made on one machine (cache root) are served on another whose origin and repository are gone.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { computeCacheKey, createCachedFetch, FILE_DIGEST_MEMO_NAME, fetchArtifact, gitSource, openConfiguredStore, openRemoteStore, TieredStore } from "../src/index.js";
import { makeRepository } from "./git-servers.js";
import { startOrigin } from "./http-origin.js";
import { postgresSkipReason, suiteDatabase } from "./remote-servers.js";

describe("sources through the shared tier", { skip: postgresSkipReason }, () => {
  const db = suiteDatabase("cachet-remote-sources-");
  const { dirs } = db;

  test("a download, a response and a checkout made on one machine are served on another without origin or repository", async () => {
    const tool = Buffer.from("a tool shared through the remote\n");
    const large = Buffer.alloc(300_000, 5); // stored apart from its head, as a blob entry of its own
    const origin = await startOrigin({
      "/dist/tool.txt": (_request, response) => void response.writeHead(200, { "cache-control": "max-age=3600" }).end(tool),
      "/page": (_request, response) => void response.writeHead(200, { "cache-control": "max-age=3600" }).end("page"),
      "/large": (_request, response) => void response.writeHead(200, { "cache-control": "max-age=3600" }).end(large),
    });
    const repository = join(dirs.path, "lib");
    const commit = makeRepository(repository, { "lib.txt": "lib\n" });
    const digest = createHash("sha256").update(tool).digest("hex");
    const urls = { tool: origin.url("/dist/tool.txt"), page: origin.url("/page"), large: origin.url("/large") };

    const first = await openConfiguredStore({ cacheDir: join(dirs.path, "machine-1"), env: { CACHET_REMOTE: db.url } });
    try {
      assert.ok(first instanceof TieredStore);
      assert.equal((await fetchArtifact(urls.tool, { store: first, sha256: digest })).fromCache, false);
      assert.equal(await (await createCachedFetch({ store: first })(urls.page)).text(), "page");
      assert.equal((await (await createCachedFetch({ store: first })(urls.large)).arrayBuffer()).byteLength, large.length);
      assert.equal((await gitSource(repository, { ref: commit, store: first })).fetched, true);
    } finally {
      await first.close(); // flushes the uploads
      await origin.close();
    }
    rmSync(repository, { recursive: true, force: true });

    const second = await openConfiguredStore({ cacheDir: join(dirs.path, "machine-2"), env: { CACHET_REMOTE: db.url } });
    try {
      const artifact = await fetchArtifact(urls.tool, { store: second, sha256: digest });
      assert.deepEqual([artifact.fromCache, readFileSync(artifact.path, "utf8")], [true, tool.toString()]);
      assert.ok(artifact.path.startsWith(join(dirs.path, "machine-2")), "restored into this machine's cache");
      const page = await createCachedFetch({ store: second })(urls.page);
      assert.deepEqual([await page.text(), page.headers.get("cache-status")], ["page", "cachet; hit"]);
      const big = await createCachedFetch({ store: second })(urls.large);
      assert.deepEqual([Buffer.from(await big.arrayBuffer()).equals(large), big.headers.get("cache-status")], [true, "cachet; hit"]);
      const checkout = await gitSource(repository, { ref: commit, store: second });
      assert.deepEqual([checkout.fromCache, checkout.fetched, readFileSync(join(checkout.path, "lib.txt"), "utf8")], [true, false, "lib\n"]);
    } finally {
      await second.close();
    }
    assert.equal(origin.count("/dist/tool.txt") + origin.count("/page") + origin.count("/large"), 3, "one request each, from the first machine");
  });

  test("the file-stat memo of cache keys stays on the machine: never uploaded, still used", async () => {
    const project = join(dirs.path, "project");
    mkdirSync(join(project, "src"), { recursive: true });
    writeFileSync(join(project, "src", "main.ts"), "export {};\n");
    // A file changed within 20 ms of a computation is not memoized (its times may not move on the next edit): wait.
    await new Promise((resolve) => setTimeout(resolve, 60));
    const specs = [{ file: "src/**" }];
    const open = () => openConfiguredStore({ cacheDir: join(dirs.path, "memo-machine"), env: { CACHET_REMOTE: db.url } });
    const first = await open();
    try {
      assert.equal((await computeCacheKey(project, specs, { store: first })).digests.read, 1);
    } finally {
      await first.close();
    }
    const second = await open();
    try {
      assert.deepEqual((await computeCacheKey(project, specs, { store: second })).digests, { read: 0, memoized: 1 });
    } finally {
      await second.close();
    }
    const remote = await openRemoteStore({ url: db.url });
    try {
      const shared: string[] = [];
      for await (const entry of remote.list(FILE_DIGEST_MEMO_NAME)) shared.push(entry.key);
      assert.deepEqual(shared, [], "no memo entry in the shared tier");
    } finally {
      await remote.close();
    }
  });
});
