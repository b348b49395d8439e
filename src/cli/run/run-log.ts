/**
 * The output of a `cachet run` command as it happened: chunks tagged by stream, in the order they arrived, so a
 * hit writes the same bytes to the same streams in the same interleaving. Encoded as records of one stream byte
 * (1 stdout, 2 stderr), a 4-byte big-endian length and the bytes.
 */

export const RUN_LOG_FORMAT = "cachet-run-log/1";

export type LogStream = 1 | 2;

export interface LogChunk {
  stream: LogStream;
  data: Uint8Array;
}

/** Why a log was dropped: it grew past its limit, or a reader of our output went away so it is incomplete. */
export type DropReason = "too large" | "output closed";

/** Collects chunks as they arrive, up to `limit` bytes; past it the log is dropped (the run is then not cached). */
export class RunLog {
  readonly chunks: LogChunk[] = [];
  private bytes = 0;
  dropped: DropReason | undefined;

  constructor(private readonly limit: number) {}

  add(stream: LogStream, data: Uint8Array): void {
    if (this.dropped !== undefined) return;
    this.bytes += data.length + 5;
    if (this.bytes > this.limit) this.drop("too large");
    else this.chunks.push({ stream, data });
  }

  drop(reason: DropReason): void {
    this.dropped ??= reason;
    this.chunks.length = 0;
  }

  encode(): Buffer {
    return encodeRunLog(this.chunks);
  }
}

export function encodeRunLog(chunks: readonly LogChunk[]): Buffer {
  const parts: Uint8Array[] = [];
  for (const chunk of chunks) {
    const header = Buffer.alloc(5);
    header[0] = chunk.stream;
    header.writeUInt32BE(chunk.data.length, 1);
    parts.push(header, chunk.data);
  }
  return Buffer.concat(parts);
}

/** The chunks of an encoded log, or undefined if it is not one (a damaged or foreign entry is then a miss). */
export function decodeRunLog(bytes: Uint8Array): LogChunk[] | undefined {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const chunks: LogChunk[] = [];
  let at = 0;
  while (at < buffer.length) {
    if (at + 5 > buffer.length) return undefined;
    const stream = buffer[at];
    const length = buffer.readUInt32BE(at + 1);
    if ((stream !== 1 && stream !== 2) || at + 5 + length > buffer.length) return undefined;
    chunks.push({ stream, data: buffer.subarray(at + 5, at + 5 + length) });
    at += 5 + length;
  }
  return chunks;
}
