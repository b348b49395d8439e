import { performance } from "node:perf_hooks";
import { isCachetError } from "../errors.js";
import { UnserializableValueError } from "../hash/index.js";
import { assertValidName, type Store, type StoredValue, type WarningHandler } from "../store/index.js";
import { Cache, resolveCache } from "./cache.js";
import { findRefs } from "./file-refs.js";
import type { ImageSpec } from "./image-spec.js";
import { parameterShape, type ParameterShape } from "./parameters.js";
import type { PodTemplate } from "./pod-template.js";
import { TaskDefinitionError } from "./errors.js";
import type { TaskEvent, TaskEventHandler, TaskEventKind } from "./task-events.js";
import { checkIgnoredInputs, namedInputs } from "./task-inputs.js";
import { inputDigests, keyPrefix, taskKey, type KeyComponents } from "./task-key.js";
import { KNOWN_RESULT_FORMATS, loadResult, storeResult } from "./task-result.js";
import { cachingDisabled, defaultEventHandler, defaultTaskStore, defaultWarningHandler, refreshRequested } from "./task-settings.js";
import type { VersionParameters } from "./version-parameters.js";

/** Options of {@link task}. */
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
  /** The store to use; default: the process-wide store (see `configureTasks`). */
  store?: Store;
  /** Called after every call with hit / miss / refresh / waited / bypass and its duration. */
  onEvent?: TaskEventHandler;
  /** Receives warnings (an unstorable result, a corrupt entry); default `process.emitWarning`. */
  onWarning?: WarningHandler;
}

/** A cached task: the function's own signature, returning a promise, plus what cachet knows about it. */
export type CachedTask<A extends unknown[], R> = ((...args: A) => Promise<Awaited<R>>) & {
  /** The entry name results are stored under. */
  readonly taskName: string;
  /** The cache configuration, or undefined for `cache: false`. */
  readonly cache: Cache | undefined;
};

/** What explain and the runner need to know of a task; reachable from the task function. */
export interface TaskDefinition {
  readonly name: string;
  readonly cache: Cache | undefined;
  /** The task's version (computed once, on first use). */
  version(): string;
  /** The key and key components of a call. */
  keyOf(args: readonly unknown[]): Promise<{ key: string; components: () => KeyComponents }>;
  store(): Promise<Store>;
  /** Whether a stored entry can answer a call now (known format, not older than `maxAge`). */
  usable(entry: { format: string | undefined; createdAt: Date }, now?: number): boolean;
  readonly refresh: boolean;
}

const definitions = new WeakMap<Function, TaskDefinition>();

/** The definition behind a function made by {@link task}, or undefined. */
export function taskDefinition(fn: Function): TaskDefinition | undefined {
  return definitions.get(fn);
}

/**
 * Makes `fn` a cached task: each call is keyed by the task's name, its version (from the `Cache`: explicit, or
 * derived by policies from the function's source, image and pod template) and its inputs minus ignored ones.
 * A hit returns the stored result without running `fn`; a miss runs it and stores the result. Errors are not
 * cached; a result that cannot be stored is returned with one warning.
 */
export function task<A extends unknown[], R>(fn: (...args: A) => R): CachedTask<A, R>;
export function task<A extends unknown[], R>(options: TaskOptions, fn: (...args: A) => R): CachedTask<A, R>;
export function task<A extends unknown[], R>(
  optionsOrFn: TaskOptions | ((...args: A) => R),
  maybeFn?: (...args: A) => R,
): CachedTask<A, R> {
  const options: TaskOptions = typeof optionsOrFn === "function" ? {} : (optionsOrFn ?? {});
  const fn = typeof optionsOrFn === "function" ? optionsOrFn : maybeFn;
  if (typeof fn !== "function") throw new TaskDefinitionError("task(options, fn): fn must be a function");
  const name = options.name ?? fn.name;
  if (!name) {
    throw new TaskDefinitionError("task(): the function has no name; give it one or pass { name: \"…\" }");
  }
  assertValidName(name);
  const cacheOption = options.cache ?? true;
  const cache = cacheOption === false ? undefined : resolveCache(cacheOption);
  const shape = parameterShape(fn as (...args: unknown[]) => unknown);
  if (cache) checkIgnoredInputs(name, shape, cache.getIgnoredInputs());
  const runner = new TaskRunner<A, R>(name, fn, cache, shape, options);
  const cached = ((...args: A) => runner.call(args)) as CachedTask<A, R>;
  Object.defineProperty(cached, "name", { value: name });
  Object.defineProperty(cached, "taskName", { value: name, enumerable: true });
  Object.defineProperty(cached, "cache", { value: cache, enumerable: true });
  definitions.set(cached, runner);
  return cached;
}

