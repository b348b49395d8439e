// Bundles the CLI that `tsc` emitted (dist/cli/main.js and what it imports) into dist/cli/cachet.js, the package's
// `bin`. A `cachet run` hit is mostly start-up: one file (plus one chunk per command, loaded when that command
// runs) costs Node a fraction of resolving, reading and compiling ~170 modules one by one.
//
// Pure-JavaScript dependencies the CLI always loads (commander, picomatch) are bundled; every other dependency
// stays an import of the installed package (native modules must, and the rest load only in the commands that use
// them). Run after `tsc` (see the `build` script); the unbundled dist/cli/main.js keeps working as before.
import { build } from "esbuild";
import { readFileSync, rmSync } from "node:fs";

const BUNDLED = new Set(["commander", "picomatch"]);
const { dependencies } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
const external = Object.keys(dependencies).filter((name) => !BUNDLED.has(name));

const outdir = new URL("../dist/cli/", import.meta.url).pathname;
rmSync(new URL("chunks", `file://${outdir}`), { recursive: true, force: true });
await build({
  entryPoints: { cachet: `${outdir}main.js` },
  outdir,
  chunkNames: "chunks/[name]-[hash]",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  external,
  // Bundled CommonJS (commander) calls `require` for Node's built-in modules: give each output file one.
  banner: { js: `import { createRequire as __cachetCreateRequire } from "node:module";\nconst require = __cachetCreateRequire(import.meta.url);` },
  legalComments: "none",
  logLevel: "warning",
});
