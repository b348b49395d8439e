import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import type { CacheStore, EntryInfo, KeyLock, LinkTreeOptions, LockKeyOptions, PutOptions, StoredValue } from "../store/cache-store.js";
import { MACHINE_LOCAL_NAMES } from "../store/machine-local.js";
import { EntryKindError, type LinkTally, type StoreWarning, type WarningHandler } from "../store/index.js";
import { Breaker } from "./breaker.js";
import { settlesWithin } from "./database.js";
import { LeaseLostError } from "./errors.js";
import type { RemoteKeyLock, RemoteStore } from "./remote-store.js";
import { UploadQueue } from "./upload-queue.js";

/** How a {@link TieredStore} is put together. */
export interface TieredStoreOptions {
  /** The local cache in front (`openStore()`). */
  local: CacheStore;
  /**
   * Opens the shared tier; called again (after the breaker's cool-off) when it fails. `signal` is aborted when the
   * store gives up on an opening that has not finished (pass it to `openRemoteStore`, which then drops its
   * connections).
   */
  openRemote: (signal: AbortSignal) => Promise<RemoteStore>;
  /** Shown in warnings for the remote (its URL, password redacted). */
  remoteName: string;
  onWarning?: WarningHandler | undefined;
  /** Time limit of each call to the remote, in ms (default 10 000); transfers get this per MiB on top. */
  timeoutMs?: number | undefined;
  /** Uploads waiting at most (default 256); more are dropped with one warning. */
  queueLimit?: number | undefined;
  /** How long `close()` waits for queued uploads, in ms (default 10 000). */
  flushLimitMs?: number | undefined;
  /** Breaker: failures in a row before the remote is skipped (3), and for how long in ms (30 000). */
  breakerFailures?: number | undefined;
  breakerCoolOffMs?: number | undefined;
}

/**
 * The local cache in front of the shared tier, as one {@link CacheStore}. Reads go local, then remote; a remote
 * hit is written into the local cache. Writes go local at once and to the remote through a bounded background
 * queue (except a result made under a shared lease, which is committed before the lease is released, so other
 * machines waiting on the key find it). Any remote failure is a miss behind the {@link Breaker}; nothing local
 * waits on a remote that hangs longer than the time limit.
 */
export class TieredStore implements CacheStore {
  private remote: Promise<RemoteStore> | undefined;
  /** Aborts the opening of the remote while it runs. */
  private opening: AbortController | undefined;
  private readonly breaker: Breaker;
  private readonly queue: UploadQueue;
  private readonly onWarning: WarningHandler;
  private readonly leased = new Map<string, RemoteKeyLock>();
  /** The last upload queued per key, which the next one of the key waits for. */
  private readonly lastUpload = new Map<string, Promise<void>>();
  private closed = false;

  constructor(private readonly options: TieredStoreOptions) {
    this.onWarning = options.onWarning ?? ((warning: StoreWarning) => process.emitWarning(warning.message, { code: warning.code }));
    const where = () => options.remoteName;
    this.breaker = new Breaker({
      onWarning: this.onWarning,
      where,
      timeoutMs: options.timeoutMs,
      failures: options.breakerFailures,
      coolOffMs: options.breakerCoolOffMs,
      onOpen: () => this.abandonRemote(),
    });
    this.queue = new UploadQueue({ limit: options.queueLimit, onWarning: this.onWarning, where });
  }

  get root(): string {
    return this.options.local.root;
  }

  /** The local store in front. */
  get local(): CacheStore {
    return this.options.local;
  }

  /** Uploads queued for the remote or running. */
  get pendingUploads(): number {
    return this.queue.size;
  }

