import { performance } from "node:perf_hooks";
import { hashValue, UnserializableValueError, UnsupportedFileTypeError, sha256Hex } from "../hash/index.js";
import { assertValidName, type CacheStore, type KeyLock, type StoredValue, type WarningHandler } from "../store/index.js";
import { Cache, resolveCache } from "./cache.js";
import { cut, reportCacheFailure, type CacheStep } from "./cache-failures.js";
import { captureVariables, capturedWarning, type CapturedVariables } from "./captured-values.js";
import { findRefs, resolveDigests } from "./file-refs.js";
import { readTaskFunction, type TaskFunctionSource } from "./parameters.js";
import { FileRefError, TaskDefinitionError, describeValue } from "./errors.js";
import type { TaskEvent, TaskEventKind } from "./task-events.js";
import { checkIgnoredInputs, ignoredAsRun, namedInputs, RECEIVER_INPUT, unmatchedIgnoredInputs } from "./task-inputs.js";
import { inputDigests, keyPrefix, taskKey, type KeyComponents } from "./task-key.js";
import { checkTaskOptions, type TaskOptions } from "./task-options.js";
import { KNOWN_RESULT_FORMATS, loadResult, storeResult } from "./task-result.js";
import {
  cachingDisabled,
  defaultEventHandler,
  defaultTaskStore,
  defaultTaskStoreRoot,
  defaultWarningHandler,
  refreshRequested,
} from "./task-settings.js";
import type { VersionParameters } from "./version-parameters.js";

export type { TaskOptions } from "./task-options.js";

/** What a cached task carries besides its call signature. */
export interface CachedTaskProperties {
  /** The entry name results are stored under. */
  readonly taskName: string;
  /** The cache configuration, or undefined for `cache: false`. */
  readonly cache: Cache | undefined;
}

/** A cached task: the function's own signature, returning a promise, plus what cachet knows about it. */
export type CachedTask<A extends unknown[], R> = ((...args: A) => Promise<Awaited<R>>) & CachedTaskProperties;

/**
 * What {@link task} returns for a function that returns a promise: the function's own type, so a generic function
 * keeps its type parameters (`task(async <T>(x: T) => x)` is called as `<T>(x: T) => Promise<T>`; TypeScript
 * cannot carry them through {@link CachedTask}'s intersection), plus the task's properties.
 */
export type CachedAsyncTask<F extends (...args: never[]) => Promise<unknown>> = F & CachedTaskProperties;

/** A task call's key and, on demand, what it was made of. */
export interface CallKey {
  key: string;
  components: () => KeyComponents;
}

/** What explain and the runner need to know of a task; reachable from the task function. */
export interface TaskDefinition {
  readonly name: string;
  readonly cache: Cache | undefined;
  /** The function the task wraps (what its cache policies version). */
  readonly func: (...args: never[]) => unknown;
  /** The task's version (computed once, on first use). */
  version(): string;
  /** The key and key components of a call (with `receiver` as its `this`). */
  keyOf(args: readonly unknown[], receiver?: unknown): Promise<CallKey>;
  store(): Promise<CacheStore>;
  /** Whether a stored entry can answer a call now (known format, not older than `maxAge`, not dated ahead of now). */
  usable(entry: { format: string | undefined; createdAt: Date }, now?: number): boolean;
  readonly refresh: boolean;
}

const definitions = new WeakMap<Function, TaskDefinition>();

/** The definition behind a function made by {@link task}, or undefined. */
export function taskDefinition(fn: Function): TaskDefinition | undefined {
  return definitions.get(fn);
}

const NOTHING_CAPTURED: CapturedVariables = { digests: {}, unusable: [], inspected: true };

/**
 * Makes `fn` a cached task: each call is keyed by the task's name, its version (from the `Cache`: explicit, or
 * derived by policies from the function's source, image and pod template, plus the values of variables it takes
 * from an enclosing function), its inputs minus ignored ones, and its `this` when the function uses one.
 * A hit returns the stored result without running `fn`; a miss runs it (with the caller's `this`) and stores the
 * result. Errors are not cached; a result that cannot be stored is returned with one warning. A cache that cannot
 * be used (unreadable, unwritable, full, corrupt) never fails a call: the function runs and its value is
 * returned, with one warning per process.
 */
