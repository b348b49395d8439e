import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import type { Database, DatabaseClient } from "./database.js";
import { RemoteIntegrityError } from "./errors.js";

/** Bytes per `bytea` chunk row: 1 MiB rows with EXTERNAL storage were measured fastest on loopback. */
export const CHUNK_SIZE = 1 << 20;
/** Chunk rows fetched per query while reading a blob. */
const CHUNKS_PER_FETCH = 4;
/** Chunk rows written per statement while uploading. */
const CHUNKS_PER_INSERT = 4;

/** What an upload stored (or found already stored). */
export interface RemoteBlob {
  digest: string;
  size: number;
  /** False when a blob with that digest was there already and nothing was sent. */
  uploaded: boolean;
}

/** The size of the complete blob `digest`, or undefined when the shared tier does not hold it. */
export async function remoteBlobSize(database: Database, digest: string): Promise<number | undefined> {
  const found = await database.query<{ size: string }>("SELECT size FROM cachet_blobs WHERE digest = $1", [digest]);
  return found.rows[0] === undefined ? undefined : Number(found.rows[0].size);
}

/**
 * Uploads a blob in 1 MiB chunks inside one transaction, hashing as it goes; the blob row gets its digest only at
 * the end, so a reader never sees a blob before all its chunks are there, and a writer that dies leaves nothing
 * (the transaction rolls back). Content-addressed: when `expectedDigest` is given and the blob is there already,
 * nothing is sent; when another writer commits the same digest first, this upload is dropped and theirs kept.
 * `expectedDigest` is also checked against what was read (a mismatch fails, nothing is kept). `commit` runs in
 * the same transaction once the blob is named (its result is `committed`); it does not run when the blob was
 * there already, and the caller commits on its own then.
 */
export async function uploadBlob<T = never>(
  database: Database,
  source: Uint8Array | AsyncIterable<Uint8Array>,
  expectedDigest?: string,
  commit?: (client: DatabaseClient, blob: RemoteBlob) => Promise<T>,
): Promise<RemoteBlob & { committed?: T }> {
  if (expectedDigest !== undefined) {
    const size = await remoteBlobSize(database, expectedDigest);
    if (size !== undefined) return { digest: expectedDigest, size, uploaded: false };
  }
  try {
    return await database.transaction(async (client) => {
      const inserted = await client.query<{ id: string }>(
        "INSERT INTO cachet_blobs (digest, size, chunk_size) VALUES (NULL, 0, $1) RETURNING id",
        [CHUNK_SIZE],
      );
      const id = inserted.rows[0]!.id;
      const hash = createHash("sha256");
      let size = 0;
      let seq = 0;
      // A few chunks per statement: fewer round trips, at most CHUNKS_PER_INSERT MiB held.
      let batch: Buffer[] = [];
      const flush = async () => {
        if (batch.length === 0) return;
        const rows = batch.map((_, i) => `($1, $${2 + 2 * i}, $${3 + 2 * i})`).join(", ");
        const sending = client.query(`INSERT INTO cachet_blob_chunks (blob_id, seq, data) VALUES ${rows}`, [id, ...batch.flatMap((chunk) => [seq++, chunk])]);
        // Hashed while the server stores them.
        for (const chunk of batch) hash.update(chunk);
        batch = [];
        await sending;
      };
      for await (const chunk of rechunk(source)) {
        size += chunk.byteLength;
        batch.push(chunk);
        if (batch.length === CHUNKS_PER_INSERT) await flush();
      }
      await flush();
      const digest = hash.digest("hex");
      if (expectedDigest !== undefined && digest !== expectedDigest) throw new RemoteIntegrityError("upload", expectedDigest, digest);
      let named;
      try {
        named = await client.query(
          "UPDATE cachet_blobs SET digest = $1, size = $2 WHERE id = $3 AND NOT EXISTS (SELECT 1 FROM cachet_blobs WHERE digest = $1)",
          [digest, size, id],
        );
      } catch (error) {
        // Another writer committed the same content while this one was uploading: theirs stands.
        if ((error as { code?: string }).code === "23505") throw new AlreadyStored(digest, size);
        throw error;
      }
      if (named.rowCount !== 1) throw new AlreadyStored(digest, size);
      const blob = { digest, size, uploaded: true };
      // The entry that refers to the blob is committed in the same transaction: one commit instead of two.
      return commit === undefined ? blob : { ...blob, committed: await commit(client, blob) };
    });
  } catch (error) {
    if (error instanceof AlreadyStored) return { digest: error.digest, size: error.size, uploaded: false };
    throw error;
  }
}

/** Rolls the upload back: the same content is stored already. */
class AlreadyStored extends Error {
  /** A cachet code, so the database layer passes it through unwrapped. */
  readonly code = "CACHET_ALREADY_STORED";
  constructor(readonly digest: string, readonly size: number) {
    super("already stored");
  }
}

