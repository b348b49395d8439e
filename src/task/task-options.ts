import type { CacheStore, WarningHandler } from "../store/index.js";
import { missingCacheStoreMembers } from "../store/cache-store.js";
import { Cache } from "./cache.js";
import { TaskDefinitionError, describeValue } from "./errors.js";
import { ImageSpec } from "./image-spec.js";
import { unknownOption } from "./option-names.js";
import { PodTemplate } from "./pod-template.js";
import type { TaskEventHandler } from "./task-events.js";

/** Options of `task()`. */
export interface TaskOptions {
  /** The entry name (default: the function's name). Shown by `cachet cache ls`, used by `clean NAME`. */
  name?: string;
  /** `true` (default) for `new Cache()`, a `Cache` for full control, `false` to never cache. */
  cache?: boolean | Cache;
  containerImage?: string | ImageSpec;
  podTemplate?: PodTemplate;
  podTemplateName?: string;
  /** Always run and replace the entry (Flyte's overwrite); also `CACHET_REFRESH=1` or `CACHET_REFRESH=name,…`. */
  refresh?: boolean;
  /** The store to use (any {@link CacheStore}); default: the process-wide store (see `configureTasks`). */
  store?: CacheStore;
  /**
   * Called after every call with hit / miss / refresh / waited / bypass and its duration. A handler that throws
   * (or rejects) never fails the call: it is reported once as a `CACHET_EVENT_HANDLER_FAILED` warning.
   */
  onEvent?: TaskEventHandler;
  /**
   * Receives warnings (a cache that cannot be used, an unstorable result, captured variables that cannot be
   * keyed, a corrupt entry); default `process.emitWarning`.
   */
  onWarning?: WarningHandler;
}

/** What each option must be, in words, and the test. An option set to `undefined` counts as not given. */
const OPTION_RULES: { readonly [K in keyof Required<TaskOptions>]: readonly [string, (value: unknown) => boolean] } = {
  name: ["a non-empty string", (value) => typeof value === "string" && value !== ""],
  cache: ["true, false or a Cache", (value) => typeof value === "boolean" || value instanceof Cache],
  containerImage: ["an image name (a string) or an ImageSpec", (value) => typeof value === "string" || value instanceof ImageSpec],
  podTemplate: ["a PodTemplate", (value) => value instanceof PodTemplate],
  podTemplateName: ["a string", (value) => typeof value === "string"],
  refresh: ["a boolean", (value) => typeof value === "boolean"],
  store: ["a CacheStore (such as openStore() returns)", (value) => missingCacheStoreMembers(value).length === 0],
  onEvent: ["a function", (value) => typeof value === "function"],
  onWarning: ["a function", (value) => typeof value === "function"],
};

const OPTION_NAMES = Object.keys(OPTION_RULES);

/**
 * Checks `task()`'s options as strictly as `new Cache()` checks its own: an object, no unknown option (the
 * nearest known name is suggested), each option of its type. Throws {@link TaskDefinitionError}.
 */
export function checkTaskOptions(options: unknown): TaskOptions {
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new TaskDefinitionError(`task(options, fn): options must be an object, got ${describeValue(options)}`);
  }
  for (const [name, value] of Object.entries(options)) {
    if (!Object.hasOwn(OPTION_RULES, name)) throw new TaskDefinitionError(unknownOption("task(options, fn)", name, OPTION_NAMES));
    const [what, valid] = OPTION_RULES[name as keyof TaskOptions];
    if (value === undefined || valid(value)) continue;
    const lacking = name === "store" && typeof value === "object" && value !== null ? ` lacking ${missingCacheStoreMembers(value).join(", ")}` : "";
    throw new TaskDefinitionError(`task option "${name}" must be ${what}, got ${describeValue(value)}${lacking}`);
  }
  return options as TaskOptions;
}
