import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import type { Database, DatabaseClient } from "./database.js";
import { RemoteIntegrityError } from "./errors.js";

/** Bytes per `bytea` chunk row: 1 MiB rows with EXTERNAL storage were measured fastest on loopback. */
export const CHUNK_SIZE = 1 << 20;
/** Chunk rows fetched per query while reading a blob. */
const CHUNKS_PER_FETCH = 4;
/**
 * Chunk rows written per statement while uploading. One: the driver copies a statement's parameters into a buffer
 * it grows as it goes, so four 1 MiB chunks in one statement cost about twice the copying of four statements, and
 * a 256 MiB upload measured about 1.4× faster with one chunk per statement than with four (the round trips it adds
 * are a fraction of a millisecond each).
 */
const CHUNKS_PER_INSERT = 1;

/** What an upload stored (or found already stored). */
export interface RemoteBlob {
  digest: string;
  size: number;
  /** False when a blob with that digest was there already and nothing was sent. */
  uploaded: boolean;
  /** True when that blob was found before anything of the source was read (the source can still be sent). */
  unread?: boolean;
}

/** The size of the complete blob `digest`, or undefined when the shared tier does not hold it. */
export async function remoteBlobSize(database: Database, digest: string): Promise<number | undefined> {
  const found = await database.query<{ size: string }>("SELECT size FROM cachet_blobs WHERE digest = $1", [digest]);
  return found.rows[0] === undefined ? undefined : Number(found.rows[0].size);
}

const statementNames = new Map<string, string>();
/** Bumped when the server says a prepared statement no longer fits the tables: every name is new after that. */
let statementGeneration = 0;

/**
 * A name per distinct statement text (a handful), so each connection prepares the one-statement upload once: its
 * parsing and planning are paid once, and it measured well below the same statement unnamed (a 1 MiB upload with
 * its entry in about 0.7 of the time, on a loaded machine).
 */
function statementName(text: string): string {
  let name = statementNames.get(text);
  if (name === undefined) statementNames.set(text, (name = `cachet_upload_${statementGeneration}_${statementNames.size}`));
  return name;
}

/**
 * True for the server's refusal to run a statement prepared before a table's column types changed (a migration
 * while this process ran): every connection that prepared it would refuse it again, so it must be prepared anew.
 */
function isStalePreparedStatement(error: unknown): boolean {
  return (error as { cause?: { code?: unknown } }).cause?.code === "0A000" && /cached plan must not change result type/.test((error as Error).message);
}

/** How the entry that refers to an uploaded blob is committed with it (see {@link uploadBlob}). */
export interface EntryCommit<R> {
  /** Runs first in the transaction that commits the entry (the fence check), when there is one. */
  before?: ((client: DatabaseClient) => Promise<void>) | undefined;
  /**
   * The entry's `INSERT`, its parameters numbered from `from`, writing the row only when the SQL condition `when`
   * holds, and `RETURNING` it.
   */
  insert(blob: { digest: string; size: number }, from: number, when: string): { text: string; values: unknown[] };
}

/**
 * Uploads a blob and, with `commit`, the entry that refers to it, atomically: a reader never sees a blob before
 * all its chunks are there, nor an entry before its blob, and a writer that dies (or a server killed mid-upload)
 * leaves nothing. Content-addressed: when `expectedDigest` is given and the blob is there already, nothing is sent;
 * when another writer commits the same digest first, theirs is kept (and the entry committed on it, in the same
 * transaction). `expectedDigest` is also checked against what was read (a mismatch fails, nothing is kept).
 * `committed` is the entry's row; it is missing when the blob was found stored before anything was read, and the
 * caller commits the entry on its own then.
 *
 * A blob of one chunk is hashed first and goes up in a single statement with its entry (one round trip, atomic as
 * any statement); a larger one streams in 1 MiB chunks inside one transaction, hashed while the server stores
 * them, and gets its digest only at the end, after its entry's row is written (see {@link nameOrKeepStored}).
 */
