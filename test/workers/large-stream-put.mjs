// Child process of store-stream-hashing.test.ts: streams a 16 MiB blob into a cache (hashed on the store's worker
// thread), prints "<stored digest> <expected digest>" and ends without process.exit: it must exit on its own,
// and not before the blob is stored. Runs on the built store (dist/).
//
//   node large-stream-put.mjs <cacheDir>
import { createHash, randomBytes } from "node:crypto";
import { openStore } from "../../dist/store/index.js";

const [cacheDir] = process.argv.slice(2);
const data = randomBytes(16 << 20);
const store = await openStore({ cacheDir });
async function* chunks() {
  for (let at = 0; at < data.byteLength; at += 64 * 1024) {
    yield data.subarray(at, at + 64 * 1024);
    await new Promise((resolve) => setImmediate(resolve));
  }
}
const info = await store.putStream("big", "child", chunks());
process.stdout.write(`${info.digest} ${createHash("sha256").update(data).digest("hex")}\n`);
await store.close();
