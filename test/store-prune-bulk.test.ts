// Pruning most of a large index takes the rebuild path (survivors copied into a fresh table): the same entries
// must survive as with row-by-row deletes, the schema and its indexes must come back, and a dry run must change
// nothing.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import Database from "better-sqlite3";
import { join } from "node:path";
import { openStore, pruneCache } from "../src/index.js";
import { tempDir } from "./helpers.js";

const dir = tempDir();
after(dir.cleanup);

test("prune --max-size over 25 000 entries keeps exactly the most recently used that fit", async () => {
  const store = await openStore({ cacheDir: dir.path });
  const total = 25_000;
  for (let i = 0; i < total; i++) await store.put(i % 2 ? "odd" : "even", `k${i}`, Buffer.alloc(100, i % 251), { origin: i % 3 ? "computed" : "downloaded" });
  await store.close();
  // Spread last use so the LRU order is known: entry i was used at time i.
  const db = new Database(join(dir.path, "index-v1", "index.sqlite"));
  db.prepare("UPDATE entries SET last_used_at = CAST(substr(key, 2) AS INTEGER)").run();
  db.close();

  const dry = await pruneCache({ cacheDir: dir.path, maxSizeBytes: 1000 * 100, dryRun: true });
  assert.equal(dry.tally.entries, total - 1000);
  assert.equal(dry.tally.bytes, (total - 1000) * 100);
  const unchanged = await openStore({ cacheDir: dir.path });
  let count = 0;
  for await (const entry of unchanged.list("even")) count += entry ? 1 : 0;
  assert.equal(count, total / 2, "a dry run removes nothing");
  await unchanged.close();

  const result = await pruneCache({ cacheDir: dir.path, maxSizeBytes: 1000 * 100 });
  assert.equal(result.tally.entries, total - 1000);
  const after = await openStore({ cacheDir: dir.path });
  const kept: number[] = [];
  for await (const entry of after.list()) kept.push(Number(entry.key.slice(1)));
  assert.deepEqual(kept.sort((a, b) => a - b), Array.from({ length: 1000 }, (_, i) => total - 1000 + i));
  assert.deepEqual(Buffer.from((await after.get("odd", `k${total - 1}`))!), Buffer.alloc(100, (total - 1) % 251));
  await after.put("even", "new", "still writable"); // the unique (name, key) index is back
  await after.put("even", "new", "replaced");
  assert.equal(Buffer.from((await after.get("even", "new"))!).toString(), "replaced");
  await after.close();
  const check = new Database(join(dir.path, "index-v1", "index.sqlite"), { readonly: true });
  const indexes = (check.prepare("PRAGMA index_list(entries)").all() as Array<{ name: string }>).map((i) => i.name).sort();
  assert.deepEqual(indexes, ["entries_by_last_use", "entries_by_name_key"]);
  assert.equal(check.pragma("integrity_check", { simple: true }), "ok");
  check.close();
});
