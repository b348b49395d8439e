import type { Redis } from "ioredis";
import { redactIn, redactUrl } from "../config/index.js";
import { settlesWithin } from "./database.js";
import { RemoteError } from "./errors.js";

const COMPARE_AND_EXTEND = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("pexpire", KEYS[1], ARGV[2]) else return 0 end`;
const COMPARE_AND_DELETE = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`;

/**
 * Leases on Redis, only to hand a key over fast: `SET NX PX` to take it, compare-and-extend and
 * compare-and-delete in Lua (only the holder's own value is touched). It avoids duplicate work; it does not make
 * a commit safe (a Redis key can vanish on failover), which is what the PostgreSQL fence is for.
 */
export class RedisLeases {
  private readonly client: Redis;
  readonly where: string;

  /** A client for `url`, the driver loaded on first use (connecting waits for the first command). */
  static async open(url: string, expiryMs: number, timeoutMs: number): Promise<RedisLeases> {
    const { Redis: Driver } = await import("ioredis");
    return new RedisLeases(Driver, url, expiryMs, timeoutMs);
  }

  private constructor(
    Driver: typeof Redis,
    private readonly url: string,
    private readonly expiryMs: number,
    private readonly timeoutMs: number,
  ) {
    this.where = redactUrl(url);
    this.client = new Driver(url, {
      lazyConnect: true,
      connectTimeout: timeoutMs,
      commandTimeout: timeoutMs,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: true,
      retryStrategy: (attempt: number) => (attempt > 3 ? null : 200 * attempt),
      reconnectOnError: () => false,
    });
    this.client.on("error", () => {});
    // Like the PostgreSQL pool's idle connections, the lease connection never keeps the process alive: a
    // program that does not close its store still exits when its work is done (a lease left behind expires).
    this.client.on("connect", () => this.client.stream?.unref?.());
  }

  private redisKey(name: string, key: string): string {
    return `cachet:lease:${name.length}:${name}:${key}`;
  }

  private async run<T>(work: () => Promise<T>): Promise<T> {
    try {
      if (this.client.status === "wait" || this.client.status === "end") await this.client.connect();
      return await work();
    } catch (error) {
      throw new RemoteError(`the lease server ${this.where} failed: ${redactIn(error instanceof Error ? error.message : String(error), this.url)}`);
    }
  }

  /** True when this owner now holds the key's Redis lease. */
  tryAcquire(name: string, key: string, owner: string): Promise<boolean> {
    return this.run(async () => (await this.client.set(this.redisKey(name, key), owner, "PX", this.expiryMs, "NX")) === "OK");
  }

  /** Extends the owner's Redis lease; false when it is no longer this owner's. */
  extend(name: string, key: string, owner: string): Promise<boolean> {
    return this.run(async () => (await this.client.eval(COMPARE_AND_EXTEND, 1, this.redisKey(name, key), owner, this.expiryMs)) === 1);
  }

  /** Deletes the owner's Redis lease (another owner's is left alone). */
  release(name: string, key: string, owner: string): Promise<void> {
    return this.run(async () => {
      await this.client.eval(COMPARE_AND_DELETE, 1, this.redisKey(name, key), owner);
    });
  }

  /**
   * Says goodbye (`QUIT`) and waits for it up to `withinMs` (default the time limit), then drops the connection: a
   * Redis that stopped answering is not waited for longer (0: not at all).
   */
  async close(withinMs: number = this.timeoutMs): Promise<void> {
    if (this.client.status === "wait" || this.client.status === "end" || withinMs <= 0) {
      this.client.disconnect();
      return;
    }
    const quitting = this.client.quit();
    if (!(await settlesWithin(quitting, withinMs)) || !(await quitting.then(() => true, () => false))) this.client.disconnect();
  }
}
