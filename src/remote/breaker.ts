import type { WarningHandler } from "../store/index.js";
import { RemoteTimeoutError } from "./errors.js";

/** How the {@link Breaker} judges the shared tier. */
export interface BreakerOptions {
  /** Failures in a row that open it (default 3). */
  failures?: number | undefined;
  /** How long it stays open before one probe, in ms (default 30 000). */
  coolOffMs?: number | undefined;
  /** Time limit of every call through it, in ms (default 10 000). */
  timeoutMs?: number | undefined;
  onWarning: WarningHandler;
  /** Names the remote in warnings (its URL, password redacted). */
  where: () => string;
  /** Called each time the breaker opens (the remote is skipped from then on). */
  onOpen?: (() => void) | undefined;
}

/**
 * The outage breaker in front of the shared tier: every call has a time limit; any failure is a miss (the
 * caller's fallback), and the first one in the process is reported once (`CACHET_REMOTE_UNAVAILABLE`); after
 * `failures` in a row the remote is skipped for `coolOffMs`, then one call probes it: success closes the
 * breaker, failure opens it again.
 */
export class Breaker {
  private inARow = 0;
  private openUntil = 0;
  private probing = false;
  private silenced = false;
  private readonly warned = new Set<string>();
  readonly timeoutMs: number;

  constructor(private readonly options: BreakerOptions) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  /** False while the remote is skipped (or while the one probe is out). */
  get available(): boolean {
    if (this.inARow < (this.options.failures ?? 3)) return true;
    return Date.now() >= this.openUntil && !this.probing;
  }

  /** `work()`'s result, or `fallback` when the remote is skipped, fails or does not answer in time. */
  async call<T, F>(what: string, work: () => Promise<T>, fallback: F, timeoutMs: number = this.timeoutMs): Promise<T | F> {
    if (!this.available) return fallback;
    const probe = this.inARow >= (this.options.failures ?? 3);
    if (probe) this.probing = true;
    try {
      const result = await withTimeout(work(), timeoutMs, () => `${what} on the shared cache ${this.options.where()} did not finish within ${timeoutMs} ms`);
      this.inARow = 0;
      return result;
    } catch (error) {
      this.failed(what, error);
      return fallback;
    } finally {
      if (probe) this.probing = false;
    }
  }

  /**
   * Records a failure (also one outside {@link call}). The first failure in the process is reported, once, and
   * says what follows; the breaker opening and later failures are silent, so an outage is one warning.
   */
  failed(what: string, error: unknown): void {
    if (this.silenced) return;
    if ((error as { code?: unknown } | undefined)?.code === "CACHET_REMOTE_REFUSED") {
      // One entry the server cannot hold says nothing about the server: reported once, not counted.
      this.warnOnce("CACHET_REMOTE_REFUSED", `cachet: ${what}: ${(error as Error).message}; such entries stay in the local cache only`);
      return;
    }
    const limit = this.options.failures ?? 3;
    // A server that does not answer makes every call wait out the whole time limit: one such call is enough to
    // skip it (three would make a caller that asks three times, as a `cachet run` miss does, wait three limits).
    const timedOut = (error as { code?: unknown } | undefined)?.code === "CACHET_REMOTE_TIMEOUT";
    this.inARow = timedOut ? Math.max(this.inARow + 1, limit) : this.inARow + 1;
    const coolOff = Math.round((this.options.coolOffMs ?? 30_000) / 1000);
    this.warnOnce(
      "CACHET_REMOTE_UNAVAILABLE",
      `cachet: ${what} failed (${(error as Error)?.message ?? String(error)}); the local cache is used instead, ` +
        (timedOut
          ? `and the shared cache is skipped for ${coolOff} s, then tried once again`
          : `and after ${limit} failures in a row the shared cache is skipped for ${coolOff} s, then tried once again`),
    );
    if (this.inARow >= limit) {
      this.openUntil = Date.now() + (this.options.coolOffMs ?? 30_000);
      this.options.onOpen?.();
    }
  }

  /**
   * Failures from now on are neither reported nor counted: the caller is closing and has reported what it gave up
   * (calls dropped at close fail, and that is no news).
   */
  silence(): void {
    this.silenced = true;
  }

  /** Records a success outside {@link call}. */
  succeeded(): void {
    this.inARow = 0;
  }

  private warnOnce(code: string, message: string): void {
    if (this.warned.has(code)) return;
    this.warned.add(code);
    this.options.onWarning({ code, message });
  }
}

/** `work`, or a {@link RemoteTimeoutError} after `ms` (the work itself is left to its own time limits). */
export function withTimeout<T>(work: Promise<T>, ms: number, message: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RemoteTimeoutError(message())), ms);
    timer.unref();
  });
  work.catch(() => {});
  return Promise.race([work, limit]).finally(() => clearTimeout(timer));
}
