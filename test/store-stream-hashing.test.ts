// Streamed blobs larger than a few MiB are hashed on the store's worker thread: the digest must be the same as
// hashing on the caller's thread, whatever the chunking; damage to the stored bytes is still refused; without a
// worker, or with one that dies mid-stream, streams are still stored under the right digest; a failed stream
// commits nothing; and a process that streamed a large blob still exits on its own.
import { after, afterEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openStore, type Store, type StoreWarning } from "../src/index.js";
import { freeSlotsForTesting, setHashWorkerModeForTesting } from "../src/hash/sha256-worker.js";
import { tempDir } from "./helpers.js";
import { workerPath } from "./workers/child.js";

const MiB = 1 << 20;
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/** `bytes` in chunks of `size` (an odd size, so chunks never line up with the store's batches). */
async function* chunksOf(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.byteLength; at += size) yield bytes.subarray(at, Math.min(bytes.byteLength, at + size));
}

/** Waits (bounded) until every slot of the hash pool is back: the worker answers for slots it was sent. */
async function allSlotsBack(): Promise<void> {
  for (let waited = 0; waited < 5000 && freeSlotsForTesting().free < freeSlotsForTesting().total; waited += 10) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.equal(freeSlotsForTesting().free, freeSlotsForTesting().total, "every slot of the hash pool is back");
}

describe("streamed blobs hashed on the worker thread", () => {
  const dir = tempDir("cachet-stream-hash-");
  const warnings: StoreWarning[] = [];
  let store: Store | undefined;
  const open = async () => (store ??= await openStore({ cacheDir: join(dir.path, "cache"), onWarning: (warning) => warnings.push(warning) }));
  after(async () => {
    await store?.close();
    dir.cleanup();
  });
  afterEach(() => setHashWorkerModeForTesting("on"));

  test("a large stream is stored under the sha256 of its bytes, whatever the chunking, and reads back whole", async () => {
    const cache = await open();
    for (const [size, chunk] of [[3 * MiB, 70_001], [4 * MiB, MiB], [4 * MiB + 1, 65_536], [21 * MiB + 7, 99_991], [9 * MiB, 9 * MiB]] as const) {
      const data = randomBytes(size);
      const info = await cache.putStream("big", `stream-${size}-${chunk}`, chunksOf(data, chunk));
      assert.equal(info.digest, sha256(data), `${size} bytes in chunks of ${chunk}`);
      assert.equal(info.size, size);
      assert.ok(Buffer.from((await cache.get("big", `stream-${size}-${chunk}`))!).equals(data));
    }
    const whole = randomBytes(11 * MiB); // one large buffer goes through the same batches
    assert.equal((await cache.put("big", "whole", whole)).digest, sha256(whole));
  });

  test("a large streamed blob whose stored bytes are then changed is refused, not returned", async () => {
    const cache = await open();
    const data = randomBytes(12 * MiB);
    const info = await cache.putStream("big", "damaged", chunksOf(data, 50_000));
    const path = cache.layout.blob(info.digest);
    chmodSync(path, 0o644);
    const changed = readFileSync(path);
    changed[7 * MiB] = changed[7 * MiB]! ^ 0x40;
    writeFileSync(path, changed);
    warnings.length = 0;
    assert.equal(await cache.get("big", "damaged"), undefined);
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.equal(warnings[0]!.code, "CACHET_INTEGRITY");
    assert.equal(cache.info("big", "damaged"), undefined, "the damaged entry is dropped");
  });

  test("without a worker thread, streams are hashed on the caller's thread to the same digests", async () => {
    const cache = await open();
    setHashWorkerModeForTesting("off");
    const data = randomBytes(10 * MiB + 3);
    const info = await cache.putStream("big", "no-worker", chunksOf(data, 123_457));
    assert.equal(info.digest, sha256(data));
    assert.ok(Buffer.from((await cache.get("big", "no-worker"))!).equals(data));
    await allSlotsBack();
  });

  test("a worker that dies mid-stream: the stream is hashed from what was written and stored right, and later streams too", async () => {
    const cache = await open();
    setHashWorkerModeForTesting("crash");
    for (const key of ["crashed", "after-crash"]) {
      const data = randomBytes(14 * MiB);
      const info = await cache.putStream("big", key, chunksOf(data, 65_536));
      assert.equal(info.digest, sha256(data), key);
      assert.ok(Buffer.from((await cache.get("big", key))!).equals(data), key);
    }
    await allSlotsBack();
  });

  test("a stream that fails past the worker's threshold commits nothing and gives every pool slot back", async () => {
    const cache = await open();
    const data = randomBytes(10 * MiB);
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield* chunksOf(data, 80_000);
      throw new Error("the source broke");
    }
    await assert.rejects(cache.putStream("big", "failed", failing()), /the source broke/);
    assert.equal(cache.info("big", "failed"), undefined);
    assert.deepEqual(readdirSync(cache.layout.tmp).filter((name) => name.startsWith("blob-")), [], "no staging file left");
    await allSlotsBack();
  });

  test("many large streams at once, more than the pool's slots: right digests, and each writer past the pool holds little memory", async () => {
    const cache = await open();
    const streams = 48;
    const chunk = randomBytes(64 * 1024);
    async function* stream(index: number): AsyncGenerator<Uint8Array> {
      yield Buffer.alloc(64 * 1024, index); // a different blob each
      for (let sent = 1; sent < 128; sent++) {
        yield chunk;
        await new Promise((resolve) => setImmediate(resolve)); // as from a network: every stream is in flight at once
      }
    }
    const expected = Array.from({ length: streams }, (_, index) => sha256(Buffer.concat([Buffer.alloc(64 * 1024, index), ...Array.from({ length: 127 }, () => chunk)])));
    const before = process.memoryUsage().arrayBuffers;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().arrayBuffers)), 5);
    try {
      const infos = await Promise.all(Array.from({ length: streams }, (_, index) => cache.putStream("many", `stream-${index}`, stream(index))));
      assert.deepEqual(infos.map((info) => info.digest), expected);
    } finally {
      clearInterval(sampler);
    }
    // 48 writers of 8 MiB: about 80 MiB of buffers with the 32 MiB pool; 300 MiB when each kept 4 MiB of its own.
    assert.ok(peak - before < 160 * MiB, `buffers grew by ${Math.round((peak - before) / MiB)} MiB for ${streams} streams`);
    for (const [index, digest] of expected.entries()) assert.equal(sha256((await cache.get("many", `stream-${index}`))!), digest);
    await allSlotsBack();
  });

  test("a process that streamed a large blob exits on its own, after the blob is stored", () => {
    const cacheDir = join(dir.path, "child-cache");
    const child = spawnSync(process.execPath, [workerPath("large-stream-put.mjs"), cacheDir], { encoding: "utf8", timeout: 60_000 });
    assert.equal(child.status, 0, `${child.signal ?? ""} ${child.stderr}`);
    const [digest, expected] = child.stdout.trim().split(" ");
    assert.equal(digest, expected);
  });
});
