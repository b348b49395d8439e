// `verify` of the shared tier racing the clients that use it: what it removes is exactly what it found damaged,
// never content written (or repaired) while it was checking. Each test holds verify between its read and its
// removal (a trigger on its DELETE waits for an advisory lock), and lets a real client repair or rewrite the content meanwhile.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import { openRemoteStore, type RemoteStore } from "../src/index.js";
import { createTestDatabase, postgresSkipReason, sql } from "./remote-servers.js";

const MiB = 1 << 20;

describe("verify of the shared tier racing its clients", { skip: postgresSkipReason }, () => {
  /** Runs `work` on a database of its own (verify checks every row of it), dropped after. */
  async function onOwnDatabase(work: (url: string, open: () => Promise<RemoteStore>) => Promise<void>): Promise<void> {
    const db = await createTestDatabase();
    const opened: RemoteStore[] = [];
    const open = async () => {
      const store = await openRemoteStore({ url: db.url, onWarning: () => {} });
      opened.push(store);
      return store;
    };
    try {
      await work(db.url, open);
    } finally {
      await Promise.all(opened.map((store) => store.close()));
      await db.drop();
    }
  }

  /**
   * Holds any DELETE of the entry `(name, key)` (a trigger waits for the test's advisory lock) until `release()`, so
   * verify stops between its read and its removal; nothing else waits.
   */
  async function holdDeletion(url: string, name: string, key: string) {
    const LOCK = 7_406_101;
    await sql(url, `CREATE FUNCTION cachet_test_hold_delete() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_advisory_xact_lock_shared(${LOCK}); RETURN OLD; END $$`);
    await sql(url, `CREATE TRIGGER cachet_test_hold_delete BEFORE DELETE ON cachet_entries FOR EACH ROW WHEN (OLD.name = '${name}' AND OLD.key = '${key}') EXECUTE FUNCTION cachet_test_hold_delete()`);
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    await holder.query("SELECT pg_advisory_lock($1)", [LOCK]);
    return {
      /** Waits until a DELETE of that entry waits for the lock. */
      async deleteWaiting() {
        for (let tries = 0; ; tries++) {
          if (tries === 1500) throw new Error("verify never reached its removal");
          const found = await holder.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND NOT granted", [LOCK]);
          if (found.rows[0]!.n > 0) return;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      },
      async release() {
        await holder.query("SELECT pg_advisory_unlock($1)", [LOCK]).catch(() => {});
        await holder.end();
      },
    };
  }

  test("a blob that a reader repairs and a writer stores again while verify checks it: the new upload's entry and blob stay", async () => {
    await onOwnDatabase(async (url, open) => {
      const content = Buffer.concat([Buffer.alloc(2 * MiB, 7), Buffer.from("verify race")]);
      const writer = await open();
      const { digest } = await writer.put("race", "old", content);
      await sql(url, "UPDATE cachet_blob_chunks c SET data = decode(repeat('00', length(c.data)), 'hex') FROM cachet_blobs b WHERE b.id = c.blob_id AND b.digest = $1 AND c.seq = 1", [digest]);
      const lock = await holdDeletion(url, "race", "old");
      let verifying: Promise<unknown> | undefined;
      try {
        verifying = (await open()).verify();
        verifying.catch(() => {});
        await lock.deleteWaiting();
        // Meanwhile another machine's reader finds the damage and removes the blob, and a writer stores the content
        // again under another key: a good blob and a committed entry on it.
        assert.equal(await (await open()).getValue("race", "old"), undefined);
        await writer.put("race", "new", content);
      } finally {
        await lock.release();
      }
      await verifying;
      const reader = await open();
      const value = await reader.getValue("race", "new");
      assert.ok(value !== undefined && Buffer.from(value.data).equals(content), "the entry committed on the new blob is still a hit");
    });
  });

  test("an inline value rewritten while verify checks the rows before it: the new row stays", async () => {
    await onOwnDatabase(async (url, open) => {
      const writer = await open();
      await writer.put("race", "a", "value a");
      await writer.put("race", "b", "value b");
      // Damaged in this order, so verify meets a before b.
      await sql(url, "UPDATE cachet_entries SET inline = '\\x00'::bytea WHERE name = 'race' AND key = 'a'");
      await sql(url, "UPDATE cachet_entries SET inline = '\\x00'::bytea WHERE name = 'race' AND key = 'b'");
      const lock = await holdDeletion(url, "race", "a");
      let verifying: Promise<unknown> | undefined;
      try {
        verifying = (await open()).verify();
        verifying.catch(() => {});
        await lock.deleteWaiting();
        assert.deepEqual(await sql(url, "SELECT inline FROM cachet_entries WHERE name = 'race' AND key = 'b'"), [{ inline: Buffer.from([0]) }], "verify read b before it removes a");
        // b is written again, good, while verify still holds what it read of it.
        await writer.put("race", "b", "value b");
      } finally {
        await lock.release();
      }
      await verifying;
      const value = await (await open()).getValue("race", "b");
      assert.equal(value === undefined ? undefined : Buffer.from(value.data).toString(), "value b");
    });
  });
});
