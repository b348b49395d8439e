import Database from "better-sqlite3";
const file = process.argv[2]!; const max = Number(process.argv[3]);
const db = new Database(file, { timeout: 60000 });
db.pragma("journal_mode = WAL"); db.pragma("synchronous = NORMAL"); db.pragma("mmap_size = 268435456");
let t = performance.now();
const lap = (label: string) => { const n = performance.now(); console.log(label.padEnd(40), (n - t).toFixed(0), "ms"); t = n; };
db.exec("BEGIN IMMEDIATE");
const cut = db.prepare(`SELECT last_used_at, id FROM (SELECT id, last_used_at, SUM(size) OVER (ORDER BY last_used_at DESC, id DESC) AS kept FROM entries) WHERE kept > ? LIMIT 1`).raw().get(max) as [number, number];
lap(`find cutoff`);
const idx = db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'entries' AND sql IS NOT NULL").all() as Array<{name: string, sql: string}>;
for (const i of idx) db.exec(`DROP INDEX "${i.name}"`);
lap(`drop ${idx.length} indexes`);
let count = 0, inline = 0;
for (const [bucket, size] of db.prepare("DELETE FROM entries WHERE last_used_at < ? OR (last_used_at = ? AND id <= ?) RETURNING bucket, size").raw().iterate(cut[0], cut[0], cut[1]) as IterableIterator<[string, number]>) { count++; if (bucket === "inline") inline += size; }
lap(`delete rows (${count}, ${inline})`);
for (const i of idx) db.exec(i.sql);
lap("recreate indexes");
db.exec("COMMIT"); lap("commit");
db.close(); lap("close (checkpoint)");
