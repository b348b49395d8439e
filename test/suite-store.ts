import { after, before } from "node:test";
import { join } from "node:path";
import { openStore, type Store } from "../src/index.js";
import { tempDir } from "./helpers.js";

/**
 * A temporary folder for a test file, with a store on `<root>/cache` opened before its tests and closed (and the
 * folder removed) after them. Read `store` inside tests: it is opened by the `before` hook.
 */
export function suiteStore(): { readonly root: string; readonly store: Store } {
  const root = tempDir();
  let store: Store | undefined;
  before(async () => {
    store = await openStore({ cacheDir: join(root.path, "cache") });
  });
  after(async () => {
    await store?.close();
    root.cleanup();
  });
  return {
    root: root.path,
    get store(): Store {
      if (!store) throw new Error("the suite's store is opened by its before hook; read it inside a test");
      return store;
    },
  };
}