export async function uploadBlob<R = never>(
  database: Database,
  source: Uint8Array | AsyncIterable<Uint8Array>,
  expectedDigest?: string,
  commit?: EntryCommit<R>,
): Promise<RemoteBlob & { committed?: R }> {
  if (expectedDigest !== undefined) {
    const size = await remoteBlobSize(database, expectedDigest);
    if (size !== undefined) return { digest: expectedDigest, size, uploaded: false, unread: true };
  }
  const chunks = rechunk(source);
  try {
    const head: Buffer[] = [];
    let next = await chunks.next();
    if (!next.done) {
      head.push(next.value);
      next = await chunks.next();
    }
    if (next.done) return await uploadWhole(database, head, expectedDigest, commit);
    head.push(next.value);
    return await uploadChunked(database, head, chunks, expectedDigest, commit);
  } finally {
    // A failed upload stops reading its source (a tree's archive closes its files).
    await chunks.return(undefined).catch(() => {});
  }
}

/** A blob of at most one chunk, with its entry, in one statement (in a transaction only behind a fence check). */
async function uploadWhole<R>(database: Database, chunks: Buffer[], expectedDigest: string | undefined, commit: EntryCommit<R> | undefined): Promise<RemoteBlob & { committed?: R }> {
  const hash = createHash("sha256");
  let size = 0;
  for (const chunk of chunks) {
    hash.update(chunk);
    size += chunk.byteLength;
  }
  const digest = hash.digest("hex");
  if (expectedDigest !== undefined && digest !== expectedDigest) throw new RemoteIntegrityError("upload", expectedDigest, digest);
  const values: unknown[] = [digest, size, CHUNK_SIZE];
  const rows = chunks.map((chunk, seq) => `($${values.push(seq)}::integer, $${values.push(chunk)}::bytea)`).join(", ");
  const entry = commit?.insert({ digest, size }, values.length + 1, "true");
  // The blob row is locked, not changed, when that content is stored already (so no prune removes it under the
  // entry); then no chunk is written.
  const text = `WITH blob AS (
       INSERT INTO cachet_blobs (digest, size, chunk_size) VALUES ($1, $2, $3)
       ON CONFLICT (digest) DO UPDATE SET size = EXCLUDED.size WHERE false
       RETURNING id)
     ${rows ? `, chunks AS (INSERT INTO cachet_blob_chunks (blob_id, seq, data) SELECT blob.id, chunk.seq, chunk.data FROM blob, (VALUES ${rows}) AS chunk (seq, data))` : ""}
     ${entry ? `, entry AS (${entry.text}) SELECT (SELECT count(*) FROM blob) AS cachet_uploaded, entry.* FROM entry` : "SELECT count(*) AS cachet_uploaded FROM blob"}`;
  const before = commit?.before;
  const run = () => {
    const query = { name: statementName(text), text, values: entry ? [...values, ...entry.values] : values };
    return before === undefined
      ? database.query(query)
      : database.transaction(async (client) => {
          await before(client);
          return client.query(query);
        });
  };
  const result = await run().catch((error: unknown) => {
    if (!isStalePreparedStatement(error)) throw error;
    // Nothing was written (the statement was refused); under new names it is prepared against the tables as they are.
    statementGeneration++;
    statementNames.clear();
    return run();
  });
  const { cachet_uploaded: uploaded, ...row } = result.rows[0]!;
  return { digest, size, uploaded: Number(uploaded) === 1, ...(entry ? { committed: row as R } : {}) };
}

