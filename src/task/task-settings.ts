import { openStore, type Store, type StoreOptions, type WarningHandler, type StoreWarning } from "../store/index.js";
import type { TaskEventHandler } from "./task-events.js";

/** Process-wide defaults for tasks that do not set their own. */
export interface TaskDefaults {
  /** The store tasks use; default: `openStore()` on first use (the resolved cache root). */
  store?: Store | StoreOptions | undefined;
  onEvent?: TaskEventHandler | undefined;
  onWarning?: WarningHandler | undefined;
}

let defaults: TaskDefaults = {};
let sharedStore: Promise<Store> | undefined;

/** Sets process-wide task defaults (a store or the options to open one, event and warning handlers). */
export function configureTasks(next: TaskDefaults): void {
  defaults = { ...defaults, ...next };
  if ("store" in next) sharedStore = undefined;
}

/** The store tasks without their own `store` use, opened once per process. */
export function defaultTaskStore(): Promise<Store> {
  if (sharedStore) return sharedStore;
  const configured = defaults.store;
  sharedStore =
    configured && "put" in configured ? Promise.resolve(configured as Store) : openStore({ ...(configured as StoreOptions | undefined) });
  sharedStore.catch(() => (sharedStore = undefined));
  return sharedStore;
}

export function defaultEventHandler(): TaskEventHandler | undefined {
  return defaults.onEvent;
}

export function defaultWarningHandler(): WarningHandler {
  return defaults.onWarning ?? ((warning: StoreWarning) => process.emitWarning(warning.message, { code: warning.code }));
}

/** `CACHET_NO_CACHE=1` turns task caching off. */
export function cachingDisabled(env: NodeJS.ProcessEnv = process.env): boolean {
  const raw = env.CACHET_NO_CACHE;
  return raw !== undefined && raw !== "" && raw !== "0" && raw.toLowerCase() !== "false";
}

/** `CACHET_REFRESH=1` (every task) or `CACHET_REFRESH=name,name` (those tasks). */
export function refreshRequested(taskName: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const raw = env.CACHET_REFRESH;
  if (raw === undefined || raw === "" || raw === "0" || raw.toLowerCase() === "false") return false;
  if (raw === "1" || raw.toLowerCase() === "true" || raw === "*") return true;
  return raw.split(",").some((name) => name.trim() === taskName);
}
