import { createHash, type Hash } from "node:crypto";
import { HashWorkerGoneError, hashWorker, releaseBatch, type Batch, type HashWorker } from "./sha256-worker.js";

/** Streams up to this size are hashed on the caller's thread: a thread hop costs more than it saves. */
export const OFFLOAD_AFTER = 4 << 20;

/** Most bytes handed to the worker and not yet hashed before `add` makes the writer wait. */
const MAX_QUEUED = 4 << 20;

/**
 * The sha256 of a stream written in batches (`takeBatch`), each handed over once written: the first
 * {@link OFFLOAD_AFTER} bytes are hashed on this thread as they come, and kept; once the stream is larger, the
 * kept batches and every later one go to the process's hash worker instead, so a large stream's hashing runs
 * beside the thread that receives and writes it. Every batch handed over goes back to the pool once hashed.
 * `digest()` throws {@link HashWorkerGoneError} if the worker died with this stream's bytes: the caller then
 * hashes the bytes it wrote itself.
 */
export class StreamSha256 {
  private local: Hash | undefined = createHash("sha256");
  /** The batches hashed here so far, while the stream may still move to the worker. */
  private kept: { batch: Batch; length: number }[] | undefined = [];
  private size = 0;
  private worker: HashWorker | undefined;
  private id: number | undefined;
  private queued = 0;
  /** The writer waiting in `add` is woken once no more than this is queued. */
  private wakeAt = MAX_QUEUED / 2;
  private wakeWriter: (() => void) | undefined;
  private result: Promise<string> | undefined;
  private settle: { resolve(hex: string): void; reject(error: Error): void } | undefined;
  private outcome: { digest: string } | { gone: true } | undefined;

  /** Adds the first `length` bytes of `batch`; the promise, when there is one, asks the writer to wait. */
  add(batch: Batch, length: number): Promise<void> | undefined {
    this.size += length;
    const ownMemory = batch.slot === undefined;
    if (this.local !== undefined) {
      // A batch of the writer's own memory (every slot in use: many writers at once) is never kept, so each of
      // them holds little: this stream is then hashed here to its end, as one past the limit with no worker.
      const keep = this.kept !== undefined && !ownMemory;
      if (!keep || this.size <= OFFLOAD_AFTER || !this.offload()) {
        this.local.update(batch.bytes.subarray(0, length));
        if (keep && this.size <= OFFLOAD_AFTER) this.kept!.push({ batch, length });
        else {
          this.releaseKept();
          releaseBatch(batch);
        }
        return undefined;
      }
      for (const kept of this.kept!) this.send(kept.batch, kept.length);
      this.kept = undefined;
    }
    this.send(batch, length);
    // Own memory sent to the worker is waited for before the next batch: a stream has at most one such in flight.
    this.wakeAt = ownMemory ? 0 : MAX_QUEUED / 2;
    if (this.queued <= (ownMemory ? 0 : MAX_QUEUED) || this.outcome !== undefined) return undefined;
    return new Promise((resolve) => (this.wakeWriter = resolve));
  }

  /** The hex digest of everything added. */
  digest(): Promise<string> {
    if (this.local !== undefined) {
      this.releaseKept();
      return Promise.resolve(this.local.digest("hex"));
    }
    if (this.outcome !== undefined) return "digest" in this.outcome ? Promise.resolve(this.outcome.digest) : Promise.reject(new HashWorkerGoneError());
    this.result ??= new Promise<string>((resolve, reject) => {
      this.settle = { resolve, reject };
      this.worker!.end(this.id!);
    });
    return this.result;
  }

  /** Gives the stream up (its write failed): its batches go back, the worker forgets it. */
  abandon(): void {
    if (this.worker !== undefined && this.id !== undefined && this.outcome === undefined) this.worker.drop(this.id);
    this.outcome ??= { gone: true };
    this.releaseKept();
    this.release();
  }

  /** Moves hashing to the worker; false (hashing stays here) when there is none. */
  private offload(): boolean {
    const worker = hashWorker();
    const id = worker?.open({
      hashed: (bytes) => {
        this.queued -= bytes;
        if (this.queued <= this.wakeAt) this.release();
      },
      digest: (hex) => {
        this.outcome = { digest: hex };
        this.settle?.resolve(hex);
      },
      gone: () => {
        this.outcome = { gone: true };
        this.release();
        this.settle?.reject(new HashWorkerGoneError());
      },
    });
    if (id === undefined) return false;
    this.worker = worker;
    this.id = id;
    this.local = undefined;
    return true;
  }

  private send(batch: Batch, length: number): void {
    if (this.outcome !== undefined) return releaseBatch(batch);
    this.queued += length;
    this.worker!.update(this.id!, batch, length);
  }

  private releaseKept(): void {
    for (const kept of this.kept ?? []) releaseBatch(kept.batch);
    this.kept = undefined;
  }

  private release(): void {
    const wake = this.wakeWriter;
    this.wakeWriter = undefined;
    wake?.();
  }
}
