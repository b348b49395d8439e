/**
 * A response body handed to the caller while the same chunks go to the store, in constant memory: the store is
 * fed at the caller's pace (at most a few chunks ahead), so a body of any size streams through. A body the
 * caller cancels, or that is cut or fails mid-way, makes the store's writer fail, so nothing is stored.
 */

/** Most chunks queued for the store before the caller's stream waits for it. */
const HIGH_WATER = 16;

/** A bounded queue of chunks from one producer (the caller's reads) to one consumer (the store's writer). */
class ChunkChannel implements AsyncIterable<Uint8Array> {
  private queue: Uint8Array[] = [];
  private ended = false;
  private failure: { error: unknown } | undefined;
  /** The consumer stopped (finished, or failed writing): later chunks are dropped, the producer never waits. */
  private gone = false;
  private wakeConsumer: (() => void) | undefined;
  private wakeProducer: (() => void) | undefined;

  push(chunk: Uint8Array): Promise<void> {
    if (this.gone || this.failure || this.ended) return Promise.resolve();
    this.queue.push(chunk);
    this.wake();
    if (this.queue.length < HIGH_WATER) return Promise.resolve();
    return new Promise((resolve) => (this.wakeProducer = resolve));
  }

  end(): void {
    this.ended = true;
    this.wake();
  }

  fail(error: unknown): void {
    if (this.ended) return;
    this.failure = { error };
    this.wake();
  }

  private wake(): void {
    const wake = this.wakeConsumer;
    this.wakeConsumer = undefined;
    wake?.();
  }

  private release(): void {
    const wake = this.wakeProducer;
    this.wakeProducer = undefined;
    wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    try {
      for (;;) {
        if (this.failure) throw this.failure.error;
        if (this.queue.length > 0) {
          // Handed on one by one, not joined: the store gathers chunks into large writes itself.
          const chunks = this.queue;
          this.queue = [];
          this.release();
          yield* chunks;
          continue;
        }
        if (this.ended) return;
        await new Promise<void>((resolve) => (this.wakeConsumer = resolve));
      }
    } finally {
      this.gone = true;
      this.queue = [];
      this.release();
    }
  }
}

/** Why a captured body was not stored. */
export class BodyNotCompleteError extends Error {
  constructor(reason: string) {
    super(`the response body was ${reason}`);
  }
}

/**
 * Tees `body` into the stream returned for the caller and `sink`, which consumes the chunks (a store write).
 * `expectedSize`, when known (a Content-Length without a Content-Encoding), makes a body of another length fail
 * the sink. `settled` resolves with the sink's result, or `undefined` if the body did not complete or the
 * sink failed (`onSinkError` sees why, unless the body itself was cancelled or cut). The caller's stream closes
 * only after the sink settled.
 */
export function captureBody<T>(
  body: ReadableStream<Uint8Array>,
  sink: (chunks: AsyncIterable<Uint8Array>) => Promise<T>,
  expectedSize: number | undefined,
  onSinkError: (error: unknown) => void,
): { stream: ReadableStream<Uint8Array>; settled: Promise<T | undefined> } {
  const channel = new ChunkChannel();
  const reader = body.getReader();
  let size = 0;
  let bodyFailed = false;
  const settled = sink(channel).then(
    (value) => value,
    (error: unknown) => {
      if (!bodyFailed) onSinkError(error);
      return undefined;
    },
  );
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        let result: Awaited<ReturnType<typeof reader.read>>;
        try {
          result = await reader.read();
        } catch (error) {
          bodyFailed = true;
          channel.fail(error);
          controller.error(error);
          return;
        }
        if (result.done) {
          if (expectedSize !== undefined && size !== expectedSize) {
            bodyFailed = true;
            const error = new BodyNotCompleteError(`cut: ${size} of ${expectedSize} bytes`);
            channel.fail(error);
            controller.error(error);
            return;
          }
          channel.end();
          // The caller's stream ends once the store has the whole body (or gave up): a read to the end, then
          // another request, finds it stored.
          await settled;
          controller.close();
          return;
        }
        size += result.value.byteLength;
        await channel.push(result.value);
        controller.enqueue(result.value);
      },
      async cancel(reason) {
        bodyFailed = true;
        channel.fail(new BodyNotCompleteError("cancelled"));
        await reader.cancel(reason);
      },
    },
    { highWaterMark: 4 }, // a few chunks read ahead, as Readable.fromWeb does
  );
  return { stream, settled };
}

/** Reads a stream to its end, dropping the chunks (a body only the store wants). */
export async function drain(stream: ReadableStream<Uint8Array>): Promise<void> {
  const reader = stream.getReader();
  for (;;) {
    const { done } = await reader.read();
    if (done) return;
  }
}
