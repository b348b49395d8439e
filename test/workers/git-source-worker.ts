// A process that checks out one git source. argv: cacheDir, url, ref ("" for the remote's HEAD).
// Prints "ready", then one JSON line: the result ({ commit, path, fetched, fromCache }) or { error, code }.
import { gitSource, openStore } from "../../src/index.js";

const [cacheDir, url, ref] = process.argv.slice(2) as [string, string, string];
const store = await openStore({ cacheDir });
process.stdout.write("ready\n");
try {
  const result = await gitSource(url, { store, ...(ref === "" ? {} : { ref }) });
  process.stdout.write(`${JSON.stringify({ commit: result.commit, path: result.path, fetched: result.fetched, fromCache: result.fromCache })}\n`);
} catch (error) {
  process.stdout.write(`${JSON.stringify({ error: (error as Error).message, code: (error as { code?: string }).code })}\n`);
} finally {
  await store.close();
}
