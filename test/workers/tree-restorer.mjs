// Child process of store-tree-restore.test.ts: restores two tree entries over one target, alternately and forever,
// until the test SIGKILLs it. Runs on the built store (dist/) so forty starts stay cheap.
//
//   node tree-restorer.mjs <cacheDir> <name> <target> <keyA> <keyB>
//
// Prints "ready" once the store is open, then "+" after each finished restore. Anything unexpected goes to
// stderr as a line starting "BAD".
import { openStore } from "../../dist/store/index.js";

const [cacheDir, name, target, ...keys] = process.argv.slice(2);
const store = await openStore({ cacheDir, onWarning: (warning) => process.stderr.write(`BAD warning ${warning.code}: ${warning.message}\n`) });
process.stdout.write("ready\n");
for (let round = 0; ; round++) {
  const tally = await store.linkTree(name, keys[round % keys.length], target, { replace: true });
  if (tally === undefined) process.stderr.write(`BAD restore of ${keys[round % keys.length]} missed\n`);
  process.stdout.write("+");
}
