import type { Database, DatabaseClient } from "./database.js";

/**
 * The shared tier's schema, as the versioned steps that build it. A database is brought to the last version by
 * {@link migrate}; a step is never edited once released, only followed by another (so a database made by an older
 * cachet is carried forward in place, keeping its entries).
 */
export const MIGRATIONS: readonly { version: number; statements: readonly string[] }[] = [
  {
    version: 1,
    statements: [
      `CREATE TABLE cachet_blobs (
         id bigserial PRIMARY KEY,
         digest text UNIQUE,
         size bigint NOT NULL,
         chunk_size integer NOT NULL,
         created_at timestamptz NOT NULL DEFAULT now()
       )`,
      `CREATE TABLE cachet_blob_chunks (
         blob_id bigint NOT NULL REFERENCES cachet_blobs (id) ON DELETE CASCADE,
         seq integer NOT NULL,
         data bytea NOT NULL,
         PRIMARY KEY (blob_id, seq)
       )`,
      // Chunks are already compressed or not worth compressing; EXTERNAL skips pglz and was measured fastest.
      `ALTER TABLE cachet_blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL`,
      `CREATE TABLE cachet_entries (
         name text NOT NULL,
         key text NOT NULL,
         storage text NOT NULL,
         digest text NOT NULL,
         size bigint NOT NULL,
         inline bytea,
         origin text NOT NULL,
         cost_ms double precision NOT NULL,
         format text,
         components jsonb,
         created_at timestamptz NOT NULL DEFAULT now(),
         last_used_at timestamptz NOT NULL DEFAULT now(),
         PRIMARY KEY (name, key)
       )`,
      `CREATE TABLE cachet_leases (
         name text NOT NULL,
         key text NOT NULL,
         owner text NOT NULL,
         token bigint NOT NULL,
         expires_at timestamptz NOT NULL,
         PRIMARY KEY (name, key)
       )`,
      `CREATE SEQUENCE cachet_lease_tokens`,
    ],
  },
  {
    version: 2,
    statements: [
      `ALTER TABLE cachet_entries ADD COLUMN signature bytea`,
      `ALTER TABLE cachet_entries ADD COLUMN fence bigint`,
      `CREATE INDEX cachet_entries_last_used ON cachet_entries (last_used_at)`,
      `CREATE INDEX cachet_entries_digest ON cachet_entries (digest)`,
    ],
  },
];

/** The schema version this cachet writes. */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** The advisory lock key every cachet holds while it migrates (one number, chosen once). */
const MIGRATION_LOCK = 0x63616368; // "cach"

/**
 * Brings the database to `target` (default the current version) under a session advisory lock, so any number of
 * clients connecting at once for the first time end with one schema. Returns the version found before.
 */
export async function migrate(database: Database, target = SCHEMA_VERSION): Promise<number> {
  const client = await database.connect();
  let broken = false;
  try {
    await client.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK]);
    try {
      return await migrateLocked(client, target);
    } finally {
      await client.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK]).catch(() => (broken = true));
    }
  } catch (error) {
    broken = true;
    throw database.wrap(error);
  } finally {
    client.release(broken);
  }
}

async function migrateLocked(client: DatabaseClient, target: number): Promise<number> {
  await client.query("CREATE TABLE IF NOT EXISTS cachet_schema (version integer NOT NULL)");
  const found = await client.query<{ version: number }>("SELECT version FROM cachet_schema");
  const before = found.rows[0]?.version ?? 0;
  for (const step of MIGRATIONS) {
    if (step.version <= before || step.version > target) continue;
    await client.query("BEGIN");
    try {
      for (const statement of step.statements) await client.query(statement);
      await client.query("DELETE FROM cachet_schema");
      await client.query("INSERT INTO cachet_schema (version) VALUES ($1)", [step.version]);
      await client.query("COMMIT");
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {});
      throw error;
    }
  }
  return before;
}

/** The version of the schema in the database (0 when cachet never migrated it). */
export async function schemaVersion(database: Database): Promise<number> {
  const exists = await database.query<{ present: boolean }>("SELECT to_regclass('cachet_schema') IS NOT NULL AS present");
  if (!exists.rows[0]!.present) return 0;
  const found = await database.query<{ version: number }>("SELECT version FROM cachet_schema");
  return found.rows[0]?.version ?? 0;
}
