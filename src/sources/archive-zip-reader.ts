// yauzl reads a zip through a "random access reader". Its own one (for `open`) sends every read through the
// thread pool, several per entry (the central directory record, the local header, the data), which dominates the
// time of a zip of many small files; this one reads the already-open file synchronously.
import { closeSync, readSync } from "node:fs";
import { Readable } from "node:stream";
import yauzl from "yauzl";

const CHUNK = 64 * 1024;

/** A yauzl reader over an open file descriptor, with synchronous reads. `close` closes it, once. */
export class FileReader extends yauzl.RandomAccessReader {
  private closed = false;

  constructor(readonly fd: number) {
    super();
  }

  /** Reads exactly `length` bytes at `position` into `buffer`, or throws at the end of the file. */
  readExactly(buffer: Buffer, offset: number, length: number, position: number): void {
    for (let done = 0; done < length; ) {
      const read = readSync(this.fd, buffer, offset + done, length - done, position + done);
      if (read === 0) throw new Error(`unexpected end of file at byte ${position + done}`);
      done += read;
    }
  }

  override read(buffer: Buffer, offset: number, length: number, position: number, callback: (error: Error | null) => void): void {
    let failure: Error | null = null;
    try {
      this.readExactly(buffer, offset, length, position);
    } catch (error) {
      failure = error as Error;
    }
    // yauzl expects the callback later, not inside this call.
    queueMicrotask(() => callback(failure));
  }

  override _readStreamForRange(start: number, end: number): Readable {
    let at = start;
    const reader = this;
    return new Readable({
      highWaterMark: CHUNK,
      read() {
        if (at >= end) return void this.push(null);
        const chunk = Buffer.allocUnsafe(Math.min(CHUNK, end - at));
        try {
          reader.readExactly(chunk, 0, chunk.length, at);
        } catch (error) {
          return void this.destroy(error as Error);
        }
        at += chunk.length;
        this.push(chunk);
      },
    });
  }

  override close(callback?: (error: Error | null) => void): void {
    if (!this.closed) {
      this.closed = true;
      closeSync(this.fd);
    }
    callback?.(null);
  }
}
