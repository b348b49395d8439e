import { Worker } from "node:worker_threads";

/**
 * One long-lived worker thread per process that computes sha256 digests of large streams, so hashing runs on
 * another core than the one receiving and writing the bytes. Started on first use; it keeps the process alive
 * only while it has bytes to hash or a digest to send. If it cannot start or dies, it is not used again in this process and
 * callers hash on their own thread (see `StreamSha256`).
 *
 * Bytes reach it without copies or moved buffers: writers gather chunks into slots of one shared memory pool
 * (`takeBatch`), and the worker is told which slot to hash. Handing buffers over by transfer instead makes every
 * returning buffer new external memory for the garbage collector, which then ran for longer than the hashing.
 */

/** Size of one slot of the pool: one message to the worker per slot. */
export const SLOT_SIZE = 1 << 20;
/** Slots in the pool: a large stream holds about ten at a time; writers past that use memory of their own. */
const SLOT_COUNT = 32;
/**
 * Size of a batch of a writer's own memory (all slots in use): small, since such a batch is never kept or queued
 * for long (see `StreamSha256`), so many writers at once hold little each.
 */
export const OWN_BATCH_SIZE = 256 << 10;

/** A writer's buffer: a slot of the shared pool, or (when all slots are in use) memory of its own. */
export interface Batch {
  bytes: Uint8Array;
  slot: number | undefined;
}

let pool: { memory: SharedArrayBuffer; free: number[] } | undefined;

function slotPool(): { memory: SharedArrayBuffer; free: number[] } {
  // Memory is only touched (and counted in the process's size) as slots are first used.
  pool ??= { memory: new SharedArrayBuffer(SLOT_SIZE * SLOT_COUNT), free: Array.from({ length: SLOT_COUNT }, (_, slot) => SLOT_COUNT - 1 - slot) };
  return pool;
}

/**
 * A free batch buffer: a slot of {@link SLOT_SIZE} bytes, or {@link OWN_BATCH_SIZE} of its own when every slot is
 * in use; give it back with {@link releaseBatch} once hashed.
 */
export function takeBatch(): Batch {
  const { memory, free } = slotPool();
  const slot = free.pop();
  if (slot === undefined) return { bytes: Buffer.allocUnsafeSlow(OWN_BATCH_SIZE), slot: undefined };
  return { bytes: new Uint8Array(memory, slot * SLOT_SIZE, SLOT_SIZE), slot };
}

/** Gives a batch's slot back to the pool (once; a buffer of its own is left to the garbage collector). */
export function releaseBatch(batch: Batch): void {
  if (batch.slot !== undefined) releaseSlot(batch.slot);
  batch.slot = undefined;
}

function releaseSlot(slot: number): void {
  slotPool().free.push(slot);
}

