import { randomUUID } from "node:crypto";
import { hostname, tmpdir } from "node:os";
import { mkdtemp, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { Readable } from "node:stream";
import { sha256Hex } from "../hash/index.js";
import { readSettings, type Settings } from "../config/index.js";
import type { CacheStore, EntryInfo, KeyLock, LinkTreeOptions, LockKeyOptions, PutOptions, StoredValue } from "../store/cache-store.js";
import { EntryKindError, INLINE_LIMIT, LinkTargetError, LockTimeoutError, StoreClosedError } from "../store/index.js";
import type { LinkTally, Origin, Storage, StoreWarning, WarningHandler } from "../store/index.js";
import { assertValidKey, assertValidName } from "../store/entry-name.js";
import { openDatabase, settlesWithin, type Database, type DatabaseClient } from "./database.js";
import { LeaseLostError, RemoteError, RemoteIntegrityError, RemoteReadOnlyError, SignatureError } from "./errors.js";
import type { Lease } from "./leases.js";
import { FENCE_CHECK, PgLeases } from "./pg-leases.js";
import { RedisLeases } from "./redis-leases.js";
import { CHUNK_DATA, DamagedContentError, FIRST_PAGE, blobStream, checkBlob, openBlobStream, readBlobBytes, uploadBlob, type ChunkRow } from "./remote-blobs.js";
import { migrate, schemaVersion } from "./schema.js";
import { SCHEMA_VERSION } from "./migrations.js";
import { cleanRemote, measureRemote, pruneRemote, verifyRemote } from "./remote-maintenance.js";
import type { RemotePruneOptions, RemoteRemoval, RemoteSize, RemoteVerifyResult } from "./maintenance-results.js";
import { signEntry, signatureProblem, type SignedFields } from "./signing.js";
import { packTree, unpackTree } from "./tree-archive.js";

/** How to open a {@link RemoteStore}. */
export interface RemoteStoreOptions {
  /** The PostgreSQL URL (`postgres://user:password@host:port/database`); its password is never shown. */
  url: string;
  /** A Redis URL for fast lease hand-off (`CACHET_LEASES`). */
  leasesUrl?: string | undefined;
  /**
   * False: read only (`CACHET_REMOTE_WRITE=0`): every write fails with `RemoteReadOnlyError`, no schema is created
   * (opening fails when there is none), no use times are written. Default true.
   */
  write?: boolean | undefined;
  /** Seconds a lease lasts without a heartbeat (`CACHET_LEASE_EXPIRY`, default 30). */
  leaseExpirySeconds?: number | undefined;
  /** HMAC key entries are signed with and checked against (`CACHET_SIGNING_KEY`). */
  signingKey?: string | undefined;
  /** Time limit of each call to a server, in ms (default 10 000). */
  timeoutMs?: number | undefined;
  /** Seconds `lockKey` waits before `LockTimeoutError` (default `CACHET_LOCK_TIMEOUT`, 300). */
  lockTimeoutSeconds?: number | undefined;
  /** Aborting it while the store opens drops the connections being opened (a server that stopped answering). */
  signal?: AbortSignal | undefined;
  /** Where `treePath` unpacks trees (default the system's temporary directory); removed at close. */
  scratchDir?: string | undefined;
  onWarning?: WarningHandler | undefined;
  /** @internal Migrate to this schema version instead of the current one (tests of older schemas). */
  schemaVersion?: number | undefined;
}

/** Options of a write to the shared tier. */
export interface RemotePutOptions extends PutOptions {
  /** The content's sha256, when the writer knows it: a blob the remote holds already is not sent again. */
  digest?: string | undefined;
}

/** A {@link KeyLock} of the shared tier: the lease and its fencing token (none when the wait ended on a result). */
export interface RemoteKeyLock extends KeyLock {
  /** The lease held, with its fencing token; undefined when another holder's result appeared while waiting. */
  readonly lease: Lease | undefined;
  /** True once a heartbeat found the lease taken over; commits under it are refused. */
  readonly lost: boolean;
}

interface EntryRow {
  name: string;
  key: string;
  storage: Storage;
  digest: string;
  size: string;
  inline: Buffer | null;
  origin: Origin;
  cost_ms: number;
  format: string | null;
  components: unknown;
  created_at: Date;
  last_used_at: Date;
  signature: Buffer | null;
}

const ENTRY_COLUMNS = "name, key, storage, digest, size, inline, origin, cost_ms, format, components, created_at, last_used_at, signature";

/** The options of a {@link RemoteStore} for the settings (`CACHET_REMOTE` …); undefined when no remote is set. */
export function remoteOptionsFromSettings(settings: Settings = readSettings()): RemoteStoreOptions | undefined {
  const url = settings.remote;
  if (url === undefined) return undefined;
  return {
    url,
    leasesUrl: settings.leases,
    write: settings.remoteWrite,
    leaseExpirySeconds: settings.leaseExpirySeconds,
    signingKey: settings.signingKey,
    lockTimeoutSeconds: settings.lockTimeoutSeconds,
  };
}

/** Connects to the shared tier and creates or migrates its schema (under an advisory lock). */
export async function openRemoteStore(options: RemoteStoreOptions): Promise<RemoteStore> {
  options.signal?.throwIfAborted();
  const database = await openDatabase({ url: options.url, timeoutMs: options.timeoutMs });
  const abandon = () => database.dropConnections();
  options.signal?.addEventListener("abort", abandon, { once: true });
  try {
    // A read-only client may connect as a user that cannot create tables: it only checks the schema is there.
    const known = options.schemaVersion ?? SCHEMA_VERSION;
    const found = options.write === false ? await schemaVersion(database) : await migrate(database, known);
    if (options.write === false && found < known) {
      throw new RemoteError(`the shared cache ${database.where} has schema version ${found}, not ${known}: a client that writes creates or migrates it`);
    }
    // A newer cachet may have changed what rows mean: this one neither reads nor writes them.
    if (found > known) {
      throw new RemoteError(`the shared cache ${database.where} has schema version ${found}, newer than this cachet's ${known}: upgrade cachet to use it`);
    }
  } catch (error) {
    await database.close();
    throw error;
  } finally {
    options.signal?.removeEventListener("abort", abandon);
  }
  try {
    const redis = options.leasesUrl ? await RedisLeases.open(options.leasesUrl, (options.leaseExpirySeconds ?? 30) * 1000, options.timeoutMs ?? 10_000) : undefined;
    return new RemoteStore(database, options, redis);
  } catch (error) {
    await database.close();
    throw error;
  }
}

/**
 * The shared tier on PostgreSQL, as a {@link CacheStore}: entries in `cachet_entries` (values up to 16 KiB
 * inline), content-addressed blobs in 1 MiB `bytea` chunks, trees as one archive blob each (see
 * `tree-archive.ts`), and fenced leases for `lockKey`. Every read is checked against its sha256 (and its
 * signature, with a signing key); a failed check is a miss with one warning, never wrong data.
 *
 * `info` and `components` are synchronous in the interface, so they answer from the rows this store has read
 * or written in this process; {@link lookup} asks the server.
 */
export class RemoteStore implements CacheStore {
  readonly root: string;
  private closed = false;
  private readonly owner = `${hostname()}:${process.pid}:${randomUUID()}`;
  private readonly leases: PgLeases;
  private readonly held = new Map<string, HeldLease>();
  private readonly seen = new Map<string, { info: EntryInfo; components: unknown }>();
  private readonly used = new Map<string, [string, string]>();
  private readonly pending = new Set<Promise<unknown>>();
  private readonly warned = new Set<string>();
  private readonly useTimer: NodeJS.Timeout;
  private scratch: string | undefined;
  private redisDownUntil = 0;

  /** @internal use {@link openRemoteStore}. */
  constructor(
    private readonly database: Database,
    private readonly options: RemoteStoreOptions,
    private readonly redis?: RedisLeases,
  ) {
    this.root = database.where;
    this.leases = new PgLeases(database, options.leaseExpirySeconds ?? 30);
    this.useTimer = setInterval(() => this.track(this.flushUses()), 1000);
    this.useTimer.unref();
  }

  /** Whether this client may write (`CACHET_REMOTE_WRITE`). */
  get writable(): boolean {
    return this.options.write !== false;
  }

  async put(name: string, key: string, data: Uint8Array | string, options: RemotePutOptions = {}): Promise<EntryInfo> {
    this.assertWritable(name, key, "write an entry");
    const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const digest = sha256Hex(bytes);
    if (bytes.byteLength <= INLINE_LIMIT) return this.commit(name, key, "inline", digest, bytes.byteLength, bytes, options);
    return this.uploadAndCommit(name, key, "blob", bytes, digest, options);
  }

  async putStream(name: string, key: string, source: AsyncIterable<Uint8Array> | Iterable<Uint8Array> | Uint8Array | Readable, options: RemotePutOptions = {}): Promise<EntryInfo> {
    this.assertWritable(name, key, "write an entry");
    try {
      return await this.uploadAndCommit(name, key, "blob", source instanceof Uint8Array ? source : toAsync(source), options.digest, options);
    } finally {
      // Not read at all when the blob was there already.
      if (source instanceof Readable) source.destroy();
    }
  }

  async getValue(name: string, key: string): Promise<StoredValue | undefined> {
    return (await this.readValue(name, key))?.value;
  }

  /**
   * `getValue` with the metadata of the very row it read (origin, cost, format, components), so a copy made from
   * it (the tiered store's local fill) never pairs these bytes with another writer's metadata.
   */
  async readValue(name: string, key: string): Promise<{ value: StoredValue; meta: PutOptions } | undefined> {
    const row = await this.readRow(name, key, "value");
    if (row === undefined) return undefined;
    const data = await this.content(row);
    if (data === undefined) return undefined;
    this.noteUse(row);
    return { value: { data, format: row.format ?? undefined, createdAt: row.created_at.getTime() }, meta: metaOf(row) };
  }

  async getStream(name: string, key: string): Promise<Readable | undefined> {
    return (await this.readStream(name, key))?.stream;
  }

  /**
   * `getStream` with the metadata of the row it read (see {@link readValue}). The entry's row comes with its blob's
   * row and first page of chunks in one query (one round trip for a blob of up to four chunks); the row is checked
   * (signature, kind) before any of its content is used, and the content against its digest as it streams.
   */
  async readStream(name: string, key: string): Promise<{ stream: Readable; meta: PutOptions } | undefined> {
    this.assertUsable(name, key);
    const found = await this.database.query<EntryRow & { cachet_blob_id: string | null; cachet_blob_size: string | null } & ChunkRow>({
      name: "cachet_read_stream",
      text: `SELECT ${ENTRY_COLUMNS.split(", ").map((column) => `e.${column}`).join(", ")}, b.id AS cachet_blob_id, b.size AS cachet_blob_size, c.seq, ${CHUNK_DATA}
       FROM cachet_entries e
       LEFT JOIN cachet_blobs b ON e.inline IS NULL AND e.storage <> 'tree' AND b.digest = e.digest
       LEFT JOIN cachet_blob_chunks c ON c.blob_id = b.id AND ${FIRST_PAGE}
       WHERE e.name = $1 AND e.key = $2`,
      values: [name, key],
    });
    const first = found.rows[0];
    const row = first === undefined ? undefined : this.acceptRow(name, key, entryOf(first), "value");
    if (row === undefined) return undefined;
    this.noteUse(row);
    if (row.inline !== null) {
      const data = await this.content(row);
      return data === undefined ? undefined : { stream: Readable.from([data]), meta: metaOf(row) };
    }
    if (first!.cachet_blob_id === null) {
      this.warnMissing(row);
      return undefined;
    }
    const stream = blobStream(this.database, first!.cachet_blob_id, Number(first!.cachet_blob_size), row.digest, found.rows, { removeDamaged: this.writable });
    stream.on("error", (error) => this.warnOnce("CACHET_INTEGRITY", `cachet: shared entry ${name}/${key}: ${error.message}${removedNote(error)}`));
    return { stream, meta: metaOf(row) };
  }

  async putTree(name: string, key: string, dir: string, options: PutOptions = {}): Promise<EntryInfo> {
    this.assertWritable(name, key, "write an entry");
    return this.uploadAndCommit(name, key, "tree", packTree(dir), undefined, options);
  }

  async linkTree(name: string, key: string, target: string, options: LinkTreeOptions = {}): Promise<LinkTally | undefined> {
    return (await this.readTree(name, key, target, options))?.tally;
  }

  /** `linkTree` with the metadata of the row it read (see {@link readValue}). */
  async readTree(name: string, key: string, target: string, options: LinkTreeOptions = {}): Promise<{ tally: LinkTally; meta: PutOptions } | undefined> {
    const row = await this.readRow(name, key, "tree");
    if (row === undefined) return undefined;
    const staged = await mkdtemp(join(dirname(target), `.${basename(target)}.cachet-remote-`));
    try {
      // Always a copy: the files come from the database, so there is nothing to link to.
      const tally = await this.unpackInto(row, staged, options.onFile);
      if (tally === undefined) return undefined;
      await swapIn(staged, target, options.replace === true);
      this.noteUse(row);
      return { tally: { ...tally, mode: "copy" }, meta: metaOf(row) };
    } finally {
      await rm(staged, { recursive: true, force: true }).catch(() => {});
    }
  }

  async treePath(name: string, key: string): Promise<string | undefined> {
    const row = await this.readRow(name, key, "tree");
    if (row === undefined) return undefined;
    this.scratch ??= await mkdtemp(join(this.options.scratchDir ?? tmpdir(), "cachet-remote-trees-"));
    const dir = await mkdtemp(join(this.scratch, "tree-"));
    const tree = join(dir, "tree");
    if ((await this.unpackInto(row, tree)) === undefined) {
      await rm(dir, { recursive: true, force: true });
      return undefined;
    }
    this.noteUse(row);
    return tree;
  }

  info(name: string, key: string): EntryInfo | undefined {
    this.assertUsable(name, key);
    return this.seen.get(rowKey(name, key))?.info;
  }

  components(name: string, key: string): unknown {
    this.assertUsable(name, key);
    return this.seen.get(rowKey(name, key))?.components;
  }

  /** The catalog row of an entry, asked of the server (signature checked), or undefined. Not a use. */
  async lookup(name: string, key: string): Promise<EntryInfo | undefined> {
    const row = await this.readRow(name, key);
    return row === undefined ? undefined : toInfo(row);
  }

  async delete(name: string, key: string): Promise<boolean> {
    this.assertWritable(name, key, "delete an entry");
    this.seen.delete(rowKey(name, key));
    const result = await this.database.query("DELETE FROM cachet_entries WHERE name = $1 AND key = $2", [name, key]);
    return result.rowCount === 1;
  }

  async *list(name?: string): AsyncIterableIterator<EntryInfo> {
    if (name !== undefined) assertValidName(name);
    this.assertOpen();
    let after: [Date, string, string] | undefined;
    for (;;) {
      const filters: string[] = [];
      const values: unknown[] = [];
      if (name !== undefined) {
        values.push(name);
        filters.push(`name = $${values.length}`);
      }
      if (after !== undefined) {
        values.push(...after);
        filters.push(`(last_used_at, name, key) < ($${values.length - 2}, $${values.length - 1}, $${values.length})`);
      }
      const page = await this.database.query<EntryRow>(
        `SELECT ${ENTRY_COLUMNS} FROM cachet_entries ${filters.length ? `WHERE ${filters.join(" AND ")}` : ""}
         ORDER BY last_used_at DESC, name DESC, key DESC LIMIT 500`,
        values,
      );
      for (const row of page.rows) {
        if (this.trusted(row)) yield this.remember(row);
      }
      if (page.rows.length < 500) return;
      const last = page.rows[page.rows.length - 1]!;
      after = [last.last_used_at, last.name, last.key];
    }
  }

  /**
   * Takes the key's shared lease (see `leases.ts`), heartbeating it every third of the expiry until released.
   * While another holder has it, waits with jittered back-off, re-checking the shared tier: when an entry for the
   * key written after the wait began appears, it returns a lock that holds no lease, so the caller reads it.
   * With Redis (`CACHET_LEASES`), the Redis lease is taken first, which hands keys over faster; a Redis that
   * does not answer is reported once and leases go on through PostgreSQL alone. A read-only client takes no
   * lease (`RemoteReadOnlyError`): it writes nothing, results included.
   */
  async lockKey(name: string, key: string, options: LockKeyOptions = {}): Promise<RemoteKeyLock> {
    this.assertWritable(name, key, "take a lease");
    const timeoutSeconds = options.timeoutSeconds ?? this.options.lockTimeoutSeconds ?? readSettings().lockTimeoutSeconds;
    const deadline = Date.now() + timeoutSeconds * 1000;
    // Taken at the first failed try, not before: an entry the holder wrote before that is found after the
    // holder releases (the caller looks the key up again under the lease).
    let since: Date | undefined;
    let waited = false;
    for (let attempt = 0; ; attempt++) {
      const lease = await this.tryLease(name, key);
      if (lease !== undefined) return this.hold(lease);
      if (!waited) {
        waited = true;
        options.onWait?.({ path: `${this.root} lease ${name}/${key}`, mode: "exclusive" });
      }
      if (since === undefined) since = await this.databaseNow();
      else if (await this.writtenSince(name, key, since)) return { lease: undefined, lost: false, release: () => {} };
      if (Date.now() >= deadline) {
        throw new LockTimeoutError(`${this.root} lease ${name}/${key}`, timeoutSeconds, `another client is computing ${name}/${key}; raise CACHET_LOCK_TIMEOUT to wait longer`);
      }
      // Back-off up to a second, or an eighth of the expiry when that is shorter, so a takeover after a holder's
      // death comes soon after the expiry.
      const cap = Math.min(1000, ((this.options.leaseExpirySeconds ?? 30) * 1000) / 8);
      const step = this.redis && Date.now() >= this.redisDownUntil ? 25 : Math.min(cap, 50 * 2 ** Math.min(attempt, 5));
      await sleep(Math.min(step * (0.5 + Math.random()), Math.max(0, deadline - Date.now())));
    }
  }

  /** What the shared tier holds (entries, blobs, bytes, live leases). */
  async size(): Promise<RemoteSize> {
    this.assertOpen();
    return measureRemote(this.database);
  }

  /** Removes every entry, or those of `names`, and the blobs left without one (`cachet cache clean --remote`). */
  async clean(names?: readonly string[]): Promise<RemoteRemoval> {
    this.assertOpen();
    if (!this.writable) throw new RemoteReadOnlyError("clean the shared cache");
    for (const name of names ?? []) assertValidName(name);
    this.seen.clear();
    return cleanRemote(this.database, names);
  }

  /** Removes old or least-recently-used entries when asked, and always unreferenced blobs and expired leases (`dryRun`: only counts them). */
  async prune(options: RemotePruneOptions = {}): Promise<RemoteRemoval> {
    this.assertOpen();
    if (!this.writable) throw new RemoteReadOnlyError("prune the shared cache");
    if (options.dryRun !== true) this.seen.clear();
    return pruneRemote(this.database, options);
  }

  /** Checks every value and blob against its sha256 and removes the entries whose content fails. */
  async verify(): Promise<RemoteVerifyResult> {
    this.assertOpen();
    if (!this.writable) throw new RemoteReadOnlyError("verify the shared cache (it removes what fails)");
    this.seen.clear();
    return verifyRemote(this.database);
  }

  /**
   * Drops every connection at once, failing what runs on them (see `Database.dropConnections`); the store opens
   * new ones when it is used again.
   */
  dropConnections(): void {
    this.database.dropConnections();
  }

  /**
   * Writes pending use times, gives up held leases and closes the connections. Idempotent. Waits for the servers
   * at most `withinMs` (default the time limit; 0: not at all, for a server that did not answer in time already):
   * then the connections still busy are dropped, so a server that stopped answering holds neither the caller nor
   * the process. What did not finish is lost to the shared tier only: a lease left behind expires, a use time is
   * not written.
   */
  async close(options: { withinMs?: number | undefined } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const deadline = Date.now() + (options.withinMs ?? this.database.timeoutMs);
    clearInterval(this.useTimer);
    for (const held of this.held.values()) held.release();
    this.track(this.flushUses());
    await settlesWithin(Promise.allSettled([...this.pending]), deadline - Date.now());
    await this.redis?.close(Math.max(0, deadline - Date.now()));
    await this.database.close(Math.max(0, deadline - Date.now()));
    if (this.scratch !== undefined) await rm(this.scratch, { recursive: true, force: true }).catch(() => {});
  }

  // ---- writing

  /** Uploads a blob and commits its entry with it when the blob is new (see `uploadBlob`). */
  private async uploadAndCommit(name: string, key: string, storage: Storage, source: Uint8Array | AsyncIterable<Uint8Array>, digest: string | undefined, options: PutOptions): Promise<EntryInfo> {
    const fence = this.fenceFor(name, key);
    for (let attempt = 1; ; attempt++) {
      const blob = await uploadBlob<EntryRow>(this.database, source, digest, {
        before: fence === undefined ? undefined : (client) => checkFence(client, fence.lease),
        insert: (uploaded, from, when) => this.entryInsert(name, key, storage, uploaded.digest, uploaded.size, null, options, fence, from, when),
      });
      if (blob.committed !== undefined) return this.remember(blob.committed);
      try {
        return await this.commit(name, key, storage, blob.digest, blob.size, null, options);
      } catch (error) {
        // A prune removed the blob found stored before the entry referring to it was committed: the source,
        // not read then, is sent after all (a prune takes a moment; a few tries, not a loop against a busy one).
        if (!(error instanceof BlobPrunedError) || !blob.unread || attempt === 3) throw error;
      }
    }
  }

  private async commit(name: string, key: string, storage: Storage, digest: string, size: number, inline: Buffer | null, options: PutOptions): Promise<EntryInfo> {
    const row = await this.database.transaction((client) => this.writeRow(client, name, key, storage, digest, size, inline, options, storage !== "inline"));
    return this.remember(row);
  }

  /** Writes an entry's row in the caller's transaction, behind the fence of a held lease. */
  private async writeRow(
    client: DatabaseClient,
    name: string,
    key: string,
    storage: Storage,
    digest: string,
    size: number,
    inline: Buffer | null,
    options: PutOptions,
    checkBlob: boolean,
  ): Promise<EntryRow> {
    const fence = this.fenceFor(name, key);
    if (fence !== undefined) await checkFence(client, fence.lease);
    const insert = this.entryInsert(name, key, storage, digest, size, inline, options, fence, 1, "true");
    const written = await client.query<EntryRow>(insert.text, insert.values);
    if (checkBlob) {
      // A prune that ran between the upload and this commit may have removed the blob (it locks the entries
      // table, so once this row is written no prune can): then nothing is committed. KEY SHARE is the least lock
      // that keeps a repair or verify from deleting the row until the commit.
      const present = await client.query("SELECT 1 FROM cachet_blobs WHERE digest = $1 FOR KEY SHARE", [digest]);
      if (present.rowCount !== 1) throw new BlobPrunedError(`the shared blob ${digest} was pruned while ${name}/${key} was being written; nothing was committed`);
    }
    return written.rows[0]!;
  }

  /**
   * The upsert of an entry's row, signed (with a signing key) and carrying the fence's token; its parameters are
   * numbered from `from`, it writes only when the SQL condition `when` holds, and it returns the row.
   */
  private entryInsert(
    name: string,
    key: string,
    storage: Storage,
    digest: string,
    size: number,
    inline: Buffer | null,
    options: PutOptions,
    fence: HeldLease | undefined,
    from: number,
    when: string,
  ): { text: string; values: unknown[] } {
    const origin = options.origin ?? "computed";
    const format = options.format;
    const components = options.components === undefined ? null : JSON.parse(JSON.stringify(options.components));
    const fields: SignedFields = { name, key, storage, digest, size, origin, format, components };
    const signature = this.options.signingKey ? signEntry(this.options.signingKey, fields) : null;
    const values = [name, key, storage, digest, size, inline, origin, options.costMs ?? 0, format ?? null, components === null ? null : JSON.stringify(components), signature, fence?.lease.token ?? null];
    const types = ["text", "text", "text", "text", "bigint", "bytea", "text", "double precision", "text", "jsonb", "bytea", "bigint"];
    const text = `INSERT INTO cachet_entries (name, key, storage, digest, size, inline, origin, cost_ms, format, components, signature, fence)
       SELECT ${types.map((type, i) => `$${from + i}::${type}`).join(", ")} WHERE ${when}
       ON CONFLICT (name, key) DO UPDATE SET storage = EXCLUDED.storage, digest = EXCLUDED.digest, size = EXCLUDED.size,
         inline = EXCLUDED.inline, origin = EXCLUDED.origin, cost_ms = EXCLUDED.cost_ms, format = EXCLUDED.format,
         components = EXCLUDED.components, signature = EXCLUDED.signature, fence = EXCLUDED.fence,
         created_at = now(), last_used_at = now()
       RETURNING ${ENTRY_COLUMNS}`;
    return { text, values };
  }

  /** The held lease that fences a write of `(name, key)`: its own, or that of the key it is a content entry of. */
  private fenceFor(name: string, key: string): HeldLease | undefined {
    const own = this.held.get(rowKey(name, key));
    if (own !== undefined) return own;
    for (let dot = key.lastIndexOf("."); dot > 0; dot = key.lastIndexOf(".", dot - 1)) {
      const owner = this.held.get(rowKey(name, key.slice(0, dot)));
      if (owner !== undefined) return owner;
    }
    return undefined;
  }

  // ---- reading

  /** The entry's row, or undefined (see {@link acceptRow}). */
  private async readRow(name: string, key: string, kind?: "value" | "tree"): Promise<EntryRow | undefined> {
    this.assertUsable(name, key);
    const found = await this.database.query<EntryRow>({ name: "cachet_read_entry", text: `SELECT ${ENTRY_COLUMNS} FROM cachet_entries WHERE name = $1 AND key = $2`, values: [name, key] });
    return this.acceptRow(name, key, found.rows[0], kind);
  }

  /**
   * The row read for `(name, key)` when it is there and trusted (remembered for `info`), else undefined; with a
   * `kind`, the wrong kind of entry is an `EntryKindError`, as in the local store.
   */
  private acceptRow(name: string, key: string, row: EntryRow | undefined, kind?: "value" | "tree"): EntryRow | undefined {
    if (row === undefined || !this.trusted(row)) {
      this.seen.delete(rowKey(name, key));
      return undefined;
    }
    this.remember(row);
    if (kind === "value" && row.storage === "tree") throw new EntryKindError(name, key, "tree", "linkTree()");
    if (kind === "tree" && row.storage !== "tree") throw new EntryKindError(name, key, row.storage, "getValue()");
    return row;
  }

  /** Whether a row's signature holds (always, without a signing key); a row that fails is reported once. */
  private trusted(row: EntryRow): boolean {
    const signingKey = this.options.signingKey;
    if (!signingKey) return true;
    const fields: SignedFields = {
      name: row.name,
      key: row.key,
      storage: row.storage,
      digest: row.digest,
      size: Number(row.size),
      origin: row.origin,
      format: row.format ?? undefined,
      components: row.components,
    };
    const problem = signatureProblem(signingKey, fields, row.signature);
    if (problem === undefined) return true;
    this.warnOnce("CACHET_BAD_SIGNATURE", `cachet: ${new SignatureError(row.name, row.key, problem).message}`);
    return false;
  }

  /**
   * An entry's bytes, checked against its digest; a mismatch is a miss with a warning. A writable client removes
   * what failed (see {@link removeDamagedInline} and `BlobReadOptions`), so the next write of the content stores it.
   */
  private async content(row: EntryRow): Promise<Buffer | undefined> {
    try {
      const data = row.inline ?? (await readBlobBytes(this.database, row.digest, { removeDamaged: this.writable }));
      if (data === undefined) {
        this.warnMissing(row);
        return undefined;
      }
      const actual = sha256Hex(data);
      if (actual !== row.digest) {
        const removed = row.inline !== null && (await this.removeDamagedInline(row));
        throw new DamagedContentError(row.digest, actual, removed, `entry ${row.name}/${row.key}`);
      }
      return data;
    } catch (error) {
      if (!(error instanceof RemoteIntegrityError)) throw error;
      this.warnOnce("CACHET_INTEGRITY", `cachet: ${error.message}; it is ignored${removedNote(error)}`);
      return undefined;
    }
  }

  /**
   * Deletes an entry row whose inline value failed its digest, only while it is still that row (same digest, same
   * bytes: a writer that replaced it meanwhile keeps its row); true when it did. Not on a read-only client.
   */
  private async removeDamagedInline(row: EntryRow): Promise<boolean> {
    if (!this.writable) return false;
    this.seen.delete(rowKey(row.name, row.key));
    try {
      const removed = await this.database.query("DELETE FROM cachet_entries WHERE name = $1 AND key = $2 AND digest = $3 AND inline = $4", [row.name, row.key, row.digest, row.inline]);
      return removed.rowCount === 1;
    } catch {
      // A failure to delete (a timeout, a lost connection) leaves it: the read is a miss anyway.
      return false;
    }
  }

  /** Unpacks a tree entry's archive into `dest`, checked against its digest before it is used; undefined on a miss. */
  private async unpackInto(row: EntryRow, dest: string, onFile?: (relativePath: string, bytes: number) => void) {
    const removeDamaged = this.writable;
    const stream = await openBlobStream(this.database, row.digest, { removeDamaged });
    if (stream === undefined) {
      this.warnMissing(row);
      return undefined;
    }
    try {
      // The archive is hashed while it is read; a mismatch errors the stream at its end, before `dest` is used.
      return await unpackTree(stream, dest, onFile);
    } catch (error) {
      stream.destroy();
      if (!(error instanceof RemoteIntegrityError) && (error as { code?: string }).code !== "CACHET_INTEGRITY") throw error;
      // An archive refused before its end (damage can make it unreadable before the digest is known): the blob is
      // read through once more, so a damaged one is removed too (unless the stream's own check, which may have
      // reached the end before the refusal, removed it already), and a sound but hostile one is left alone.
      const removed = error instanceof DamagedContentError ? error.removed : removeDamaged && ["removed", "missing"].includes((await checkBlob(this.database, row.digest)) ?? "");
      this.warnOnce("CACHET_INTEGRITY", `cachet: ${(error as Error).message}; it is ignored${removed ? REMOVED_NOTE : ""}`);
      return undefined;
    }
  }

  private async writtenSince(name: string, key: string, since: Date): Promise<boolean> {
    const found = await this.database.query("SELECT 1 FROM cachet_entries WHERE name = $1 AND key = $2 AND created_at >= $3", [name, key, since]);
    return (found.rowCount ?? 0) > 0;
  }

  private async databaseNow(): Promise<Date> {
    const result = await this.database.query<{ now: Date }>("SELECT now() AS now");
    return result.rows[0]!.now;
  }

  // ---- leases

  private async tryLease(name: string, key: string): Promise<Lease | undefined> {
    const redis = this.redis !== undefined && Date.now() >= this.redisDownUntil ? this.redis : undefined;
    if (redis !== undefined) {
      try {
        if (!(await redis.tryAcquire(name, key, this.owner))) return undefined;
      } catch (error) {
        this.redisDownUntil = Date.now() + 30_000;
        this.warnOnce("CACHET_LEASES_UNAVAILABLE", `cachet: ${(error as Error).message}; leases go through PostgreSQL alone`);
      }
    }
    const lease = await this.leases.tryAcquire(name, key, this.owner);
    if (lease === undefined && redis !== undefined) this.track(redis.release(name, key, this.owner).catch(() => {}));
    return lease;
  }

  private hold(lease: Lease): RemoteKeyLock {
    const id = rowKey(lease.name, lease.key);
    const expiryMs = (this.options.leaseExpirySeconds ?? 30) * 1000;
    let lost = false;
    const beat = setInterval(() => {
      this.track(
        this.leases.extend(lease).then(
          (still) => (lost ||= !still),
          () => {},
        ),
      );
      if (this.redis !== undefined && Date.now() >= this.redisDownUntil) this.track(this.redis.extend(lease.name, lease.key, this.owner).catch(() => {}));
    }, expiryMs / 3);
    beat.unref();
    let released = false;
    const held: HeldLease = {
      lease,
      release: () => {
        if (released) return;
        released = true;
        clearInterval(beat);
        if (this.held.get(id) === held) this.held.delete(id);
        this.track(this.leases.release(lease).catch(() => {}));
        if (this.redis !== undefined) this.track(this.redis.release(lease.name, lease.key, this.owner).catch(() => {}));
      },
    };
    this.held.set(id, held);
    return {
      lease,
      get lost() {
        return lost;
      },
      release: held.release,
    };
  }

  // ---- bookkeeping

  private remember(row: EntryRow): EntryInfo {
    const info = toInfo(row);
    const id = rowKey(row.name, row.key);
    this.seen.delete(id);
    this.seen.set(id, { info, components: row.components ?? undefined });
    if (this.seen.size > 10_000) this.seen.delete(this.seen.keys().next().value!);
    return info;
  }

  private noteUse(row: EntryRow): void {
    if (this.writable) this.used.set(rowKey(row.name, row.key), [row.name, row.key]);
  }

  private async flushUses(): Promise<void> {
    if (this.used.size === 0) return;
    const batch = [...this.used.values()];
    this.used.clear();
    await this.database
      .query(
        `UPDATE cachet_entries e SET last_used_at = now() FROM unnest($1::text[], $2::text[]) AS u(name, key)
         WHERE e.name = u.name AND e.key = u.key`,
        [batch.map(([name]) => name), batch.map(([, key]) => key)],
      )
      .catch(() => {});
  }

  private track(work: Promise<unknown>): void {
    this.pending.add(work);
    void work.finally(() => this.pending.delete(work));
  }

  private warnMissing(row: EntryRow): void {
    this.warnOnce("CACHET_MISSING_CONTENT", `cachet: shared entry ${row.name}/${row.key}: its content ${row.digest} is missing from ${this.root}; it is ignored`);
  }

  private warnOnce(code: string, message: string): void {
    if (this.warned.has(code)) return;
    this.warned.add(code);
    const warning: StoreWarning = { code, message };
    (this.options.onWarning ?? ((w: StoreWarning) => process.emitWarning(w.message, { code: w.code })))(warning);
  }

  private assertWritable(name: string, key: string, what: string): void {
    this.assertUsable(name, key);
    if (!this.writable) throw new RemoteReadOnlyError(what);
  }

  private assertUsable(name: string, key: string): void {
    this.assertOpen();
    assertValidName(name);
    assertValidKey(key);
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreClosedError(this.root);
  }
}

interface HeldLease {
  lease: Lease;
  release(): void;
}

/** The blob an entry was being committed with was removed by a prune meanwhile; nothing was committed. */
class BlobPrunedError extends RemoteError {}

const REMOVED_NOTE = " and removed from the shared cache, so the next upload of that content stores it again";

/** What a warning about damaged content adds when the reader removed it. */
function removedNote(error: unknown): string {
  return error instanceof DamagedContentError && error.removed ? REMOVED_NOTE : "";
}

/** The fence: refuses the commit when the lease is no longer this holder's (see `FENCE_CHECK`). */
async function checkFence(client: DatabaseClient, lease: Lease): Promise<void> {
  const owned = await client.query(FENCE_CHECK, [lease.name, lease.key, lease.owner, lease.token]);
  if (owned.rowCount !== 1) throw new LeaseLostError(lease.name, lease.key, lease.token);
}

function rowKey(name: string, key: string): string {
  return `${name}\0${key}`;
}

/** The entry's own columns of a row that carries more. */
function entryOf(row: EntryRow): EntryRow {
  const { name, key, storage, digest, size, inline, origin, cost_ms, format, components, created_at, last_used_at, signature } = row;
  return { name, key, storage, digest, size, inline, origin, cost_ms, format, components, created_at, last_used_at, signature };
}

/** What a copy of the entry must carry over from its row. */
function metaOf(row: EntryRow): PutOptions {
  return { origin: row.origin, costMs: row.cost_ms, format: row.format ?? undefined, components: row.components ?? undefined };
}

function toInfo(row: EntryRow): EntryInfo {
  return {
    name: row.name,
    key: row.key,
    storage: row.storage,
    digest: row.digest,
    size: Number(row.size),
    origin: row.origin,
    costMs: row.cost_ms,
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
    format: row.format ?? undefined,
  };
}

async function* toAsync(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  for await (const piece of source) yield piece;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Moves the staged tree to `target`; with `replace` what is there is moved aside first and removed after. */
async function swapIn(staged: string, target: string, replace: boolean): Promise<void> {
  try {
    await rename(staged, target);
    return;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "";
    if (!["ENOTEMPTY", "EEXIST", "EISDIR", "ENOTDIR"].includes(code)) throw error;
    if (!replace) throw new LinkTargetError(target, "it already exists and is not an empty directory (pass replace to overwrite it)");
  }
  const aside = `${staged}.old`;
  await rename(target, aside);
  await rename(staged, target);
  await rm(aside, { recursive: true, force: true });
}