export function task<F extends (...args: never[]) => Promise<unknown>>(fn: F): CachedAsyncTask<F>;
export function task<F extends (...args: never[]) => Promise<unknown>>(options: TaskOptions, fn: F): CachedAsyncTask<F>;
export function task<A extends unknown[], R>(fn: (...args: A) => R): CachedTask<A, R>;
export function task<A extends unknown[], R>(options: TaskOptions, fn: (...args: A) => R): CachedTask<A, R>;
export function task<A extends unknown[], R>(
  optionsOrFn: TaskOptions | ((...args: A) => R),
  maybeFn?: (...args: A) => R,
): CachedTask<A, R> {
  const options = typeof optionsOrFn === "function" ? {} : checkTaskOptions(optionsOrFn);
  const fn = typeof optionsOrFn === "function" ? optionsOrFn : maybeFn;
  if (typeof fn !== "function") throw new TaskDefinitionError(`task(options, fn): fn must be a function, got ${describeValue(fn)}`);
  const name = options.name ?? fn.name;
  if (!name) {
    throw new TaskDefinitionError("task(): the function has no name; give it one or pass { name: \"…\" }");
  }
  assertValidName(name);
  const cacheOption = options.cache ?? true;
  const cache = cacheOption === false ? undefined : resolveCache(cacheOption);
  const source = readTaskFunction(fn as (...args: unknown[]) => unknown);
  const ignored = ignoredAsRun(source, cache?.getIgnoredInputs() ?? []);
  const deferredIgnored = cache ? checkIgnoredInputs(name, source, ignored) : [];
  let captured = NOTHING_CAPTURED;
  if (cache && cache.version === undefined) {
    captured = captureVariables(fn, source, new Set(ignored));
    const warning = capturedWarning(name, captured);
    if (warning) {
      try {
        (options.onWarning ?? defaultWarningHandler())(warning);
      } catch {
        process.emitWarning(warning.message, { code: warning.code });
      }
    }
  }
  const runner = new TaskRunner<A, R>(name, fn, cache, source, captured, ignored, deferredIgnored, options);
  const cached = function (this: unknown, ...args: A) {
    return runner.call(this, args);
  } as CachedTask<A, R>;
  Object.defineProperty(cached, "name", { value: name });
  Object.defineProperty(cached, "taskName", { value: name, enumerable: true });
  Object.defineProperty(cached, "cache", { value: cache, enumerable: true });
  definitions.set(cached, runner);
  return cached;
}

/** Identifies how captured values are mixed into a version; bump to change every such version at once. */
const CAPTURED_SCHEME = "cachet-captured/1";

class TaskRunner<A extends unknown[], R> implements TaskDefinition {
  private cachedVersion: string | undefined;
  private policyVersion: string | undefined;
  private prefix: Buffer | undefined;
  private readonly ignored: ReadonlySet<string>;
  private readonly receiverIsInput: boolean;
  private pendingIgnoredCheck: readonly string[];
  private warnedUnstorable = false;
  private warnedEventHandler = false;

  constructor(
    readonly name: string,
    private readonly fn: (...args: A) => R,
    readonly cache: Cache | undefined,
    private readonly source: TaskFunctionSource,
    private readonly captured: CapturedVariables,
    ignored: readonly string[],
    deferredIgnored: readonly string[],
    private readonly options: TaskOptions,
  ) {
    this.ignored = new Set(ignored);
    this.receiverIsInput = source.thisUse === "dynamic" && !this.ignored.has(RECEIVER_INPUT);
    this.pendingIgnoredCheck = deferredIgnored;
  }

  get refresh(): boolean {
    return this.options.refresh === true || refreshRequested(this.name);
  }

  get func(): (...args: never[]) => unknown {
    return this.fn as unknown as (...args: never[]) => unknown;
  }

