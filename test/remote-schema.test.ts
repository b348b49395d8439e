// Creating the shared tier's schema: a hundred clients connecting to a fresh database at once end with one schema
// (the migration runs under an advisory lock). On a PostgreSQL of the test's own, so a hundred connections do not
// crowd the machine's shared server. A column type changed under a running client (a migration while it runs)
// does not break its uploads, whose statements it had prepared against the old tables.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { SCHEMA_VERSION, openRemoteStore } from "../src/index.js";
import { createTestDatabase, ownPostgresSkipReason, postgresSkipReason, sql, startOwnPostgres, type OwnPostgres } from "./remote-servers.js";

describe("the shared tier's schema", { skip: ownPostgresSkipReason }, () => {
  let server: OwnPostgres;
  before(async () => {
    server = await startOwnPostgres(["max_connections=150"]);
  });
  after(() => server?.remove());

  test("100 clients migrating a fresh database at once end with one schema", async () => {
    const stores = await Promise.all(Array.from({ length: 100 }, () => openRemoteStore({ url: server.url })));
    await Promise.all(stores.map((store) => store.close()));
    assert.deepEqual(await sql(server.url, "SELECT version FROM cachet_schema"), [{ version: SCHEMA_VERSION }]);
    const tables = await sql<{ relname: string }>(server.url, "SELECT relname FROM pg_class WHERE relname LIKE 'cachet_%' AND relkind IN ('r', 'S') ORDER BY relname");
    assert.deepEqual(tables.map((table) => table.relname), ["cachet_blob_chunks", "cachet_blobs", "cachet_blobs_id_seq", "cachet_entries", "cachet_lease_tokens", "cachet_leases", "cachet_schema"]);
  });
});

describe("a schema changed under a running client", { skip: postgresSkipReason }, () => {
  test("uploads prepared against the old column types go on working, with and without a held lease", async () => {
    const database = await createTestDatabase();
    const store = await openRemoteStore({ url: database.url });
    try {
      const upload = async (key: string, fenced: boolean) => {
        const lock = fenced ? await store.lockKey("tool", key) : undefined;
        try {
          const data = randomBytes(100_000); // one chunk: the prepared one-statement upload
          await store.put("tool", key, data);
          assert.ok(Buffer.from((await store.getValue("tool", key))!.data).equals(data), key);
        } finally {
          lock?.release();
        }
      };
      // Every connection of the pool prepares the upload statements.
      await Promise.all(["a", "b", "c", "d"].flatMap((key) => [upload(`${key}-plain`, false), upload(`${key}-fenced`, true)]));
      await sql(database.url, "ALTER TABLE cachet_entries ALTER COLUMN cost_ms TYPE real");
      for (let round = 0; round < 3; round++) {
        await Promise.all(["a", "b", "c", "d"].flatMap((key) => [upload(`${key}-plain-${round}`, false), upload(`${key}-fenced-${round}`, true)]));
      }
    } finally {
      await store.close();
      await database.drop();
    }
  });
});
