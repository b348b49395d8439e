// Guards of invariant 1 ("a hit returns exactly what was stored, or it is a miss") on the two read paths a
// mutation check found unguarded: a streamed blob whose bytes changed on disk, and the in-process memo of small
// values. Only the public store API is used, so these hold whatever the store's internals become.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { chmodSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { openStore, type Store, type StoreWarning } from "../src/index.js";
import { tempDir } from "./helpers.js";

/** How a stream ended: cleanly with all its bytes, or with an error after some bytes. */
type StreamOutcome = { ended: "clean"; bytes: Buffer } | { ended: "error"; bytes: Buffer; error: Error };

async function drain(stream: Readable): Promise<StreamOutcome> {
  const parts: Buffer[] = [];
  try {
    for await (const part of stream) parts.push(Buffer.from(part as Uint8Array));
    return { ended: "clean", bytes: Buffer.concat(parts) };
  } catch (error) {
    return { ended: "error", bytes: Buffer.concat(parts), error: error as Error };
  }
}

describe("getStream checks a blob's digest as it streams", () => {
  const dir = tempDir("cachet-read-guards-");
  after(dir.cleanup);

  /** A store with a streamed blob entry of `size` random bytes; `damage` then rewrites the blob file. */
  async function damagedEntry(label: string, size: number, damage: (path: string, original: Buffer) => void) {
    const warnings: StoreWarning[] = [];
    const store = await openStore({ cacheDir: join(dir.path, label), onWarning: (warning) => warnings.push(warning) });
    const original = randomBytes(size);
    // Several chunks, so a reader that hands out chunks before checking the digest has to be caught at the end.
    const info = await store.putStream("files", "k", (async function* () {
      for (let at = 0; at < size; at += 300_000) yield original.subarray(at, Math.min(size, at + 300_000));
    })());
    assert.equal(info.storage, "blob");
    const path = store.layout.blob(info.digest);
    assert.deepEqual(readFileSync(path), original, "the blob on disk is the content written");
    chmodSync(path, 0o644);
    damage(path, original);
    return { store, warnings, original, path };
  }

  /** What every damaged read must show: no clean end, the entry dropped, one warning naming it, later reads miss. */
  async function assertCaught(store: Store, warnings: StoreWarning[], path: string): Promise<void> {
    const stream = await store.getStream("files", "k");
    // Refusing up front (undefined) is as good as failing the stream; ending cleanly is never allowed.
    if (stream !== undefined) {
      const outcome = await drain(stream);
      assert.equal(outcome.ended, "error", `the stream ended cleanly with ${outcome.bytes.length} bytes of damaged content`);
    }
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.match(warnings[0]!.code, /^CACHET_(INTEGRITY|MISSING_CONTENT)$/);
    assert.ok(warnings[0]!.message.includes("files/k"), warnings[0]!.message);
    assert.ok(warnings[0]!.message.includes(path) || warnings[0]!.message.includes(store.root), warnings[0]!.message);
    assert.equal(store.info("files", "k"), undefined, "the damaged entry is dropped");
    assert.equal(await store.get("files", "k"), undefined);
    assert.equal(await store.getStream("files", "k"), undefined);
  }

  test("an intact blob streams back whole and ends cleanly", async () => {
    const { store, warnings, original } = await damagedEntry("intact", 2_500_000, () => {});
    try {
      const outcome = await drain((await store.getStream("files", "k"))!);
      assert.equal(outcome.ended, "clean");
      assert.ok(outcome.bytes.equals(original));
      assert.deepEqual(warnings, []);
    } finally {
      await store.close();
    }
  });

  test("one byte changed (same size) makes the stream fail, never end cleanly; the entry is dropped with a warning", async () => {
    for (const [label, offset] of [["first-chunk", 17], ["last-chunk", 2_499_990]] as const) {
      const { store, warnings, path } = await damagedEntry(`flip-${label}`, 2_500_000, (file, bytes) => {
        const changed = Buffer.from(bytes);
        changed[offset] = changed[offset]! ^ 0x40;
        writeFileSync(file, changed);
      });
      try {
        await assertCaught(store, warnings, path);
      } finally {
        await store.close();
      }
    }
  });

  test("a truncated blob makes the stream fail, never end cleanly; the entry is dropped with a warning", async () => {
    for (const [label, length] of [["half", 1_250_000], ["one-byte-short", 2_499_999], ["empty", 0]] as const) {
      const { store, warnings, path } = await damagedEntry(`truncated-${label}`, 2_500_000, (file) => truncateSync(file, length));
      try {
        await assertCaught(store, warnings, path);
      } finally {
        await store.close();
      }
    }
  });
});

describe("the in-process memo of small values hands out copies", () => {
  const dir = tempDir("cachet-memo-guards-");
  after(dir.cleanup);

  test("a value read many times stays what was stored, though every caller scribbles on the bytes it got", async () => {
    const store = await openStore({ cacheDir: dir.path });
    try {
      await store.put("memo", "k", "original value");
      // The memo admits a row on its second read and answers from the third on; read well past that, through
      // every read call, both within one turn of the event loop and across turns (new read windows).
      const reads: Array<[string, () => Promise<Uint8Array | undefined>]> = [
        ["get", () => store.get("memo", "k")],
        ["getValue", async () => (await store.getValue("memo", "k"))?.data],
        ["getEntry", async () => (await store.getEntry("memo", "k"))?.data],
      ];
      for (let round = 0; round < 6; round++) {
        for (const [call, read] of reads) {
          const bytes = await read();
          assert.ok(bytes, `${call} #${round}: miss`);
          assert.equal(Buffer.from(bytes).toString(), "original value", `${call} #${round} returned bytes a caller changed`);
          bytes.fill(0x21); // a caller reusing its buffer
        }
        if (round % 2 === 1) await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      await store.close();
    }
  });

  test("two callers holding the same hit do not see each other's changes", async () => {
    const store = await openStore({ cacheDir: join(dir.path, "pair") });
    try {
      await store.put("memo", "pair", "shared value");
      for (let i = 0; i < 4; i++) await store.get("memo", "pair"); // memoized by now
      const [first, second] = await Promise.all([store.get("memo", "pair"), store.get("memo", "pair")]);
      first!.fill(0x3f);
      assert.equal(Buffer.from(second!).toString(), "shared value");
      assert.equal(Buffer.from((await store.get("memo", "pair"))!).toString(), "shared value");
    } finally {
      await store.close();
    }
  });
});
