import type pg from "pg";
import { redactIn, redactUrl } from "../config/index.js";
import { RemoteError, RemoteRefusedError, RemoteTimeoutError } from "./errors.js";

const listened = new WeakSet<pg.PoolClient>();

/** How a connection to the shared tier is opened. */
export interface DatabaseOptions {
  /** The `postgres://` URL (its password is never shown). */
  url: string;
  /** Time limit of each query and of connecting, in ms (default 10 000). */
  timeoutMs?: number | undefined;
  /** Most connections held at once (default 4). */
  maxConnections?: number | undefined;
}

/** A client checked out of the pool, for a transaction. */
export type DatabaseClient = pg.PoolClient;

/**
 * A pool on the shared tier's PostgreSQL. The driver is loaded here, on first use, so a program that never
 * configures a remote does not pay for loading it.
 */
export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  const { default: driver } = await import("pg");
  return new Database(driver, options);
}

/**
 * The shared tier's PostgreSQL pool. Every query has a time limit (client side, so a server that stops answering
 * cannot hang a caller), idle connections never keep the process alive, and every error becomes a
 * {@link RemoteError} whose message names the server with its password redacted.
 */
export class Database {
  readonly pool: pg.Pool;
  readonly timeoutMs: number;
  /** The URL with its password replaced, for messages. */
  readonly where: string;
  /** Every connection the pool has opened or is opening, until it ends. */
  private readonly connections = new Set<pg.Client>();

  /** @internal use {@link openDatabase}. */
  constructor(driver: typeof pg, readonly options: DatabaseOptions) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.where = redactUrl(options.url);
    const connections = this.connections;
    // The pool's clients, known here so that connections stuck on a server that stopped answering can be dropped.
    class TrackedClient extends driver.Client {
      constructor(config?: pg.ClientConfig) {
        super(config);
        connections.add(this);
        this.once("end", () => connections.delete(this));
      }
    }
    this.pool = new driver.Pool({
      Client: TrackedClient,
      connectionString: options.url,
      max: options.maxConnections ?? 4,
      connectionTimeoutMillis: this.timeoutMs,
      query_timeout: this.timeoutMs,
      idleTimeoutMillis: 10_000,
      allowExitOnIdle: true,
      keepAlive: true,
    });
    // A server that goes away under an idle connection: the next query reports it.
    this.pool.on("error", () => {});
  }

  /** Runs one statement. */
  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string | pg.QueryConfig, values?: unknown[]): Promise<pg.QueryResult<R>> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await (typeof text === "string" ? this.pool.query<R>(text, values) : this.pool.query<R>(text));
      } catch (error) {
        // A named statement prepared before a column type changed is refused on every connection that prepared
        // it; each refusal closes that connection, so within a pool's worth of tries one prepares it anew.
        if (typeof text !== "string" && text.name !== undefined && isStalePlan(error) && attempt <= (this.options.maxConnections ?? 4)) continue;
        throw this.wrap(error);
      }
    }
  }

  /** Runs `work` in one transaction on one connection; rolled back if it throws. */
  async transaction<T>(work: (client: DatabaseClient) => Promise<T>): Promise<T> {
    const client = await this.connect();
    let broken = false;
    try {
      await client.query("BEGIN");
      const result = await work(client);
      await client.query("COMMIT");
      return result;
    } catch (error) {
      // A connection whose prepared statement no longer fits the tables would refuse it again: it is closed.
      broken = !(await client.query("ROLLBACK").then(() => true, () => false)) || isStalePlan(error);
      throw this.wrap(error);
    } finally {
      client.release(broken);
    }
  }

  /** Runs `work` in one transaction on one connection and always rolls it back: what it would change, unchanged. */
  async rehearse<T>(work: (client: DatabaseClient) => Promise<T>): Promise<T> {
    const client = await this.connect();
    let broken = false;
    try {
      await client.query("BEGIN");
      return await work(client);
    } catch (error) {
      broken = isStalePlan(error);
      throw this.wrap(error);
    } finally {
      broken = !(await client.query("ROLLBACK").then(() => true, () => false)) || broken;
      client.release(broken);
    }
  }

  /** A connection of its own (release it with `release()`; pass true when it broke). */
  async connect(): Promise<DatabaseClient> {
    try {
      const client = await this.pool.connect();
      // A connection that breaks while checked out emits 'error' besides failing its query; the query reports it.
      if (!listened.has(client)) {
        listened.add(client);
        client.on("error", () => {});
      }
      return client;
    } catch (error) {
      throw this.wrap(error, true);
    }
  }

  /**
   * Any failure of the server or the connection as a {@link RemoteError} (deliberate cachet errors pass through);
   * a request the server refuses for its content, once connected, as a {@link RemoteRefusedError}.
   */
  wrap(error: unknown, connecting = false): Error {
    if (error instanceof RemoteError) return error;
    if (error instanceof Error && "code" in error && typeof error.code === "string" && error.code.startsWith("CACHET_")) return error;
    const message = redactIn(error instanceof Error ? error.message : String(error), this.options.url);
    const code = (error as { code?: unknown } | undefined)?.code;
    // A bad connection parameter is class 22 too, but it fails every call: that is the server being unusable.
    if (!connecting && typeof code === "string" && /^(22|54)[0-9A-Z]{3}$/.test(code)) {
      return new RemoteRefusedError(`the shared cache ${this.where} cannot hold this entry: ${message}`, { cause: { code } });
    }
    // The driver's own time limits carry no SQLSTATE; a server error only names a timeout setting, except a
    // statement cancelled by the server's statement_timeout (57014).
    const sqlState = typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
    if ((sqlState === undefined || sqlState === "57014") && /timeout|timed out/i.test(message)) {
      return new RemoteTimeoutError(`the shared cache ${this.where} did not answer within ${this.timeoutMs} ms (${message})`);
    }
    // Only the server's error code is kept as the cause: a driver error may carry connection details.
    return new RemoteError(`the shared cache ${this.where} failed: ${message}`, typeof code === "string" ? { cause: { code } } : undefined);
  }

  /**
   * Drops every connection at once (its socket destroyed), failing what runs on it, instead of waiting for its
   * query time limit: for a server that stopped answering, whose connections would otherwise keep the process
   * alive that long. The pool opens new connections when it is used again.
   */
  dropConnections(): void {
    for (const client of this.connections) (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
  }

  /**
   * Closes the pool: idle connections say goodbye, and queries still running are waited for up to `withinMs`
   * (default the time limit); the connections still open then are dropped ({@link dropConnections}). 0 waits for
   * nothing: for a server that did not answer in time already.
   */
  async close(withinMs: number = this.timeoutMs): Promise<void> {
    const ending = this.pool.end().catch(() => {});
    if (await settlesWithin(ending, withinMs)) return;
    this.dropConnections();
    await settlesWithin(ending, 1000);
  }
}

/**
 * True when `work` settled within `ms`. The timer keeps the process alive (at most `ms`): a caller awaiting a close
 * whose sockets no longer hold the process must still see it end.
 */
export async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, ms));
  });
  try {
    return await Promise.race([work.then(() => true, () => true), limit]);
  } finally {
    clearTimeout(timer);
  }
}

/** The server's refusal of a statement prepared before a column type of its tables changed (nothing was run). */
function isStalePlan(error: unknown): boolean {
  return (error as { code?: unknown }).code === "0A000" && /cached plan must not change result type/.test((error as Error).message);
}
