#!/usr/bin/env node
// Runs the public HTTP caching test suite (github.com/http-tests/cache-tests, the suite behind cache-tests.fyi)
// against three fetch-shaped clients and prints a results table:
//
//   npm run build && node scripts/http-conformance.mjs /path/to/cache-tests [--json file]
//
// - `fetch`: Node's fetch, no cache (the baseline);
// - `undici`: undici 7's cache interceptor (memory store, private cache);
// - `cachet`: cachet's cachedFetch on a fresh cache directory.
//
// The suite's own server runs on 127.0.0.1; `globalThis.fetch` is replaced so that `/test/` URLs go to the client
// under test and the suite's set-up requests go to plain fetch. Each client runs in its own process (the suite's
// runner keeps its results in module state), in browser-cache (private) mode: `runTests(tests, true, base)`.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const option = (name) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);
// --clients cachet,undici runs only those; --id <test id> runs one test and prints its result.
const CLIENTS = (option("--clients") ?? "fetch,undici,cachet").split(",");
const self = fileURLToPath(import.meta.url);
const args = process.argv.slice(2);
const suite = args[0] && resolve(args[0]);
if (!suite) {
  console.error("usage: node scripts/http-conformance.mjs <path to a checkout of http-tests/cache-tests> [--json file]");
  process.exit(2);
}

if (args[1] === "--client") await runClient(args[2], args[3]);
else await main();

async function main() {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const scratch = mkdtempSync(join(tmpdir(), "cachet-conformance-"));
  const server = spawn(process.execPath, [join(suite, "test-engine/server/server.mjs")], {
    env: { ...process.env, npm_config_protocol: "http", npm_config_port: String(port), npm_config_pidfile: join(scratch, "server.pid") },
    stdio: ["ignore", "pipe", "inherit"],
  });
  try {
    await new Promise((resolveListening, reject) => {
      const timer = setTimeout(() => reject(new Error("the suite's server did not start within 20 s")), 20_000);
      server.stdout.on("data", (chunk) => {
        if (String(chunk).includes("Listening")) {
          clearTimeout(timer);
          resolveListening();
        }
      });
      server.once("exit", (code) => reject(new Error(`the suite's server exited (${code})`)));
    });
    const rows = [];
    const all = {};
    for (const client of CLIENTS) {
      const out = join(scratch, `${client}.json`);
      await runChild([self, suite, "--client", client, base, out, ...(option("--id") ? ["--id", option("--id")] : [])], scratch);
      const { summary, results } = JSON.parse((await import("node:fs")).readFileSync(out, "utf8"));
      rows.push({ client, ...summary });
      all[client] = results;
    }
    console.log("| client | tests | pass | fail | pass (required + optimal, dependencies met) | required failures |");
    console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
    for (const row of rows) console.log(`| ${row.client} | ${row.tests} | ${row.pass} | ${row.fail} | ${row.judgedPass} | ${row.requiredFailures.length} |`);
    for (const row of rows) if (row.requiredFailures.length > 0) console.log(`\n${row.client} required failures: ${row.requiredFailures.join(", ")}`);
    if (option("--id")) for (const client of CLIENTS) console.log(client, JSON.stringify(all[client]));
    if (option("--json")) writeFileSync(option("--json"), JSON.stringify({ rows, results: all }, null, 2));
  } finally {
    server.kill();
    rmSync(scratch, { recursive: true, force: true });
  }
}

function runChild(childArgs, cwd) {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, childArgs, { cwd, stdio: ["ignore", "ignore", "inherit"] });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`client ${childArgs[3]} did not finish within 10 minutes`));
    }, 600_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      if (code === 0) resolveRun();
      else reject(new Error(`client ${childArgs[3]} exited with ${code}`));
    });
  });
}

async function runClient(client, base) {
  const out = args[4];
  const plainFetch = globalThis.fetch;
  const clientFetch = await makeClient(client, plainFetch);
  globalThis.fetch = (input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    return new URL(url).pathname.startsWith("/test/") ? clientFetch(input, init) : plainFetch(input, init);
  };
  const { runTests, getResults } = await import(pathToFileURL(join(suite, "test-engine/client/runner.mjs")).href);
  const { determineTestResult, resultTypes } = await import(pathToFileURL(join(suite, "test-engine/lib/results.mjs")).href);
  const tests = (await import(pathToFileURL(join(suite, "tests/index.mjs")).href)).default;
  const only = option("--id");
  const selected = only === undefined ? tests : tests.map((set) => ({ ...set, tests: set.tests.filter((test) => test.id === only) }));
  await runTests(selected, true, base);
  const results = getResults();
  const ids = Object.keys(results);
  const requiredFailures = ids.filter((id) => determineTestResult(tests, id, results) === resultTypes.fail);
  const pass = ids.filter((id) => results[id] === true).length;
  // As cache-tests.fyi counts: passed required and optimal tests whose dependencies passed (checks not counted).
  const judgedPass = ids.filter((id) => determineTestResult(tests, id, results) === resultTypes.pass).length;
  writeFileSync(out, JSON.stringify({ summary: { tests: ids.length, pass, judgedPass, fail: ids.length - pass, requiredFailures }, results }));
  process.exit(0);
}

async function makeClient(client, plainFetch) {
  if (client === "fetch") return plainFetch;
  if (client === "undici") {
    const undici = await import("undici");
    const dispatcher = new undici.Agent().compose(undici.interceptors.cache({ store: new undici.cacheStores.MemoryCacheStore(), type: "private" }));
    return (input, init = {}) => undici.fetch(input, { dispatcher, ...init });
  }
  if (client === "cachet") {
    const cachet = await import(pathToFileURL(join(fileURLToPath(new URL("..", import.meta.url)), "dist/index.js")).href);
    const cacheDir = mkdtempSync(join(tmpdir(), "cachet-conformance-cache-"));
    process.on("exit", () => rmSync(cacheDir, { recursive: true, force: true }));
    const store = await cachet.openStore({ cacheDir });
    return cachet.createCachedFetch({ store, fetch: plainFetch });
  }
  throw new Error(`unknown client ${client}`);
}

function freePort() {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolvePort(port));
    });
  });
}
