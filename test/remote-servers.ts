// Real PostgreSQL and Redis for the remote-tier tests. The shared servers on the machine (127.0.0.1:5432 and
// :6379) serve tests that do not kill them; each test file gets a throwaway database of its own there. Fault tests
// start their own server on a spare port (initdb + pg_ctl, redis-server) so they can kill it. Not a test file.
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chownSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import pg from "pg";
import { openRemoteStore, type RemoteStore, type RemoteStoreOptions, type StoreWarning } from "../src/index.js";
import { tempDir } from "./helpers.js";
import { findOnPath, freePort } from "./registry-servers.js";
import { startProcess, type Child } from "./workers/child.js";

const SHARED_HOST = "127.0.0.1";

/** The shared server's admin URL (database `test`), by the first user that connects. */
async function adminUrl(): Promise<string | undefined> {
  for (const user of ["postgres", process.env.USER ?? "root"]) {
    const url = `postgres://${user}@${SHARED_HOST}:5432/test`;
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
    try {
      await client.connect();
      await client.query("SELECT 1");
      return url;
    } catch {
      // try the next user
    } finally {
      await client.end().catch(() => {});
    }
  }
  return undefined;
}

const ADMIN_URL = await adminUrl();

/** Why the PostgreSQL tests cannot run here, or false. */
export const postgresSkipReason: string | false =
  ADMIN_URL === undefined ? "PostgreSQL does not answer on 127.0.0.1:5432 (database test, trust auth), so the shared tier is not tested" : false;

/** A database of its own on the shared server, dropped by `drop()`. */
export async function createTestDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `cachet_test_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = ADMIN_URL!.replace(/\/test$/, `/${name}`);
  return {
    url,
    drop: async () => {
      const client = new pg.Client({ connectionString: ADMIN_URL });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}

/** Runs SQL on `url` with a client of its own (what a test inspects or tampers with). */
export async function sql<R extends pg.QueryResultRow = pg.QueryResultRow>(url: string, text: string, values?: unknown[]): Promise<R[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end().catch(() => {});
  }
}

async function redisAnswers(port: number): Promise<boolean> {
  const probe = spawnSync("redis-cli", ["-h", SHARED_HOST, "-p", String(port), "ping"], { encoding: "utf8", timeout: 3000 });
  return probe.status === 0 && probe.stdout.trim() === "PONG";
}

/** Why the Redis tests cannot run here, or false. */
export const redisSkipReason: string | false = (await redisAnswers(6379)) ? false : "Redis does not answer on 127.0.0.1:6379, so lease hand-off through Redis is not tested";

/** Why the tests that start their own Redis cannot run here, or false. */
export const ownRedisSkipReason: string | false = findOnPath("redis-server") === "" ? "redis-server is not on PATH, so Redis is not killed under the shared tier" : false;

/** Why the tests that start their own PostgreSQL cannot run here, or false. */
export const ownPostgresSkipReason: string | false = (() => {
  const missing = ["initdb", "pg_ctl"].filter((tool) => findOnPath(tool) === "");
  if (missing.length > 0) return `${missing.join(" and ")} not on PATH, so PostgreSQL is not killed under the shared tier`;
  if (process.getuid?.() === 0 && spawnSync("id", ["postgres"]).status !== 0) return "running as root without a postgres user to run initdb as";
  return false;
})();

/** Runs `command` as the postgres user when this is root (initdb and pg_ctl refuse root). */
function asPostgres(command: string, args: string[]): [string, string[]] {
  if (process.getuid?.() !== 0) return [command, args];
  return ["setpriv", ["--reuid=postgres", "--regid=postgres", "--init-groups", command, ...args]];
}

/** A PostgreSQL server of the test's own, on a spare port, that it may kill. */
export interface OwnPostgres {
  url: string;
  port: number;
  /** The data directory (its `postmaster.pid` names the server's process). */
  dataDir: string;
  /** Kills the server at once (every backend dropped, as a crash does). */
  kill(): void;
  /** Starts it again on the same port and data. */
  start(): Promise<void>;
  /** Stops it and removes its data. */
  remove(): void;
}

export async function startOwnPostgres(settings: string[] = []): Promise<OwnPostgres> {
  const dir = mkdtempSync(join(tmpdir(), "cachet-own-pg-"));
  if (process.getuid?.() === 0) chownSync(dir, Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" })), Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" })));
  const data = join(dir, "data");
  const run = (command: string, args: string[]) => {
    const [bin, argv] = asPostgres(command, args);
    execFileSync(bin, argv, { stdio: "pipe", timeout: 60_000, killSignal: "SIGKILL" });
  };
  run("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync"]);
  const port = await freePort();
  const start = async () => {
    run("pg_ctl", ["-D", data, "-l", join(dir, "log"), "-w", "-t", "30", "-o", `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off ${settings.map((setting) => `-c ${setting}`).join(" ")}`, "start"]);
  };
  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    dataDir: data,
    kill: () => run("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]),
    start,
    remove: () => {
      try {
        run("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]);
      } catch {
        // not running
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A Redis of the test's own on a spare port (no persistence), which it may kill. */
export async function startOwnRedis(): Promise<{ url: string; child: Child }> {
  const port = await freePort();
  const child = startProcess("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
  await child.waitFor(/Ready to accept connections/);
  return { url: `redis://127.0.0.1:${port}`, child };
}

/**
 * A throwaway database and scratch folder for one `describe` of remote tests, made before its tests and dropped
 * after them, with `open()` for a `RemoteStore` on it and `collect()` for warnings. Read `url` inside tests.
 */
export function suiteDatabase(prefix: string): {
  readonly url: string;
  readonly dirs: { path: string };
  open(options?: Partial<RemoteStoreOptions>): Promise<RemoteStore>;
  collect(): { warnings: StoreWarning[]; onWarning: (warning: StoreWarning) => void };
} {
  let db: { url: string; drop: () => Promise<void> } | undefined;
  const dirs = tempDir(prefix);
  before(async () => {
    db = await createTestDatabase();
  });
  after(async () => {
    await db?.drop();
    dirs.cleanup();
  });
  const suite = {
    get url(): string {
      if (!db) throw new Error("the suite's database is made by its before hook; read it inside a test");
      return db.url;
    },
    dirs,
    open: (options: Partial<RemoteStoreOptions> = {}) => openRemoteStore({ url: suite.url, ...options }),
    collect() {
      const warnings: StoreWarning[] = [];
      return { warnings, onWarning: (warning: StoreWarning) => warnings.push(warning) };
    },
  };
  return suite;
}