/** The source's bytes as chunks of exactly {@link CHUNK_SIZE} (the last one shorter). */
async function* rechunk(source: Uint8Array | AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
  if (source instanceof Uint8Array) {
    for (let at = 0; at < source.byteLength || at === 0; at += CHUNK_SIZE) {
      yield Buffer.from(source.buffer, source.byteOffset + at, Math.min(CHUNK_SIZE, source.byteLength - at));
      if (source.byteLength === 0) return;
    }
    return;
  }
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (const piece of source) {
    let buffer = Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    // Whole chunks of the source go on as they are, uncopied (the copy of a pending part is the exception).
    while (pendingBytes === 0 && buffer.byteLength >= CHUNK_SIZE) {
      yield buffer.subarray(0, CHUNK_SIZE);
      buffer = buffer.subarray(CHUNK_SIZE);
    }
    while (pendingBytes + buffer.byteLength >= CHUNK_SIZE) {
      const take = CHUNK_SIZE - pendingBytes;
      pending.push(buffer.subarray(0, take));
      yield Buffer.concat(pending, CHUNK_SIZE);
      pending = [];
      pendingBytes = 0;
      buffer = buffer.subarray(take);
    }
    if (buffer.byteLength > 0) {
      pending.push(buffer);
      pendingBytes += buffer.byteLength;
    }
  }
  if (pendingBytes > 0) yield Buffer.concat(pending, pendingBytes);
}

/**
 * A stream of the blob `digest`, fetched a few chunks per query and checked as it goes: the stream errors with
 * {@link RemoteIntegrityError} at its end when the bytes do not hash to `digest` (a missing chunk, a changed
 * one), so a reader that waits for the end never keeps wrong data. Undefined when the blob is not stored.
 */
export async function openBlobStream(database: Database, digest: string): Promise<Readable | undefined> {
  // The blob's row and its first page of chunks in one round trip (a blob of no bytes has no chunk rows).
  const found = await database.query<{ id: string; size: string; seq: number | null; data: Buffer | null }>(
    `SELECT b.id, b.size, c.seq, c.data FROM cachet_blobs b
     LEFT JOIN cachet_blob_chunks c ON c.blob_id = b.id AND c.seq < $2
     WHERE b.digest = $1 ORDER BY c.seq`,
    [digest, CHUNKS_PER_FETCH],
  );
  const row = found.rows[0];
  if (row === undefined) return undefined;
  const first = found.rows.filter((chunk) => chunk.seq !== null) as { seq: number; data: Buffer }[];
  return Readable.from(readChunks(database, row.id, Number(row.size), digest, first), { objectMode: false });
}

async function* readChunks(database: Database, id: string, size: number, digest: string, first: { seq: number; data: Buffer }[]): AsyncGenerator<Buffer> {
  const hash = createHash("sha256");
  let read = 0;
  const fetch = (from: number) => {
    const page = database.query<{ seq: number; data: Buffer }>(
      "SELECT seq, data FROM cachet_blob_chunks WHERE blob_id = $1 AND seq >= $2 AND seq < $3 ORDER BY seq",
      [id, from, from + CHUNKS_PER_FETCH],
    );
    page.catch(() => {});
    return page;
  };
  const chunks = Math.ceil(size / CHUNK_SIZE);
  let next: Promise<{ rows: { seq: number; data: Buffer }[] }> = Promise.resolve({ rows: first });
  for (let seq = 0; ; seq += CHUNKS_PER_FETCH) {
    const page = await next;
    // The next page is asked for while this one is hashed and consumed (on a connection of its own).
    if (seq + CHUNKS_PER_FETCH < chunks) next = fetch(seq + CHUNKS_PER_FETCH);
    for (const [offset, chunk] of page.rows.entries()) {
      if (chunk.seq !== seq + offset) throw new RemoteIntegrityError(`blob ${digest}`, digest, `a gap at chunk ${seq + offset}`);
      hash.update(chunk.data);
      read += chunk.data.byteLength;
      yield chunk.data;
    }
    if (page.rows.length < CHUNKS_PER_FETCH || seq + CHUNKS_PER_FETCH >= chunks) break;
  }
  const actual = hash.digest("hex");
  if (actual !== digest || read !== size) throw new RemoteIntegrityError(`blob ${digest}`, digest, `${actual} (${read} of ${size} bytes)`);
}

/** The whole blob `digest`, checked, or undefined when it is not stored. */
export async function readBlobBytes(database: Database, digest: string): Promise<Buffer | undefined> {
  const stream = await openBlobStream(database, digest);
  if (stream === undefined) return undefined;
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part as Buffer);
  return Buffer.concat(parts);
}
