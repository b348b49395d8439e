// A program that writes through a tiered store whose remote the test freezes (SIGSTOP) while its uploads run.
// env: REMOTE_URL, CACHE_DIR, QUERY_LIMIT_MS (each query's and connection's time limit on the remote),
// CALL_LIMIT_MS (the tiered store's limit of each remote call), FLUSH_LIMIT_MS, LEASES_URL (optional), MODE.
// Opens the store, writes one entry and waits until it is uploaded, takes a shared lease (held to the end), prints
// "warm", then waits for a line on stdin (the test freezes the server first), writes three entries and:
// - MODE "close": closes the store and prints "closed <warning codes>";
// - MODE "no-close": prints "written <warning codes>" and leaves the store open (the process should still exit).
import { once } from "node:events";
import { TieredStore, openRemoteStore, openStore } from "../../src/index.js";

const env = process.env;
const warnings: string[] = [];
const store = new TieredStore({
  local: await openStore({ cacheDir: env.CACHE_DIR! }),
  openRemote: (signal) => openRemoteStore({ url: env.REMOTE_URL!, timeoutMs: Number(env.QUERY_LIMIT_MS), leasesUrl: env.LEASES_URL || undefined, signal }),
  remoteName: "frozen",
  onWarning: (warning) => warnings.push(warning.code),
  timeoutMs: Number(env.CALL_LIMIT_MS),
  flushLimitMs: Number(env.FLUSH_LIMIT_MS),
});
await store.put("frozen", "warm", "uploaded before the freeze");
while (store.pendingUploads > 0) await new Promise((resolve) => setTimeout(resolve, 20));
// A held lease: its heartbeat and its release at close must not hold the process either.
await store.lockKey("frozen", "held");
process.stdout.write("warm\n");
await once(process.stdin, "data");
process.stdin.destroy();
for (let i = 0; i < 3; i++) await store.put("frozen", `k${i}`, `value ${i}`);
if (env.MODE === "close") {
  await store.close();
  process.stdout.write(`closed ${warnings.join(",")}\n`);
} else {
  process.stdout.write(`written ${warnings.join(",")}\n`);
}
