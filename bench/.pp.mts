import Database from "better-sqlite3";
const file = process.argv[2]!; const max = Number(process.argv[3]);
const db = new Database(file, { timeout: 60000 });
db.pragma("journal_mode = WAL"); db.pragma("synchronous = NORMAL"); db.pragma("mmap_size = 268435456"); if (process.env.CS) db.pragma(`cache_size = -${process.env.CS}`);
let t = performance.now();
const lap = (label: string) => { const n = performance.now(); console.log(label.padEnd(40), (n - t).toFixed(0), "ms"); t = n; };
db.exec("BEGIN IMMEDIATE"); lap("begin");
const mode = process.argv[4] ?? "window";
if (mode === "window") {
  const rows = db.prepare(`DELETE FROM entries WHERE id IN (SELECT id FROM (SELECT id, SUM(size) OVER (ORDER BY last_used_at DESC, id DESC) AS kept FROM entries) WHERE kept > ?) RETURNING bucket, size`).raw(true).all(max);
  lap(`delete window returning (${rows.length})`);
} else if (mode === "select-window") {
  const r = db.prepare(`SELECT count(*) FROM (SELECT id, SUM(size) OVER (ORDER BY last_used_at DESC, id DESC) AS kept FROM entries) WHERE kept > ?`).pluck().get(max);
  lap(`select count window (${r})`);
  const cut = db.prepare(`SELECT last_used_at, id FROM (SELECT id, last_used_at, SUM(size) OVER (ORDER BY last_used_at DESC, id DESC) AS kept FROM entries) WHERE kept > ? LIMIT 1`).raw().get(max);
  lap(`find cutoff ${JSON.stringify(cut)}`);
  const res = db.prepare(`DELETE FROM entries WHERE (last_used_at, id) <= (?, ?)`).run(cut[0], cut[1]);
  lap(`delete by cutoff (${res.changes})`);
}
db.exec("COMMIT"); lap("commit");
db.close(); lap("close (checkpoint)");