  async put(name: string, key: string, data: Uint8Array | string, options: PutOptions = {}): Promise<EntryInfo> {
    const info = await this.options.local.put(name, key, data, options);
    if (MACHINE_LOCAL_NAMES.has(name) || !this.remoteWanted(name, key)) return info;
    if (info.storage !== "inline") {
      // Sent from the local copy when its turn comes: a queue of large values holds no copies of them.
      await this.uploadFromLocal(name, key, info, options);
      return info;
    }
    // A copy: the caller may reuse its buffer before the upload runs.
    const copy = typeof data === "string" ? data : Buffer.from(data);
    await this.upload(name, key, `uploading ${name}/${key}`, (remote) => remote.put(name, key, copy, { ...options, digest: info.digest }), info.size);
    return info;
  }

  async putStream(name: string, key: string, source: Parameters<CacheStore["putStream"]>[2], options: PutOptions = {}): Promise<EntryInfo> {
    const info = await this.options.local.putStream(name, key, source, options);
    await this.uploadFromLocal(name, key, info, options);
    return info;
  }

  async putTree(name: string, key: string, dir: string, options: PutOptions = {}): Promise<EntryInfo> {
    const info = await this.options.local.putTree(name, key, dir, options);
    await this.upload(name, key, `uploading ${name}/${key}`, async (remote) => {
      const stored = await this.options.local.treePath(name, key);
      if (stored !== undefined) await remote.putTree(name, key, stored, options);
    }, info.size);
    return info;
  }

  async getValue(name: string, key: string): Promise<StoredValue | undefined> {
    const local = await this.options.local.getValue(name, key);
    // The file-stat memo is this machine's: another machine's copy in the shared tier is never read back.
    if (local !== undefined || MACHINE_LOCAL_NAMES.has(name)) return local;
    return this.fromRemote(`reading ${name}/${key}`, async (remote) => {
      const found = await remote.readValue(name, key);
      if (found === undefined) return undefined;
      await this.fill(name, key, () => this.options.local.put(name, key, found.value.data, found.meta));
      return found.value;
    });
  }

  async getStream(name: string, key: string): Promise<Readable | undefined> {
    const local = await this.options.local.getStream(name, key);
    if (local !== undefined) return local;
    const filled = await this.fromRemote(`reading ${name}/${key}`, async (remote) => {
      const found = await remote.readStream(name, key);
      if (found === undefined) return false;
      try {
        await this.options.local.putStream(name, key, found.stream, found.meta);
      } catch (error) {
        // Damaged content (the remote reported it) is a miss, not an outage: the breaker is not moved.
        if ((error as { code?: unknown }).code === "CACHET_INTEGRITY") return false;
        throw error;
      }
      return true;
    }, true);
    return filled ? this.options.local.getStream(name, key) : undefined;
  }

  async linkTree(name: string, key: string, target: string, options: LinkTreeOptions = {}): Promise<LinkTally | undefined> {
    const local = await this.options.local.linkTree(name, key, target, options);
    if (local !== undefined) return local;
    return (await this.fillTree(name, key)) ? this.options.local.linkTree(name, key, target, options) : undefined;
  }

  async treePath(name: string, key: string): Promise<string | undefined> {
    const local = await this.options.local.treePath(name, key);
    if (local !== undefined) return local;
    return (await this.fillTree(name, key)) ? this.options.local.treePath(name, key) : undefined;
  }

  info(name: string, key: string): EntryInfo | undefined {
    return this.options.local.info(name, key);
  }

  components(name: string, key: string): unknown {
    return this.options.local.components(name, key);
  }

  async delete(name: string, key: string): Promise<boolean> {
    const local = await this.options.local.delete(name, key);
    const remote = await this.fromRemote(`deleting ${name}/${key}`, (store) => (store.writable ? store.delete(name, key) : Promise.resolve(false)));
    return local || remote === true;
  }

  list(name?: string): AsyncIterableIterator<EntryInfo> {
    return this.options.local.list(name);
  }

