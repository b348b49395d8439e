import Database from "better-sqlite3";
const file = process.argv[2]!; const max = Number(process.argv[3]);
const db = new Database(file, { timeout: 60000 });
db.pragma("journal_mode = WAL"); db.pragma("synchronous = NORMAL"); db.pragma("mmap_size = 268435456");
let t = performance.now();
const lap = (label: string) => { const n = performance.now(); console.log(label.padEnd(40), (n - t).toFixed(0), "ms"); t = n; };
if (process.env.COVER) { db.exec("CREATE INDEX IF NOT EXISTS entries_lru_size ON entries (last_used_at, size)"); lap("create covering index"); }
db.exec("BEGIN IMMEDIATE");
const cut = db.prepare(`SELECT last_used_at, id FROM (SELECT id, last_used_at, SUM(size) OVER (ORDER BY last_used_at DESC, id DESC) AS kept FROM entries) WHERE kept > ? LIMIT 1`).raw().get(max) as [number, number];
lap(`find cutoff ${JSON.stringify(cut)}`);
const stats = db.prepare(`SELECT count(*), sum(CASE WHEN bucket = 'inline' THEN size ELSE 0 END) FROM entries WHERE (last_used_at, id) <= (?, ?)`).raw().get(cut[0], cut[1]);
lap(`count victims ${JSON.stringify(stats)}`);
db.exec(`CREATE TABLE entries_kept (
  id INTEGER PRIMARY KEY, name TEXT NOT NULL, key TEXT NOT NULL, bucket TEXT NOT NULL, digest TEXT NOT NULL, inline BLOB,
  size INTEGER NOT NULL, origin TEXT NOT NULL, cost_ms REAL NOT NULL DEFAULT 0, created_at INTEGER NOT NULL,
  last_used_at INTEGER NOT NULL, format TEXT, components TEXT)`);
const ins = db.prepare(`INSERT INTO entries_kept SELECT * FROM entries WHERE (last_used_at, id) > (?, ?) ORDER BY id`).run(cut[0], cut[1]);
lap(`copy survivors (${ins.changes})`);
db.exec("DROP TABLE entries"); lap("drop old table");
db.exec("ALTER TABLE entries_kept RENAME TO entries"); lap("rename");
db.exec("CREATE UNIQUE INDEX entries_by_name_key ON entries (name, key)"); lap("index name,key");
db.exec("CREATE INDEX entries_by_last_use ON entries (last_used_at)"); lap("index last_used");
db.exec("COMMIT"); lap("commit");
db.close(); lap("close (checkpoint)");
