// Child process of the store tests: one operation on a cache from another process, then exit.
// Runs on the built store (dist/).
//
//   node store-one-op.mjs <cacheDir> put <name> <key> <value>    stores the value, prints "stored"
//   node store-one-op.mjs <cacheDir> get <name> <key>            prints "value <value>" or "miss"
//   node store-one-op.mjs <cacheDir> hold                        reads once, prints "ready", keeps the store open
//                                                                until stdin closes
import { openStore } from "../../dist/index.js";

const [cacheDir, op, name, key, value] = process.argv.slice(2);
const store = await openStore({ cacheDir });
try {
  if (op === "hold") {
    await store.get("hold", "k");
    process.stdout.write("ready\n");
    process.stdin.resume();
    await new Promise((resolve) => process.stdin.on("end", resolve));
  } else if (op === "put") {
    await store.put(name, key, value);
    process.stdout.write("stored\n");
  } else {
    const data = await store.get(name, key);
    process.stdout.write(data === undefined ? "miss\n" : `value ${Buffer.from(data).toString()}\n`);
  }
} finally {
  await store.close();
}