  /**
   * The local key lock, then the shared lease (when the remote answers): compute-once on this machine and across
   * machines. A remote that cannot be reached leaves the local lock alone in force.
   */
  async lockKey(name: string, key: string, options: LockKeyOptions = {}): Promise<KeyLock> {
    const local = await this.options.local.lockKey(name, key, options);
    let remote: RemoteKeyLock | undefined;
    try {
      const store = this.breaker.available ? await this.openedRemote() : undefined;
      // A read-only client writes no lease either; it computes once per machine only.
      if (store !== undefined && store.writable) {
        remote = await store.lockKey(name, key, options);
        this.breaker.succeeded();
      }
    } catch (error) {
      if ((error as { code?: string }).code === "CACHET_LOCK_TIMEOUT") {
        local.release();
        throw error;
      }
      this.breaker.failed(`taking the shared lease on ${name}/${key}`, error);
    }
    const id = entryId(name, key);
    if (remote?.lease !== undefined) this.leased.set(id, remote);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        if (remote !== undefined && this.leased.get(id) === remote) this.leased.delete(id);
        try {
          remote?.release();
        } finally {
          local.release();
        }
      },
    };
  }

  /**
   * Waits (up to the flush limit) for queued uploads, then closes the remote and the local store. Idempotent.
   * A remote that did not take the uploads in time, or that the breaker skips, is not waited for again: its
   * connections still busy are dropped, so a server that stopped answering does not keep the process alive.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const flushLimit = this.options.flushLimitMs ?? 10_000;
    const flushed = await this.queue.flush(flushLimit);
    if (!flushed) {
      this.queue.clear();
      this.onWarning({
        code: "CACHET_REMOTE_UPLOADS_DROPPED",
        message: `cachet: uploads to the shared cache ${this.options.remoteName} did not finish within ${flushLimit} ms; they stay in the local cache only (\`cachet cache push\` sends them)`,
      });
    }
    const remote = this.remote;
    this.remote = undefined;
    if (remote !== undefined) {
      this.breaker.silence();
      let withinMs = flushed && this.breaker.available ? flushLimit : 0;
      if (withinMs === 0) this.opening?.abort();
      // A remote still opening is closed whenever it opens; close() waits for that at most the flush limit, then
      // gives the opening up.
      const closing = remote.then((store) => store.close({ withinMs }), () => {});
      if (!(await settlesWithin(closing, flushLimit))) {
        withinMs = 0;
        this.opening?.abort();
      }
    }
    await this.options.local.close();
  }

  /** The remote is skipped from now on: what runs on it (or opens it) is dropped rather than waited for. */
  private abandonRemote(): void {
    this.opening?.abort();
    void this.remote?.then((store) => store.dropConnections(), () => {});
  }

  /** The remote, opened once (again after a failed open, when the breaker allows). */
  private openedRemote(): Promise<RemoteStore> {
    if (this.remote === undefined) {
      const controller = new AbortController();
      this.opening = controller;
      const opening = this.options.openRemote(controller.signal);
      this.remote = opening;
      const opened = () => {
        if (this.opening === controller) this.opening = undefined;
      };
      opening.then(opened, () => {
        opened();
        if (this.remote === opening) this.remote = undefined;
      });
    }
    return this.remote;
  }

  /**
   * `work` on the remote behind the breaker. A transfer (a stream or a tree, of any size) gets ten times the call
   * limit as a whole; each of its queries still has the call limit, so a server that stops answering is noticed
   * as soon.
   */
  private async fromRemote<T>(what: string, work: (remote: RemoteStore) => Promise<T>, transfer = false): Promise<T | undefined> {
    if (this.closed) return undefined;
    // Asking for the wrong kind of entry is the caller's mistake, not the remote failing: thrown as the local
    // store throws it, and the breaker is not moved.
    let wrongKind: EntryKindError | undefined;
    const result = await this.breaker.call(what, async () => {
      try {
        return await work(await this.openedRemote());
      } catch (error) {
        if (!(error instanceof EntryKindError)) throw error;
        wrongKind = error;
        return undefined;
      }
    }, undefined, transfer ? this.breaker.timeoutMs * 10 : undefined);
    if (wrongKind !== undefined) throw wrongKind;
    return result;
  }

  /**
   * Sends a write to the remote: awaited when the key is under this store's shared lease (the fence is checked
   * in the commit, and the result must be there before the lease goes), queued otherwise.
   */
  private async upload(name: string, key: string, what: string, work: (remote: RemoteStore) => Promise<unknown>, bytes: number): Promise<void> {
    const timeoutMs = this.breaker.timeoutMs + Math.ceil(bytes / (1 << 20)) * 1000;
    if (this.underLease(name, key)) {
      await this.breaker.call(what, async () => {
        const store = await this.openedRemote();
        if (!store.writable) return;
        try {
          await work(store);
        } catch (error) {
          if (!(error instanceof LeaseLostError)) throw error;
          this.onWarning({ code: error.code, message: `cachet: ${error.message}` });
        }
      }, undefined, timeoutMs);
      return;
    }
    if (!this.breaker.available || this.closed) return;
    // Uploads of one key run in the order they were written (the queue runs two at a time), so the remote ends
    // with the last write, not with whichever upload finished last.
    const id = entryId(name, key);
    const previous = this.lastUpload.get(id);
    let settle!: () => void;
    const finished = new Promise<void>((resolve) => (settle = resolve));
    const done = () => {
      settle();
      if (this.lastUpload.get(id) === finished) this.lastUpload.delete(id);
    };
    this.lastUpload.set(id, finished);
    const queued = this.queue.add(async () => {
      try {
        await previous;
        await this.breaker.call(what, async () => {
          const store = await this.openedRemote();
          if (store.writable) await work(store);
        }, undefined, timeoutMs);
      } finally {
        done();
      }
    });
    if (!queued) done();
  }

  private uploadFromLocal(name: string, key: string, info: EntryInfo, options: PutOptions): Promise<void> {
    // A newer write of the key replaced the local entry meanwhile: its own upload sends it, this one has nothing to do.
    const superseded = () => this.options.local.info(name, key)?.digest !== info.digest;
    return this.upload(name, key, `uploading ${name}/${key}`, async (remote) => {
      if (superseded()) return;
      const stream = await this.options.local.getStream(name, key);
      if (stream === undefined) return;
      try {
        await remote.putStream(name, key, stream, { ...options, digest: info.digest });
      } catch (error) {
        if ((error as { code?: unknown }).code !== "CACHET_INTEGRITY" || !superseded()) throw error;
      }
    }, info.size);
  }

  /** Whether a write would go to the remote at all (not while it is skipped, unless under a shared lease). */
  private remoteWanted(name: string, key: string): boolean {
    return !this.closed && (this.breaker.available || this.underLease(name, key));
  }

  private underLease(name: string, key: string): boolean {
    if (this.leased.has(entryId(name, key))) return true;
    for (let dot = key.lastIndexOf("."); dot > 0; dot = key.lastIndexOf(".", dot - 1)) {
      if (this.leased.has(entryId(name, key.slice(0, dot)))) return true;
    }
    return false;
  }

  /** Writes a remote hit into the local cache; a local failure only costs the copy (reported by the caller's reads). */
  private async fill(name: string, key: string, write: () => Promise<EntryInfo>): Promise<void> {
    try {
      await write();
    } catch (error) {
      this.onWarning({ code: "CACHET_CACHE_WRITE_FAILED", message: `cachet: could not keep the shared entry ${name}/${key} in the local cache: ${(error as Error).message}` });
    }
  }

  /** Downloads a tree entry into the local cache; true when it is there now. */
  private async fillTree(name: string, key: string): Promise<boolean> {
    const filled = await this.fromRemote(`reading ${name}/${key}`, async (remote) => {
      const scratch = await mkdtemp(join(tmpdir(), "cachet-remote-tree-"));
      try {
        const target = join(scratch, "tree");
        const found = await remote.readTree(name, key, target);
        if (found === undefined) return false;
        await this.options.local.putTree(name, key, target, found.meta);
        return true;
      } finally {
        await rm(scratch, { recursive: true, force: true }).catch(() => {});
      }
    }, true);
    return filled === true;
  }
}

function entryId(name: string, key: string): string {
  return `${name}\0${key}`;
}