  version(): string {
    if (this.cachedVersion === undefined) {
      const params: VersionParameters = {
        func: this.fn as (...args: unknown[]) => unknown,
        containerImage: this.options.containerImage,
        podTemplate: this.options.podTemplate,
        podTemplateName: this.options.podTemplateName,
      };
      const base = this.cache!.getVersion(params);
      const digests = this.captured.digests;
      if (Object.keys(digests).length === 0) {
        this.cachedVersion = base;
      } else {
        this.policyVersion = base;
        this.cachedVersion = sha256Hex(JSON.stringify([CAPTURED_SCHEME, base, digests]));
      }
      this.prefix = keyPrefix(this.name, this.cachedVersion);
    }
    return this.cachedVersion;
  }

  async keyOf(args: readonly unknown[], receiver?: unknown): Promise<CallKey> {
    const inputs = namedInputs(this.source.shape, args, this.ignored);
    const refs = findRefs(inputs);
    if (refs.length > 0) await resolveDigests(refs);
    return this.keyOfInputs(inputs, this.receiverOf(receiver));
  }

  /** The call's `this` when it is an input: the function uses `this`, it is not ignored, and it is defined. */
  private receiverOf(thisArg: unknown): { value: unknown } | undefined {
    if (!this.receiverIsInput || thisArg === undefined || thisArg === null || thisArg === globalThis) return undefined;
    return { value: thisArg };
  }

  private keyOfInputs(inputs: Record<string, unknown>, receiver: { value: unknown } | undefined): CallKey {
    const version = this.version();
    const key = taskKey(this.prefix!, inputs, receiver);
    const components = (): KeyComponents => {
      const parts: KeyComponents = {
        task: this.name,
        version,
        versionSource: this.cache!.version !== undefined ? "explicit" : "policies",
        salt: this.cache!.salt,
        policies: this.cache!.policies.map((policy) => policy.constructor?.name ?? "policy"),
        ignoredInputs: [...this.ignored],
        inputs: inputDigests(inputs),
      };
      if (this.policyVersion !== undefined) {
        parts.captured = { ...this.captured.digests };
        parts.policyVersion = this.policyVersion;
      }
      if (receiver) parts.receiver = hashValue(receiver.value, { label: "input", path: RECEIVER_INPUT });
      return parts;
    };
    return { key, components };
  }

  store(): Promise<CacheStore> {
    return this.options.store ? Promise.resolve(this.options.store) : defaultTaskStore();
  }

  usable(entry: { format: string | undefined; createdAt: Date }, now = Date.now()): boolean {
    return this.usableAt(entry.format, entry.createdAt.getTime(), now);
  }

  private usableAt(format: string | undefined, createdAt: number, now: number): boolean {
    if (format === undefined || !KNOWN_RESULT_FORMATS.has(format)) return false;
    const maxAge = this.cache?.maxAgeMs;
    // An entry dated ahead of this clock (written by a machine whose clock runs ahead) has no age to trust.
    return maxAge === undefined || (createdAt <= now && now - createdAt <= maxAge);
  }

