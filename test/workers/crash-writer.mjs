// Child process of store-crash.test.ts: writes self-describing entries into a cache forever, until the test
// SIGKILLs it. Runs on the built store (dist/) so hundreds of starts stay cheap.
//
//   node crash-writer.mjs <cacheDir> <scratchDir> <writerId> [mode]
//
// mode "random" (default): a random mix of inline puts, blob puts, streamed blob puts (chunked, yielding between
// chunks so a kill lands mid-stream; some large enough to be hashed on the store's worker thread), tree puts, deletes, and reads that verify what they see.
// mode "stall-stream": starts one streamed put, writes half of it, prints "mid" and waits to be killed.
//
// Prints "ready" once the store is open, then "+" after each finished operation. Anything wrong it sees goes to stderr as a line starting "BAD".
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { openStore } from "../../dist/store/index.js";
import { decodeValue, encodeValue, verifyTree, writeTree } from "./self-describing.mjs";

const [cacheDir, scratch, writerArg, mode = "random"] = process.argv.slice(2);
const writer = Number(writerArg);
const NAMES = ["crash-a", "crash-b"];
const KEYS = 12;

const bad = (message) => process.stderr.write(`BAD writer ${writer}: ${message}\n`);
const store = await openStore({
  cacheDir,
  onWarning: (warning) => bad(`warning ${warning.code}: ${warning.message}`),
});
process.stdout.write("ready\n");

const pick = (list) => list[Math.floor(Math.random() * list.length)];
const between = (low, high) => low + Math.floor(Math.random() * (high - low + 1));
const yieldNow = () => new Promise((resolve) => setImmediate(resolve));

async function* chunked(bytes, size) {
  for (let offset = 0; offset < bytes.byteLength; offset += size) {
    yield bytes.subarray(offset, offset + size);
    await yieldNow();
  }
}

if (mode === "stall-stream") {
  // 12 MiB: past half of it, the store hashes the stream on its worker thread when the kill lands.
  const value = encodeValue({ name: "crash-stall", key: `stall-${writer}`, writer, seq: 0 }, randomBytes(12 << 20));
  async function* stalled() {
    yield* chunked(value.subarray(0, value.byteLength / 2), 256 * 1024);
    // The store has pulled half the value: most of it is in tmp/ now, the rest in its write buffer.
    process.stdout.write("mid\n");
    setInterval(() => {}, 1 << 30); // keep the process alive until it is killed
    await new Promise(() => {});
  }
  await store.putStream("crash-stall", `stall-${writer}`, stalled());
}

for (let seq = 0; ; seq++) {
  const name = pick(NAMES);
  const key = `k${between(0, KEYS - 1)}`;
  const meta = { name, key, writer, seq };
  const roll = Math.random();
  if (roll < 0.3) {
    await store.put(name, key, encodeValue(meta, randomBytes(between(0, 12_000))));
  } else if (roll < 0.42) {
    await store.put(name, key, encodeValue(meta, randomBytes(between(17 * 1024, 200 * 1024))));
  } else if (roll < 0.62) {
    // Now and then a stream large enough to be hashed on the store's worker thread.
    const large = Math.random() < 0.1;
    const value = encodeValue(meta, randomBytes(large ? between(5 << 20, 7 << 20) : between(17 * 1024, 300 * 1024)));
    await store.putStream(name, key, chunked(value, (large ? 256 : between(4, 32)) * 1024));
  } else if (roll < 0.8) {
    const dir = join(scratch, `src-${writer}-${seq}-${process.pid}`);
    writeTree(dir, meta, randomBytes);
    await store.putTree(name, key, dir);
    rmSync(dir, { recursive: true, force: true });
  } else if (roll < 0.83) {
    await store.delete(name, key);
  } else {
    await readAndCheck(name, key);
  }
  process.stdout.write("+"); // one mark per finished operation, so the test can tell how far writers got
}

async function readAndCheck(name, key) {
  const info = store.info(name, key);
  if (info === undefined) return;
  if (info.storage === "tree") {
    const target = join(mkdtempSync(join(scratch, "read-")), "out");
    try {
      // The entry may have been replaced by a value meanwhile: then linkTree refuses, which is fine.
      const tally = await store.linkTree(name, key, target).catch((error) => {
        if (error.code === "CACHET_ENTRY_KIND") return undefined;
        throw error;
      });
      if (tally === undefined) return;
      const result = verifyTree(target);
      if (!result.ok) bad(`tree ${name}/${key}: ${result.reason}`);
      else if (result.meta.name !== name || result.meta.key !== key) bad(`tree ${name}/${key} holds ${result.meta.name}/${result.meta.key}`);
    } finally {
      rmSync(join(target, ".."), { recursive: true, force: true });
    }
    return;
  }
  const data = await store.get(name, key).catch((error) => {
    if (error.code === "CACHET_ENTRY_KIND") return undefined;
    throw error;
  });
  if (data === undefined) return;
  const result = decodeValue(data);
  if (!result.ok) bad(`value ${name}/${key}: ${result.reason}`);
  else if (result.meta.name !== name || result.meta.key !== key) bad(`value ${name}/${key} holds ${result.meta.name}/${result.meta.key}`);
}
