// A CacheStore that keeps entries in memory (trees as copies in a scratch directory): a second implementation of
// the interface, so tests can show that tasks need nothing of the local Store beyond CacheStore.
import { cpSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { createHash } from "node:crypto";
import {
  EntryKindError,
  InvalidEntryKeyError,
  StoreClosedError,
  assertValidName,
  type CacheStore,
  type EntryInfo,
  type KeyLock,
  type LinkTally,
  type LinkTreeOptions,
  type PutOptions,
  type StoredValue,
} from "../src/index.js";

interface MemoryEntry {
  info: EntryInfo;
  /** The last use with its fraction of a millisecond (a Date keeps whole milliseconds). */
  usedAt: number;
  data?: Uint8Array;
  tree?: string;
  components?: unknown;
}

export class MemoryCacheStore implements CacheStore {
  readonly root: string;
  private readonly entries = new Map<string, MemoryEntry>();
  private readonly locks = new Map<string, Promise<void>>();
  private closed = false;
  private lastTime = 0;
  /** Every method called, in order, for tests to inspect. */
  readonly calls: string[] = [];

  constructor() {
    this.root = mkdtempSync(join(tmpdir(), "cachet-memory-store-"));
  }

  async put(name: string, key: string, data: Uint8Array | string, options: PutOptions = {}): Promise<EntryInfo> {
    this.check("put", name, key);
    const bytes = typeof data === "string" ? Buffer.from(data) : Buffer.from(data);
    return this.record(name, key, { data: bytes }, bytes.byteLength, options);
  }

  async putStream(name: string, key: string, source: AsyncIterable<Uint8Array> | Iterable<Uint8Array> | Uint8Array, options: PutOptions = {}): Promise<EntryInfo> {
    this.check("putStream", name, key);
    const chunks: Buffer[] = [];
    if (source instanceof Uint8Array) chunks.push(Buffer.from(source));
    else for await (const chunk of source) chunks.push(Buffer.from(chunk));
    const bytes = Buffer.concat(chunks);
    return this.record(name, key, { data: bytes }, bytes.byteLength, options);
  }

  async getValue(name: string, key: string): Promise<StoredValue | undefined> {
    const entry = this.use("getValue", name, key);
    if (!entry) return undefined;
    if (!entry.data) throw new EntryKindError(name, key, entry.info.storage, "linkTree()");
    return { data: Buffer.from(entry.data), format: entry.info.format, createdAt: entry.info.createdAt.getTime() };
  }

  async getStream(name: string, key: string): Promise<Readable | undefined> {
    const entry = this.use("getStream", name, key);
    if (!entry) return undefined;
    if (!entry.data) throw new EntryKindError(name, key, entry.info.storage, "linkTree()");
    return Readable.from([Buffer.from(entry.data)]);
  }

  async putTree(name: string, key: string, dir: string, options: PutOptions = {}): Promise<EntryInfo> {
    this.check("putTree", name, key);
    const tree = join(this.root, `tree-${this.entries.size}-${Date.now()}`);
    cpSync(dir, tree, { recursive: true });
    return this.record(name, key, { tree }, sizeOf(tree), options);
  }

  async linkTree(name: string, key: string, target: string, options: LinkTreeOptions = {}): Promise<LinkTally | undefined> {
    const entry = this.use("linkTree", name, key);
    if (!entry) return undefined;
    if (!entry.tree) throw new EntryKindError(name, key, entry.info.storage, "getValue()");
    if (options.replace) rmSync(target, { recursive: true, force: true });
    cpSync(entry.tree, target, { recursive: true });
    return { files: readdirSync(target, { recursive: true }).length, directories: 0, symlinks: 0, bytes: entry.info.size, mode: "copy" };
  }

  async treePath(name: string, key: string): Promise<string | undefined> {
    const entry = this.use("treePath", name, key);
    if (!entry) return undefined;
    if (!entry.tree) throw new EntryKindError(name, key, entry.info.storage, "getValue()");
    return entry.tree;
  }

  info(name: string, key: string): EntryInfo | undefined {
    this.check("info", name, key);
    const entry = this.entries.get(id(name, key));
    return entry && { ...entry.info };
  }

  components(name: string, key: string): unknown {
    this.check("components", name, key);
    return structuredClone(this.entries.get(id(name, key))?.components);
  }

  async delete(name: string, key: string): Promise<boolean> {
    this.check("delete", name, key);
    return this.entries.delete(id(name, key));
  }

  async *list(name?: string): AsyncIterableIterator<EntryInfo> {
    this.check("list", name ?? "all-names", "-");
    const entries = [...this.entries.values()].filter((entry) => name === undefined || entry.info.name === name);
    yield* entries.sort((a, b) => b.usedAt - a.usedAt).map((entry) => ({ ...entry.info }));
  }

  async lockKey(name: string, key: string): Promise<KeyLock> {
    this.check("lockKey", name, key);
    const held = this.locks.get(id(name, key)) ?? Promise.resolve();
    let release!: () => void;
    const next = new Promise<void>((resolve) => (release = resolve));
    this.locks.set(id(name, key), held.then(() => next));
    await held;
    return { release };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    rmSync(this.root, { recursive: true, force: true });
  }

  private record(name: string, key: string, content: { data?: Uint8Array; tree?: string }, size: number, options: PutOptions): EntryInfo {
    const usedAt = this.time();
    const now = new Date(usedAt);
    const digest = createHash("sha256").update(content.data ?? content.tree ?? "").digest("hex");
    const info: EntryInfo = {
      name,
      key,
      storage: content.tree ? "tree" : "blob",
      digest,
      size,
      origin: options.origin ?? "computed",
      costMs: options.costMs ?? 0,
      createdAt: now,
      lastUsedAt: now,
      format: options.format,
    };
    this.entries.set(id(name, key), { info, usedAt, ...content, components: structuredClone(options.components) });
    return { ...info };
  }

  private use(method: string, name: string, key: string): MemoryEntry | undefined {
    this.check(method, name, key);
    const entry = this.entries.get(id(name, key));
    if (entry) {
      entry.usedAt = this.time();
      entry.info.lastUsedAt = new Date(entry.usedAt);
    }
    return entry;
  }

  /** Now, strictly increasing, so uses within one millisecond keep their order. */
  private time(): number {
    this.lastTime = Math.max(Date.now(), this.lastTime + 0.001);
    return this.lastTime;
  }

  private check(method: string, name: string, key: string): void {
    if (this.closed) throw new StoreClosedError(this.root);
    assertValidName(name);
    if (typeof key !== "string" || key === "") throw new InvalidEntryKeyError("it is empty");
    this.calls.push(method);
  }
}

function id(name: string, key: string): string {
  return `${name}\0${key}`;
}

function sizeOf(dir: string): number {
  let bytes = 0;
  for (const path of readdirSync(dir, { recursive: true }) as string[]) {
    const stats = statSync(join(dir, path));
    if (stats.isFile()) bytes += stats.size;
  }
  return bytes;
}
