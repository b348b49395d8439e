// Creating the shared tier's schema: a hundred clients connecting to a fresh database at once end with one schema
// (the migration runs under an advisory lock). On a PostgreSQL of the test's own, so a hundred connections do not
// crowd the machine's shared server.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { SCHEMA_VERSION, openRemoteStore } from "../src/index.js";
import { ownPostgresSkipReason, sql, startOwnPostgres, type OwnPostgres } from "./remote-servers.js";

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
