// Child process of store-locks.test.ts: holds the cache (or one key's lock) until told to let go or killed.
// Runs on the built store (dist/).
//
//   node lock-holder.mjs store <cacheDir>                          open the store (holds .lock shared)
//   node lock-holder.mjs key <cacheDir> <name> <key> <timeoutSec>  open the store and take Store.lockKey
//
// Prints "waiting" if the key lock is busy, then "ready" (store) or "locked" (key) once it holds it; lets go,
// closes the store and exits 0 when its stdin closes. A failure prints "error <code> <message>" to stderr
// and exits 3.
import { openStore } from "../../dist/store/index.js";

const [mode, cacheDir, name, key, timeout] = process.argv.slice(2);

try {
  const store = await openStore({ cacheDir });
  let release = () => {};
  if (mode === "key") {
    const lock = await store.lockKey(name, key, {
      timeoutSeconds: Number(timeout),
      onWait: () => process.stdout.write("waiting\n"),
    });
    release = () => lock.release();
    process.stdout.write("locked\n");
  } else {
    process.stdout.write("ready\n");
  }
  process.stdin.resume();
  process.stdin.on("end", async () => {
    release();
    await store.close();
    process.exit(0);
  });
} catch (error) {
  process.stderr.write(`error ${error.code} ${error.message}\n`);
  process.exit(3);
}
