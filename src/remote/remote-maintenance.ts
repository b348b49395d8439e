import { createHash } from "node:crypto";
import type pg from "pg";
import type { Database, DatabaseClient } from "./database.js";
import { DamagedContentError, openBlobStream } from "./remote-blobs.js";
import type { RemotePruneOptions, RemoteRemoval, RemoteSize, RemoteVerifyResult } from "./maintenance-results.js";

/** Counts what the shared tier holds. */
export async function measureRemote(database: Database): Promise<RemoteSize> {
  const [row] = (
    await database.query<{ entries: string; blobs: string; blob_bytes: string | null; inline_bytes: string | null; leases: string }>(
      `SELECT (SELECT count(*) FROM cachet_entries) AS entries,
              (SELECT count(*) FROM cachet_blobs WHERE digest IS NOT NULL) AS blobs,
              (SELECT sum(size) FROM cachet_blobs WHERE digest IS NOT NULL) AS blob_bytes,
              (SELECT sum(size) FROM cachet_entries WHERE inline IS NOT NULL) AS inline_bytes,
              (SELECT count(*) FROM cachet_leases WHERE expires_at >= now()) AS leases`,
    )
  ).rows;
  return {
    entries: Number(row!.entries),
    blobs: Number(row!.blobs),
    bytes: Number(row!.blob_bytes ?? 0) + Number(row!.inline_bytes ?? 0),
    leases: Number(row!.leases),
  };
}

/**
 * Removes every entry (or those of `names`), then the blobs nothing refers to any more. Leases are left alone:
 * a holder still computing commits its result as usual.
 */
export async function cleanRemote(database: Database, names?: readonly string[]): Promise<RemoteRemoval> {
  const removed =
    names === undefined || names.length === 0
      ? await database.query("DELETE FROM cachet_entries")
      : await database.query("DELETE FROM cachet_entries WHERE name = ANY($1::text[])", [names]);
  const blobs = await database.transaction(removeUnreferencedBlobs);
  return { entries: removed.rowCount ?? 0, ...blobs, leases: 0 };
}

/** A connection, or the pool, to run a statement on. */
interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

/**
 * Removes entries older than `maxAgeMs` and least-recently-used ones beyond `maxSizeBytes` (when given), then,
 * always, the blobs no entry refers to and the expired leases. With `dryRun`, the same statements run in one
 * transaction that is rolled back: the counts are what a prune at that moment would remove, and nothing goes.
 */
export async function pruneRemote(database: Database, options: RemotePruneOptions = {}): Promise<RemoteRemoval> {
  if (options.dryRun === true) return database.rehearse((client) => prune(client, options, (work) => work(client)));
  return prune(database, options, (work) => database.transaction(work));
}

async function prune(
  on: Queryable,
  options: RemotePruneOptions,
  inTransaction: <T>(work: (client: DatabaseClient) => Promise<T>) => Promise<T>,
): Promise<RemoteRemoval> {
  let entries = 0;
  if (options.maxAgeMs !== undefined) {
    const old = await on.query(
      `DELETE FROM cachet_entries WHERE greatest(last_used_at, created_at) < now() - make_interval(secs => $1)
         OR least(last_used_at, created_at) > now() + interval '1 minute'`,
      [options.maxAgeMs / 1000],
    );
    entries += old.rowCount ?? 0;
  }
  if (options.maxSizeBytes !== undefined) {
    // Each entry's own bytes (inline, or its blob's once per digest, counted at its most recent user).
    const over = await on.query(
      `WITH sized AS (
         SELECT e.name, e.key, e.last_used_at,
                CASE WHEN row_number() OVER (PARTITION BY e.digest ORDER BY e.last_used_at DESC, e.name, e.key) = 1 THEN e.size ELSE 0 END AS bytes
         FROM cachet_entries e),
       ranked AS (
         SELECT name, key, sum(bytes) OVER (ORDER BY last_used_at DESC, name, key) AS running FROM sized)
       DELETE FROM cachet_entries e USING ranked r WHERE e.name = r.name AND e.key = r.key AND r.running > $1`,
      [options.maxSizeBytes],
    );
    entries += over.rowCount ?? 0;
  }
  const blobs = await inTransaction(removeUnreferencedBlobs);
  const leases = await on.query("DELETE FROM cachet_leases WHERE expires_at < now()");
  return { entries, ...blobs, leases: leases.rowCount ?? 0 };
}

