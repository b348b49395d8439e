import type { WarningHandler } from "../store/index.js";

/**
 * Uploads to the shared tier, run in the background a few at a time so the caller never waits for them. The
 * queue is bounded: when it is full an upload is dropped (the entry stays in the local cache) with one warning,
 * so a slow remote never holds up the caller's work or its memory.
 */
export class UploadQueue {
  private readonly waiting: (() => Promise<void>)[] = [];
  private running = 0;
  private warned = false;
  private idle: (() => void)[] = [];

  constructor(
    private readonly options: { limit?: number | undefined; concurrency?: number | undefined; onWarning: WarningHandler; where: () => string },
  ) {}

  /** Uploads queued or running. */
  get size(): number {
    return this.waiting.length + this.running;
  }

  /** Queues `upload`; false (with one warning per queue) when the queue is full and it was dropped. */
  add(upload: () => Promise<void>): boolean {
    if (this.size >= (this.options.limit ?? 256)) {
      if (!this.warned) {
        this.warned = true;
        this.options.onWarning({
          code: "CACHET_REMOTE_QUEUE_FULL",
          message: `cachet: the upload queue to the shared cache ${this.options.where()} is full (${this.options.limit ?? 256}); new entries stay in the local cache only`,
        });
      }
      return false;
    }
    this.waiting.push(upload);
    this.pump();
    return true;
  }

  /** Resolves when every queued upload has run, or after `limitMs` (true when the queue emptied). */
  flush(limitMs: number): Promise<boolean> {
    if (this.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), limitMs);
      this.idle.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** Drops what has not started (for a close whose flush ran out of time). */
  clear(): void {
    this.waiting.length = 0;
    if (this.running === 0) this.settle();
  }

  private pump(): void {
    while (this.running < (this.options.concurrency ?? 2) && this.waiting.length > 0) {
      const upload = this.waiting.shift()!;
      this.running++;
      void upload()
        .catch(() => {})
        .finally(() => {
          this.running--;
          this.pump();
          if (this.size === 0) this.settle();
        });
    }
  }

  private settle(): void {
    const waiters = this.idle;
    this.idle = [];
    for (const resolve of waiters) resolve();
  }
}
