// A process that fetches one URL through cachet. argv: cacheDir, url, kind ("fetch" | "reload" | "artifact"), [sha256]
// ("reload" fetches with cache: "reload", so the origin's new answer replaces the stored one).
// Prints one JSON line: for fetch {status, cacheStatus, body}; for artifact the result of fetchArtifact.
import { createCachedFetch, fetchArtifact, openStore } from "../../src/index.js";

const [cacheDir, url, kind, sha256] = process.argv.slice(2) as [string, string, string, string | undefined];
const store = await openStore({ cacheDir });
if (kind === "fetch" || kind === "reload") {
  const response = await createCachedFetch({ store })(url, kind === "reload" ? { cache: "reload" } : {});
  process.stdout.write(`${JSON.stringify({ status: response.status, cacheStatus: response.headers.get("cache-status"), body: await response.text() })}\n`);
} else {
  const result = await fetchArtifact(url, { store, ...(sha256 ? { sha256 } : {}) });
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
await store.close();