/** A blob of several chunks, streamed a few chunks per statement in one transaction, named at the end. */
async function uploadChunked<R>(
  database: Database,
  head: Buffer[],
  rest: AsyncIterator<Buffer>,
  expectedDigest: string | undefined,
  commit: EntryCommit<R> | undefined,
): Promise<RemoteBlob & { committed?: R }> {
  return database.transaction(async (client) => {
    let id: string | undefined;
    const hash = createHash("sha256");
    let size = 0;
    let seq = 0;
    // At most CHUNKS_PER_INSERT chunks held.
    let batch: Buffer[] = [];
    const flush = async () => {
      if (batch.length === 0) return;
      // $1 is the blob's id, or the chunk size of the blob row that goes with the first chunks (no digest yet).
      const values: unknown[] = [id ?? CHUNK_SIZE];
      const pairs = batch.map((chunk) => [`$${values.push(seq++)}`, `$${values.push(chunk)}`]);
      const text =
        id === undefined
          ? `WITH blob AS (INSERT INTO cachet_blobs (digest, size, chunk_size) VALUES (NULL, 0, $1) RETURNING id),
             chunks AS (INSERT INTO cachet_blob_chunks (blob_id, seq, data) SELECT blob.id, chunk.seq, chunk.data
               FROM blob, (VALUES ${pairs.map(([seq, data]) => `(${seq}::integer, ${data}::bytea)`).join(", ")}) AS chunk (seq, data))
             SELECT id FROM blob`
          : `INSERT INTO cachet_blob_chunks (blob_id, seq, data) VALUES ${pairs.map(([seq, data]) => `($1, ${seq}, ${data})`).join(", ")}`;
      const sending = client.query<{ id: string }>(text, values);
      // Hashed while the server stores them.
      for (const chunk of batch) hash.update(chunk);
      batch = [];
      const result = await sending;
      id ??= (result.rows[0] as { id: string }).id;
    };
    const add = async (chunk: Buffer) => {
      size += chunk.byteLength;
      batch.push(chunk);
      if (batch.length === CHUNKS_PER_INSERT) await flush();
    };
    for (const chunk of head) await add(chunk);
    for (let next = await rest.next(); !next.done; next = await rest.next()) await add(next.value);
    await flush();
    const digest = hash.digest("hex");
    if (expectedDigest !== undefined && digest !== expectedDigest) throw new RemoteIntegrityError("upload", expectedDigest, digest);
    if (commit?.before !== undefined) await commit.before(client);
    // The entry's row first: writing it holds the entries table's ROW EXCLUSIVE lock, which a prune's SHARE lock
    // conflicts with, so no prune removes a blob from here to the commit, and the look below is final.
    let committed: R | undefined;
    if (commit !== undefined) {
      const entry = commit.insert({ digest, size }, 1, "true");
      committed = (await client.query(entry.text, entry.values)).rows[0] as R;
    }
    const uploaded = await nameOrKeepStored(client, id!, digest, size);
    return { digest, size, uploaded, ...(committed !== undefined ? { committed } : {}) };
  });
}

/**
 * At the end of a chunked upload: when another writer's blob of the same digest is stored, this upload's unnamed
 * blob is dropped and theirs kept (locked, so no repair or verify removes it before the commit); else this one is
 * named with the digest. A writer naming the same digest at the same moment commits first (the unique index makes
 * this one wait, then refuse, 23505): back to the look, which finds theirs. False when the stored blob is kept.
 */