  /** One call. Never throws synchronously; rejects only with the function's own error or an input it cannot key. */
  call(thisArg: unknown, args: A): Promise<Awaited<R>> {
    try {
      const started = performance.now();
      if (this.cache === undefined || this.cachingOff()) {
        return this.run("bypass", "", started, thisArg, args, true);
      }
      if (this.pendingIgnoredCheck.length > 0) this.checkIgnoredAtFirstCall(args);
      const inputs = namedInputs(this.source.shape, args, this.ignored);
      const receiver = this.receiverOf(thisArg);
      const refs = findRefs(inputs);
      if (refs.length > 0) {
        return resolveDigests(refs).then(() =>
          this.callKeyed(this.keyOfInputs(inputs, receiver), thisArg, args, started),
        );
      }
      return this.callKeyed(this.keyOfInputs(inputs, receiver), thisArg, args, started);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * `CACHET_NO_CACHE` is on. A value the settings module does not understand is a cache that cannot be used:
   * reported once (naming the variable and the accepted values), and the call runs without the cache.
   */
  private cachingOff(): boolean {
    try {
      return cachingDisabled();
    } catch (error) {
      this.cacheFailed("open", error, undefined);
      return true;
    }
  }

  private checkIgnoredAtFirstCall(args: A): void {
    const pending = this.pendingIgnoredCheck;
    this.pendingIgnoredCheck = [];
    const warning = unmatchedIgnoredInputs(this.name, this.source.shape, pending, args);
    if (warning) this.warn(warning);
  }

  private async callKeyed({ key, components }: CallKey, thisArg: unknown, args: A, started: number): Promise<Awaited<R>> {
    const store = this.options.store ?? (await this.openDefaultStore());
    if (!store) return this.runUncached(key, thisArg, args, started);
    const refresh = this.refresh;
    if (!refresh) {
      let hit = this.decode(store, await this.read(store, key));
      if (hit instanceof Promise) hit = await this.settleRestore(store, hit);
      if (hit) {
        this.emit("hit", key, started);
        return hit.value as Awaited<R>;
      }
    }
    const kind = refresh ? "refresh" : "miss";
    if (!this.cache!.serialize) return this.runAndStore(store, key, thisArg, args, components, kind, started);

    let waited = false;
    const wallStart = Date.now();
    const lock = await this.lockKey(store, key, () => (waited = true));
    if (!lock) return this.runAndStore(store, key, thisArg, args, components, kind, started);
    try {
      // Someone may have finished this key while we waited (or between our lookup and the lock).
      const hit = await this.lookup(store, key, refresh ? wallStart : undefined);
      if (hit) {
        this.emit(waited ? "waited" : "hit", key, started);
        return hit.value as Awaited<R>;
      }
      return await this.runAndStore(store, key, thisArg, args, components, kind, started);
    } finally {
      this.release(store, lock);
    }
  }

  /** The process-wide store, or undefined (reported once) when it cannot be opened. */
  private async openDefaultStore(): Promise<CacheStore | undefined> {
    try {
      return await defaultTaskStore();
    } catch (error) {
      this.cacheFailed("open", error, defaultTaskStoreRoot(error));
      return undefined;
    }
  }

  /** A usable stored result, decoded (and its files restored), or undefined. `since`: only entries made after it. */
  private async lookup(store: CacheStore, key: string, since?: number): Promise<{ value: unknown } | undefined> {
    const hit = this.decode(store, await this.read(store, key), since);
    return hit instanceof Promise ? this.settleRestore(store, hit) : hit;
  }

  /** The stored entry for `key`; a store that cannot answer (a corrupt index, a disk error) is a miss, reported once. */
  private read(store: CacheStore, key: string): Promise<StoredValue | undefined> {
    try {
      return store.getValue(this.name, key).catch((error: unknown) => {
        this.cacheFailed("read", error, store.root);
        return undefined;
      });
    } catch (error) {
      this.cacheFailed("read", error, store.root);
      return Promise.resolve(undefined);
    }
  }

  private decode(store: CacheStore, stored: StoredValue | undefined, since?: number) {
    if (!stored || !this.usableAt(stored.format, stored.createdAt, Date.now())) return undefined;
    if (since !== undefined && stored.createdAt < since) return undefined;
    try {
      return loadResult(store, this.name, stored);
    } catch (error) {
      this.cacheFailed("read", error, store.root);
      return undefined;
    }
  }

  /** A result whose files are being restored; a restore that fails is a miss, reported once. */
  private settleRestore(store: CacheStore, pending: Promise<{ value: unknown } | undefined>): Promise<{ value: unknown } | undefined> {
    return pending.catch((error: unknown) => {
      this.cacheFailed("read", error, store.root);
      return undefined;
    });
  }

  /** The key's lock, or undefined (reported once) when it cannot be had: the caller then runs without it. */
  private async lockKey(store: CacheStore, key: string, onWait: () => void): Promise<KeyLock | undefined> {
    try {
      return await store.lockKey(this.name, key, { onWait });
    } catch (error) {
      this.cacheFailed("lock", error, store.root);
      return undefined;
    }
  }

  private release(store: CacheStore, lock: KeyLock): void {
    try {
      lock.release();
    } catch (error) {
      this.cacheFailed("lock", error, store.root);
    }
  }

  /** Runs the function when the cache cannot be used at all; the call is a miss. */
  private async runUncached(key: string, thisArg: unknown, args: A, started: number): Promise<Awaited<R>> {
    return this.run("miss", key, started, thisArg, args, true);
  }

  private async runAndStore(
    store: CacheStore,
    key: string,
    thisArg: unknown,
    args: A,
    components: () => KeyComponents,
    kind: TaskEventKind,
    started: number,
  ): Promise<Awaited<R>> {
    const ranAt = performance.now();
    const value = await this.run(kind, key, started, thisArg, args, false);
    const costMs = performance.now() - ranAt;
    try {
      await storeResult(store, this.name, key, value, { origin: "computed", costMs, components: components() });
    } catch (error) {
      if (error instanceof UnserializableValueError || error instanceof UnsupportedFileTypeError || error instanceof FileRefError) {
        this.warnUnstorable(error);
      }
      else this.cacheFailed("write", error, store.root);
    }
    this.emit(kind, key, started);
    return value;
  }

  /**
   * Runs `fn` with the caller's `this`, reporting an event with the error if it throws; with `emitOnSuccess`,
   * also on success.
   */
  private async run(kind: TaskEventKind, key: string, started: number, thisArg: unknown, args: A, emitOnSuccess: boolean): Promise<Awaited<R>> {
    let value: Awaited<R>;
    try {
      value = await Reflect.apply(this.fn, thisArg, args);
    } catch (error) {
      this.emit(kind, key, started, error);
      throw error;
    }
    if (emitOnSuccess) this.emit(kind, key, started);
    return value;
  }

  private cacheFailed(step: CacheStep, error: unknown, root: string | undefined): void {
    reportCacheFailure(step, error, this.name, root, this.warningHandler());
  }

  private warnUnstorable(error: Error): void {
    if (this.warnedUnstorable) return;
    this.warnedUnstorable = true;
    this.warn({
      code: "CACHET_UNSTORABLE_RESULT",
      message: `cachet: the result of task "${this.name}" was returned but not cached: ${error.message}`,
    });
  }

  private warn(warning: { code: string; message: string }): void {
    this.warningHandler()(warning);
  }

  /** The handler for this task's warnings; one that throws never fails a call (the warning goes to the process instead). */
  private warningHandler(): WarningHandler {
    const handler = this.options.onWarning ?? defaultWarningHandler();
    return (warning) => {
      try {
        handler(warning);
      } catch {
        process.emitWarning(warning.message, { code: warning.code });
      }
    };
  }

  /**
   * Reports a call to `onEvent`; builds the event only when someone listens (hits are the hot path). A handler
   * that throws or rejects is reported as a warning and never changes the call's outcome.
   */
  private emit(kind: TaskEventKind, key: string, started: number, error?: unknown): void {
    const handler = this.options.onEvent ?? defaultEventHandler();
    if (!handler) return;
    const event: TaskEvent = { task: this.name, kind, key, durationMs: performance.now() - started };
    if (error !== undefined) event.error = error;
    try {
      const returned: unknown = handler(event);
      if (typeof (returned as PromiseLike<unknown> | null)?.then === "function") {
        Promise.resolve(returned).catch((failure: unknown) => this.eventHandlerFailed(failure));
      }
    } catch (failure) {
      this.eventHandlerFailed(failure);
    }
  }

  private eventHandlerFailed(failure: unknown): void {
    if (this.warnedEventHandler) return;
    this.warnedEventHandler = true;
    const reason = cut(failure instanceof Error ? failure.message : String(failure), 300);
    this.warn({
      code: "CACHET_EVENT_HANDLER_FAILED",
      message: `cachet: the onEvent handler of task "${this.name}" failed (${reason}); calls return as if it had not (later failures of it are not reported)`,
    });
  }
}
