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
