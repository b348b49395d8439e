import type { Database, DatabaseClient } from "./database.js";
import { MIGRATIONS, SCHEMA_VERSION } from "./migrations.js";

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
