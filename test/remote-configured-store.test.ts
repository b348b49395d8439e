// openConfiguredStore(), the store tasks open by default: the local store, or the tiered one when a remote is set
// (the remote is only connected to when first used, so no server is needed here).
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { Store, TieredStore, openConfiguredStore, type StoreWarning } from "../src/index.js";
import { tempDir } from "./helpers.js";

describe("openConfiguredStore", () => {
  const dirs = tempDir("cachet-configured-store-");
  after(() => dirs.cleanup());

  test("the local store without a remote; the tiered one with CACHET_REMOTE; local alone for a temporary cache", async () => {
    const local = await openConfiguredStore({ cacheDir: join(dirs.path, "a"), env: {} });
    assert.ok(local instanceof Store);
    await local.close();
    const tiered = await openConfiguredStore({ cacheDir: join(dirs.path, "b"), env: { CACHET_REMOTE: "postgres://u:pw-secret@127.0.0.1:1/x" } });
    assert.ok(tiered instanceof TieredStore);
    assert.equal(tiered.root, join(dirs.path, "b"));
    await tiered.close();
    const temporary = await openConfiguredStore({ noCache: true, env: { CACHET_REMOTE: "postgres://127.0.0.1:1/x" } });
    assert.ok(temporary instanceof Store);
    await temporary.close();
  });

  test("a remote setting that is not understood: the local store, and one warning without the password", async () => {
    const warnings: StoreWarning[] = [];
    const store = await openConfiguredStore({
      cacheDir: join(dirs.path, "c"),
      env: { CACHET_REMOTE: "mysql://u:pw-secret@db/x" },
      onWarning: (warning) => warnings.push(warning),
    });
    try {
      assert.ok(store instanceof Store);
      assert.deepEqual(warnings.map((warning) => warning.code), ["CACHET_BAD_SETTING"]);
      assert.doesNotMatch(warnings[0]!.message, /pw-secret/);
    } finally {
      await store.close();
    }
  });

  test("the other remote settings not understood (lease expiry, leases URL, write switch): the local store, and one warning", async () => {
    for (const [index, extra] of [{ CACHET_LEASE_EXPIRY: "soon" }, { CACHET_LEASE_EXPIRY: "0.001" }, { CACHET_LEASES: "http://u:pw-secret@h/x" }, { CACHET_REMOTE_WRITE: "maybe" }].entries()) {
      const warnings: StoreWarning[] = [];
      const store = await openConfiguredStore({
        cacheDir: join(dirs.path, `d${index}`),
        env: { CACHET_REMOTE: "postgres://u:pw-secret@127.0.0.1:1/x", ...extra },
        onWarning: (warning) => warnings.push(warning),
      });
      try {
        assert.ok(store instanceof Store, JSON.stringify(extra));
        assert.deepEqual(warnings.map((warning) => warning.code), ["CACHET_BAD_SETTING"]);
        assert.doesNotMatch(warnings[0]!.message, /pw-secret/);
      } finally {
        await store.close();
      }
    }
  });
});