class TaskRunner<A extends unknown[], R> implements TaskDefinition {
  private cachedVersion: string | undefined;
  private prefix: Buffer | undefined;
  private readonly ignored: ReadonlySet<string>;
  private warnedUnstorable = false;

  constructor(
    readonly name: string,
    private readonly fn: (...args: A) => R,
    readonly cache: Cache | undefined,
    private readonly shape: ParameterShape,
    private readonly options: TaskOptions,
  ) {
    this.ignored = new Set(cache?.getIgnoredInputs() ?? []);
  }

  get refresh(): boolean {
    return this.options.refresh === true || refreshRequested(this.name);
  }

  version(): string {
    if (this.cachedVersion === undefined) {
      const params: VersionParameters = {
        func: this.fn as (...args: unknown[]) => unknown,
        containerImage: this.options.containerImage,
        podTemplate: this.options.podTemplate,
        podTemplateName: this.options.podTemplateName,
      };
      this.cachedVersion = this.cache!.getVersion(params);
      this.prefix = keyPrefix(this.name, this.cachedVersion);
    }
    return this.cachedVersion;
  }

  async keyOf(args: readonly unknown[]): Promise<{ key: string; components: () => KeyComponents }> {
    const inputs = namedInputs(this.shape, args, this.ignored);
    const refs = findRefs(inputs);
    if (refs.length > 0) await Promise.all(refs.map(([, ref]) => ref.resolveDigest()));
    return this.keyOfInputs(inputs);
  }

  private keyOfInputs(inputs: Record<string, unknown>): { key: string; components: () => KeyComponents } {
    const version = this.version();
    const key = taskKey(this.prefix!, inputs);
    const components = (): KeyComponents => ({
      task: this.name,
      version,
      versionSource: this.cache!.version !== undefined ? "explicit" : "policies",
      salt: this.cache!.salt,
      policies: this.cache!.policies.map((policy) => policy.constructor?.name ?? "policy"),
      ignoredInputs: [...this.ignored],
      inputs: inputDigests(inputs),
    });
    return { key, components };
  }

  store(): Promise<Store> {
    return this.options.store ? Promise.resolve(this.options.store) : defaultTaskStore();
  }

  usable(entry: { format: string | undefined; createdAt: Date }, now = Date.now()): boolean {
    return this.usableAt(entry.format, entry.createdAt.getTime(), now);
  }

  private usableAt(format: string | undefined, createdAt: number, now: number): boolean {
    if (format === undefined || !KNOWN_RESULT_FORMATS.has(format)) return false;
    const maxAge = this.cache?.maxAgeMs;
    return maxAge === undefined || now - createdAt <= maxAge;
  }

