// Child process of the store fault tests: runs one `cleanCache` or `pruneCache` through the library and reports
// the window in which it removed files (first and last removal), which lies inside its exclusive hold of the root.
//
//   node maintenance-runner.mjs <cacheDir> clean|prune [maxSizeBytes]
//
// Prints "window <firstRemovalMs> <lastRemovalMs> <files>" (no window line when it removed nothing) and exits 0,
// or prints "error <code> <message>" to stderr and exits 3.
import { cleanCache, pruneCache } from "../../dist/store/index.js";

const [cacheDir, what, maxSize] = process.argv.slice(2);
let first;
let last;
let files = 0;
const reporter = {
  item() {
    const now = Date.now();
    first ??= now;
    last = now;
    files++;
  },
};
try {
  if (what === "clean") await cleanCache({ cacheDir, reporter, lockTimeout: 60 });
  else await pruneCache({ cacheDir, reporter, lockTimeout: 60, maxSizeBytes: Number(maxSize) });
  if (first !== undefined) process.stdout.write(`window ${first} ${last} ${files}\n`);
  process.exit(0);
} catch (error) {
  process.stderr.write(`error ${error.code} ${error.message}\n`);
  process.exit(3);
}
