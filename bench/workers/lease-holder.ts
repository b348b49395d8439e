// Takes a shared lease and holds it until killed (bench/remote-tier.ts measures the takeover after SIGKILL).
// argv: url, expirySeconds, name, key
import { openRemoteStore } from "../../src/index.js";

const [url, expiry, name, key] = process.argv.slice(2) as [string, string, string, string];
const store = await openRemoteStore({ url, leaseExpirySeconds: Number(expiry) });
await store.lockKey(name, key);
process.stdout.write("held\n");
setInterval(() => {}, 1000);