  call(args: A): Promise<Awaited<R>> {
    const started = performance.now();
    if (this.cache === undefined || cachingDisabled()) {
      return this.report("bypass", "", started, () => this.fn(...args));
    }
    const inputs = namedInputs(this.shape, args, this.ignored);
    const refs = findRefs(inputs);
    if (refs.length > 0) {
      return Promise.all(refs.map(([, ref]) => ref.resolveDigest())).then(() => this.callKeyed(this.keyOfInputs(inputs), args, started));
    }
    let keyed;
    try {
      keyed = this.keyOfInputs(inputs);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.callKeyed(keyed, args, started);
  }

  private async callKeyed(
    { key, components }: { key: string; components: () => KeyComponents },
    args: A,
    started: number,
  ): Promise<Awaited<R>> {
    const store = this.options.store ?? (await defaultTaskStore());
    const refresh = this.refresh;
    if (!refresh) {
      let hit = this.decode(store, await this.read(store, key));
      if (hit instanceof Promise) hit = await hit;
      if (hit) {
        this.emit("hit", key, started);
        return hit.value as Awaited<R>;
      }
    }
    if (!this.cache!.serialize) return this.runAndStore(store, key, args, components, refresh ? "refresh" : "miss", started);

    let waited = false;
    const wallStart = Date.now();
    const lock = await store.lockKey(this.name, key, { onWait: () => (waited = true) });
    try {
      // Someone may have finished this key while we waited (or between our lookup and the lock).
      const hit = await this.lookup(store, key, refresh ? wallStart : undefined);
      if (hit) {
        this.emit(waited ? "waited" : "hit", key, started);
        return hit.value as Awaited<R>;
      }
      return await this.runAndStore(store, key, args, components, refresh ? "refresh" : "miss", started);
    } finally {
      lock.release();
    }
  }

  /** A usable stored result, decoded (and its files restored), or undefined. `since`: only entries made after it. */
  private async lookup(store: Store, key: string, since?: number): Promise<{ value: unknown } | undefined> {
    return this.decode(store, await this.read(store, key), since);
  }

  /** The stored entry for `key`; a store that cannot answer (a corrupt index, a disk error) is a miss. */
  private read(store: Store, key: string): Promise<StoredValue | undefined> {
    return store.getValue(this.name, key).catch((error: unknown) => {
      if (isCachetError(error)) return undefined;
      throw error;
    });
  }

  private decode(store: Store, stored: StoredValue | undefined, since?: number) {
    if (!stored || !this.usableAt(stored.format, stored.createdAt, Date.now())) return undefined;
    if (since !== undefined && stored.createdAt < since) return undefined;
    return loadResult(store, this.name, stored);
  }

  private async runAndStore(
    store: Store,
    key: string,
    args: A,
    components: () => KeyComponents,
    kind: TaskEventKind,
    started: number,
  ): Promise<Awaited<R>> {
    const ranAt = performance.now();
    const value = await this.report(kind, key, started, () => this.fn(...args), false);
    const costMs = performance.now() - ranAt;
    try {
      await storeResult(store, this.name, key, value, { origin: "computed", costMs, components: components() });
    } catch (error) {
      if (!(error instanceof UnserializableValueError) && !isCachetError(error)) throw error;
      this.warnUnstorable(error as Error);
    }
    this.emit(kind, key, started);
    return value;
  }

  /** Runs `fn`, reporting an event with the error if it throws; with `emitOnSuccess`, also on success. */
  private async report(kind: TaskEventKind, key: string, started: number, fn: () => R, emitOnSuccess = true): Promise<Awaited<R>> {
    let value: Awaited<R>;
    try {
      value = await fn();
    } catch (error) {
      this.emit(kind, key, started, error);
      throw error;
    }
    if (emitOnSuccess) this.emit(kind, key, started);
    return value;
  }

  private warnUnstorable(error: Error): void {
    if (this.warnedUnstorable) return;
    this.warnedUnstorable = true;
    const onWarning = this.options.onWarning ?? defaultWarningHandler();
    onWarning({
      code: "CACHET_UNSTORABLE_RESULT",
      message: `cachet: the result of task "${this.name}" was returned but not cached: ${error.message}`,
    });
  }

  /** Reports a call to `onEvent`; builds the event only when someone listens (hits are the hot path). */
  private emit(kind: TaskEventKind, key: string, started: number, error?: unknown): void {
    const handler = this.options.onEvent ?? defaultEventHandler();
    if (!handler) return;
    const event: TaskEvent = { task: this.name, kind, key, durationMs: performance.now() - started };
    if (error !== undefined) event.error = error;
    handler(event);
  }
}