// The worker's whole program (plain JavaScript, so it runs the same from the build and from the sources): one
// hash per stream id, fed in order with slots of the pool (or, rarely, buffers of their own); it answers each
// with its size, so the sender can bound what is queued and reuse the slot.
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const { createHash } = require("node:crypto");
const pool = new Uint8Array(workerData.memory);
const hashes = new Map();
parentPort.on("message", (message) => {
  const { id } = message;
  if (message.length !== undefined) {
    let hash = hashes.get(id);
    if (hash === undefined) hashes.set(id, (hash = createHash("sha256")));
    const start = message.slot * workerData.slotSize;
    hash.update(message.chunk ?? pool.subarray(start, start + message.length));
    parentPort.postMessage({ id, hashed: message.length, slot: message.slot });
  } else if (message.end) {
    const hash = hashes.get(id) ?? createHash("sha256");
    hashes.delete(id);
    parentPort.postMessage({ id, digest: hash.digest("hex") });
  } else {
    hashes.delete(id);
  }
});
`;

type Reply = { id: number; hashed: number; slot: number | undefined } | { id: number; digest: string };

/** What the worker tells one stream. */
export interface WorkerStreamEvents {
  /** That many more bytes were hashed (their slot is free again). */
  hashed(bytes: number): void;
  digest(hex: string): void;
  /** The worker is gone: this stream's digest will never come. */
  gone(): void;
}

/** The worker had to be given up; the stream's bytes must be hashed another way. */
export class HashWorkerGoneError extends Error {
  constructor() {
    super("the sha256 worker thread is not available");
  }
}

let shared: HashWorker | undefined;
let unavailable = false;
let crashForTesting = false;

/** The process's hash worker, started on first call; undefined when worker threads cannot be used here. */
export function hashWorker(): HashWorker | undefined {
  if (unavailable) return undefined;
  if (shared !== undefined) return shared;
  try {
    shared = new HashWorker();
    return shared;
  } catch {
    unavailable = true;
    return undefined;
  }
}

/**
 * @internal for tests: `"off"` makes every stream hash on its own thread (as when no worker can start);
 * `"crash"` starts a worker that exits on the first bytes it receives; `"on"` is the normal state.
 */
export function setHashWorkerModeForTesting(mode: "on" | "off" | "crash"): void {
  unavailable = mode === "off";
  crashForTesting = mode === "crash";
  if (mode !== "on") shared = undefined;
}

/** @internal for tests: the pool's free slots (all are back once every write has finished) of its total. */
export function freeSlotsForTesting(): { free: number; total: number } {
  return { free: pool === undefined ? SLOT_COUNT : pool.free.length, total: SLOT_COUNT };
}

export class HashWorker {
  private readonly worker: Worker;
  private readonly streams = new Map<number, WorkerStreamEvents>();
  /** Slots sent and not yet answered: freed if the worker dies with them. */
  private readonly inFlight = new Set<number>();
  /** Messages sent that the worker has not answered yet. */
  private unanswered = 0;
  private nextId = 1;
  private dead = false;

  constructor() {
    const source = crashForTesting ? `${WORKER_SOURCE}\nparentPort.on("message", () => process.exit(3));` : WORKER_SOURCE;
    // No execArgv: the parent's loaders and flags (a TypeScript loader, a profiler) are not needed for this program.
    this.worker = new Worker(source, { eval: true, execArgv: [], stdin: false, name: "cachet sha256", workerData: { memory: slotPool().memory, slotSize: SLOT_SIZE } });
    this.worker.unref();
    this.worker.on("message", (reply: Reply) => {
      if (--this.unanswered === 0) this.worker.unref();
      if ("hashed" in reply && reply.slot !== undefined) {
        this.inFlight.delete(reply.slot);
        releaseSlot(reply.slot);
      }
      const stream = this.streams.get(reply.id);
      if (stream === undefined) return;
      if ("digest" in reply) {
        this.streams.delete(reply.id);
        stream.digest(reply.digest);
      } else stream.hashed(reply.hashed);
    });
    this.worker.on("error", () => this.giveUp());
    this.worker.on("exit", () => this.giveUp());
  }

  /** Registers a stream; its batches and end go to the worker under the returned id. */
  open(events: WorkerStreamEvents): number | undefined {
    if (this.dead) return undefined;
    const id = this.nextId++;
    this.streams.set(id, events);
    return id;
  }

  /**
   * Hands `batch` over: a slot of the pool is freed when the worker has hashed it; a buffer of its own is
   * transferred (the caller must not touch it again).
   */
  update(id: number, batch: Batch, length: number): void {
    if (this.dead) return releaseBatch(batch);
    this.expectAnswer();
    if (batch.slot !== undefined) {
      this.inFlight.add(batch.slot);
      this.worker.postMessage({ id, slot: batch.slot, length });
      batch.slot = undefined; // the worker's answer frees it
    } else this.worker.postMessage({ id, length, chunk: batch.bytes.subarray(0, length) }, [batch.bytes.buffer as ArrayBuffer]);
  }

  end(id: number): void {
    if (this.dead) return;
    this.expectAnswer();
    this.worker.postMessage({ id, end: true });
  }

  /** While the worker owes an answer, the process must not exit under the stream awaiting it. */
  private expectAnswer(): void {
    if (this.unanswered++ === 0) this.worker.ref();
  }

  /** Forgets a stream whose digest is no longer wanted (slots it sent are still freed as they are answered). */
  drop(id: number): void {
    if (!this.streams.delete(id)) return;
    if (!this.dead) this.worker.postMessage({ id, drop: true });
  }

  private giveUp(): void {
    if (this.dead) return;
    this.dead = true;
    if (shared === this) {
      shared = undefined;
      unavailable = true;
    }
    for (const slot of this.inFlight) releaseSlot(slot);
    this.inFlight.clear();
    const streams = [...this.streams.values()];
    this.streams.clear();
    for (const stream of streams) stream.gone();
    void this.worker.terminate().catch(() => {});
  }
}