/**
 * Deletes complete blobs that no entry refers to. The entries table is locked against writers meanwhile (readers
 * go on), and a commit checks its blob after writing its row, so a blob is never removed under an entry that is
 * being committed. Uploads in flight have no digest yet and are not seen. Runs inside a transaction.
 */
async function removeUnreferencedBlobs(client: DatabaseClient): Promise<{ blobs: number; bytes: number }> {
  await client.query("LOCK TABLE cachet_entries IN SHARE MODE");
  const removed = await client.query<{ size: string }>(
    `DELETE FROM cachet_blobs b WHERE b.digest IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM cachet_entries e WHERE e.digest = b.digest AND e.inline IS NULL)
     RETURNING size`,
  );
  return { blobs: removed.rowCount ?? 0, bytes: removed.rows.reduce((total, row) => total + Number(row.size), 0) };
}

/** Reads every blob and inline value, checks each against its sha256, and removes what fails with the entries on it. */
export async function verifyRemote(database: Database): Promise<RemoteVerifyResult> {
  const bad: RemoteVerifyResult["bad"] = [];
  const inline = await database.query<{ name: string; key: string; digest: string; inline: Buffer }>(
    "SELECT name, key, digest, inline FROM cachet_entries WHERE inline IS NOT NULL",
  );
  for (const row of inline.rows) {
    if (createHash("sha256").update(row.inline).digest("hex") === row.digest) continue;
    bad.push({ name: row.name, key: row.key, reason: "its inline value does not match its digest" });
    // Only while it is still the row read: a writer that replaced it meanwhile (the same content, sound) keeps its row.
    await database.query("DELETE FROM cachet_entries WHERE name = $1 AND key = $2 AND digest = $3 AND inline = $4", [row.name, row.key, row.digest, row.inline]);
  }
  const blobs = await database.query<{ digest: string }>("SELECT digest FROM cachet_blobs WHERE digest IS NOT NULL ORDER BY digest");
  for (const { digest } of blobs.rows) {
    const problem = await blobProblem(database, digest);
    if (problem === undefined) continue;
    // The very blob row that failed goes (by its id): a reader may have removed it meanwhile and a writer stored
    // the content again, sound, under a new row, which stays with the entries committed on it. The entries go only
    // while no blob of the digest is stored.
    if (problem.blobId !== undefined) await database.query("DELETE FROM cachet_blobs WHERE id = $1 AND digest = $2", [problem.blobId, digest]);
    const dropped = await database.query<{ name: string; key: string }>(
      `DELETE FROM cachet_entries e WHERE e.digest = $1 AND e.inline IS NULL AND NOT EXISTS (SELECT 1 FROM cachet_blobs b WHERE b.digest = $1)
       RETURNING name, key`,
      [digest],
    );
    for (const row of dropped.rows) bad.push({ name: row.name, key: row.key, reason: problem.reason });
  }
  const missing = await database.query<{ name: string; key: string }>(
    `DELETE FROM cachet_entries e WHERE e.inline IS NULL AND NOT EXISTS (SELECT 1 FROM cachet_blobs b WHERE b.digest = e.digest) RETURNING name, key`,
  );
  for (const row of missing.rows) bad.push({ name: row.name, key: row.key, reason: "its content is missing" });
  return { entries: inline.rowCount ?? 0, blobs: blobs.rowCount ?? 0, bad };
}

/** Why the blob `digest` fails its check (and the row that failed), or undefined when it is sound. */
async function blobProblem(database: Database, digest: string): Promise<{ reason: string; blobId?: string } | undefined> {
  const stream = await openBlobStream(database, digest);
  if (stream === undefined) return { reason: "its content is missing" };
  try {
    for await (const _ of stream) void _;
    return undefined;
  } catch (error) {
    if (error instanceof DamagedContentError) return { reason: error.message, ...(error.blobId !== undefined ? { blobId: error.blobId } : {}) };
    if ((error as { code?: string }).code === "CACHET_INTEGRITY") return { reason: (error as Error).message };
    throw error;
  }
}