async function nameOrKeepStored(client: DatabaseClient, id: string, digest: string, size: number): Promise<boolean> {
  for (let attempt = 1; ; attempt++) {
    const stored = await client.query("SELECT 1 FROM cachet_blobs WHERE digest = $1 FOR KEY SHARE", [digest]);
    if (stored.rowCount === 1) {
      await client.query("DELETE FROM cachet_blobs WHERE id = $1", [id]);
      return false;
    }
    await client.query("SAVEPOINT cachet_name_blob");
    try {
      await client.query("UPDATE cachet_blobs SET digest = $1, size = $2 WHERE id = $3", [digest, size, id]);
      return true;
    } catch (error) {
      // A few tries: each 23505 means a blob of the digest was committed, which the next look finds (unless a
      // repair removed it meanwhile).
      if ((error as { code?: string }).code !== "23505" || attempt === 3) throw error;
      await client.query("ROLLBACK TO SAVEPOINT cachet_name_blob");
    }
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
 * How a chunk's bytes travel from the server: as `bytea`'s own output (hex text), which the driver turns into a
 * Buffer. `encode(data, 'base64')` is a third smaller on the wire and quicker for the client to decode, but the
 * server's `encode` took about 20 ms more per MiB than `bytea`'s output here, which made a 1 MiB read 1.6× slower
 * (a 256 MiB read, whose pages overlap, the same either way). Its column is `data`. A query that selects it has no
 * `ORDER BY`: a sort would hold the chunks (spilling four of them to disk); the chunks are put in order here instead.
 */
export const CHUNK_DATA = "c.data AS data";

/** A page of a blob's chunks as a query returns them (`seq`, and `data` as {@link CHUNK_DATA}). */
export interface ChunkRow {
  seq: number | null;
  data: Buffer | null;
}

/** How a read treats a blob whose bytes do not hash to its digest. */
export interface BlobReadOptions {
  /**
   * Remove that very blob row (by its id; its chunks go with it) before the read fails, so the next upload of the
   * content sends it again instead of finding it stored. A writable client's reads do; a read-only one's do not.
   */
  removeDamaged?: boolean | undefined;
}

/** The {@link RemoteIntegrityError} of damaged content (a blob, an inline value), saying whether the reader removed it. */
export class DamagedContentError extends RemoteIntegrityError {
  /** `blobId`: the row of the blob that failed (none for an inline value). */
  constructor(digest: string, actual: string, readonly removed: boolean, what = `blob ${digest}`, readonly blobId?: string) {
    super(what, digest, actual);
  }
}

/**
 * A stream of the blob `digest`, fetched a few chunks per query and checked as it goes: the stream errors with
 * {@link RemoteIntegrityError} at its end when the bytes do not hash to `digest` (a missing chunk, a changed
 * one), so a reader that waits for the end never keeps wrong data. Undefined when the blob is not stored.
 */
export async function openBlobStream(database: Database, digest: string, options: BlobReadOptions = {}): Promise<Readable | undefined> {
  // The blob's row and its first page of chunks in one round trip (a blob of no bytes has no chunk rows).
  const found = await database.query<{ id: string; size: string } & ChunkRow>({
    name: "cachet_read_blob",
    text: `SELECT b.id, b.size, c.seq, ${CHUNK_DATA} FROM cachet_blobs b
     LEFT JOIN cachet_blob_chunks c ON c.blob_id = b.id AND c.seq < $2
     WHERE b.digest = $1`,
    values: [digest, CHUNKS_PER_FETCH],
  });
  const row = found.rows[0];
  return row === undefined ? undefined : blobStream(database, row.id, Number(row.size), digest, found.rows, options);
}

/** The first page of a blob's chunks, for a query that joins them on the blob `b` (see {@link CHUNK_DATA}). */
export const FIRST_PAGE = `c.seq < ${CHUNKS_PER_FETCH}`;

/**
 * The stream of the blob `id` of `size` bytes, checked against `digest` as {@link openBlobStream}'s, from its first
 * page of chunks (rows whose `seq` is null, from a join that found none, are left out) and the pages after it.
 */
export function blobStream(database: Database, id: string, size: number, digest: string, firstPage: readonly ChunkRow[], options: BlobReadOptions = {}): Readable {
  const first = inOrder(firstPage.filter((chunk) => chunk.seq !== null) as { seq: number; data: Buffer }[]);
  return Readable.from(readChunks(database, id, size, digest, first, options.removeDamaged === true), { objectMode: false });
}

async function* readChunks(database: Database, id: string, size: number, digest: string, first: { seq: number; data: Buffer }[], removeDamaged: boolean): AsyncGenerator<Buffer> {
  // The stream fails only once the removal is done, so an upload that follows the failed read sends the content.
  const damaged = async (actual: string) => new DamagedContentError(digest, actual, removeDamaged && (await removeBlobRow(database, id, digest)), `blob ${digest}`, id);
  const hash = createHash("sha256");
  let read = 0;
  const fetch = (from: number) => {
    const page = database.query<{ seq: number; data: Buffer }>({
      name: "cachet_read_chunks",
      text: `SELECT c.seq, ${CHUNK_DATA} FROM cachet_blob_chunks c WHERE c.blob_id = $1 AND c.seq >= $2 AND c.seq < $3`,
      values: [id, from, from + CHUNKS_PER_FETCH],
    });
    const ordered = page.then((result) => ({ rows: inOrder(result.rows) }));
    // A stream destroyed before it reads this page leaves it unawaited.
    ordered.catch(() => {});
    return ordered;
  };
  const chunks = Math.ceil(size / CHUNK_SIZE);
  let next: Promise<{ rows: { seq: number; data: Buffer }[] }> = Promise.resolve({ rows: first });
  for (let seq = 0; ; seq += CHUNKS_PER_FETCH) {
    const page = await next;
    // The next page is asked for while this one is hashed and consumed (on a connection of its own).
    if (seq + CHUNKS_PER_FETCH < chunks) next = fetch(seq + CHUNKS_PER_FETCH);
    for (const [offset, chunk] of page.rows.entries()) {
      if (chunk.seq !== seq + offset) throw await damaged(`a gap at chunk ${seq + offset}`);
      // Whatever a damaged chunk holds is caught by the digest below.
      const data = chunk.data;
      hash.update(data);
      read += data.byteLength;
      yield data;
    }
    if (page.rows.length < CHUNKS_PER_FETCH || seq + CHUNKS_PER_FETCH >= chunks) break;
  }
  const actual = hash.digest("hex");
  if (actual !== digest || read !== size) throw await damaged(`${actual} (${read} of ${size} bytes)`);
}

/**
 * Deletes the blob row `id` whose bytes failed their digest; true when it is gone (this reader or another one, a
 * prune, removed it). Blob rows are immutable once named and ids never come back, so this removes exactly the bytes
 * that failed (a blob stored anew under the digest has another id, an upload in flight has no digest). A failure
 * to delete (a timeout, a lost connection) leaves it: the read is a miss anyway.
 */
async function removeBlobRow(database: Database, id: string, digest: string): Promise<boolean> {
  try {
    await database.query("DELETE FROM cachet_blobs WHERE id = $1 AND digest = $2", [id, digest]);
    return true;
  } catch {
    return false;
  }
}

function inOrder<T extends { seq: number }>(rows: T[]): T[] {
  return rows.sort((a, b) => a.seq - b.seq);
}

/**
 * Reads the blob `digest` through and checks it, removing it when damaged (see {@link BlobReadOptions}): "sound",
 * "removed", "damaged" (found so but not removed) or "missing" (gone already); undefined when the read failed
 * otherwise.
 */
export async function checkBlob(database: Database, digest: string): Promise<"sound" | "removed" | "damaged" | "missing" | undefined> {
  try {
    const stream = await openBlobStream(database, digest, { removeDamaged: true });
    if (stream === undefined) return "missing";
    for await (const _ of stream) void _;
    return "sound";
  } catch (error) {
    if (error instanceof DamagedContentError) return error.removed ? "removed" : "damaged";
    return undefined;
  }
}

/** The whole blob `digest`, checked, or undefined when it is not stored. */
export async function readBlobBytes(database: Database, digest: string, options: BlobReadOptions = {}): Promise<Buffer | undefined> {
  const stream = await openBlobStream(database, digest, options);
  if (stream === undefined) return undefined;
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part as Buffer);
  return Buffer.concat(parts);
}
