import { openStore } from "../src/store/index.js";
import { fillIndex } from "./index-fill.js";
import { randomBytes } from "node:crypto";
const root = process.argv[2]!;
const store = await openStore({ cacheDir: root });
for (let b = 0; b < 10000; b++) await store.put(`task-${String(b % 1000).padStart(4, "0")}`, `blob-${b}`, randomBytes(17 * 1024 + Math.floor(Math.random() * 7 * 1024)));
fillIndex(store.layout.indexFile, 0, 990000);
await store.close();
