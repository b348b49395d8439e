import { createReadStream, createWriteStream } from "node:fs";
import { lstat, mkdir, readdir, readlink, symlink, chmod } from "node:fs/promises";
import { join, posix, sep } from "node:path";
import { once } from "node:events";
import { CachetError } from "../errors.js";

/**
 * A directory tree as one byte stream, so the shared tier stores a tree as one content-addressed blob: the line
 * `cachet-tree/1`, then per entry (sorted by path) a JSON header line `{"t":"d"|"f"|"l","p":path,"m":mode,
 * "s":size,"l":target}` followed, for a file, by exactly `s` bytes. Paths are relative, `/`-separated, and never
 * leave the tree (checked when unpacking).
 */
const MAGIC = "cachet-tree/1\n";

interface Header {
  t: "d" | "f" | "l";
  p: string;
  m?: number;
  s?: number;
  l?: string;
}

/** What {@link unpackTree} made. */
export interface UnpackTally {
  files: number;
  directories: number;
  symlinks: number;
  bytes: number;
}

/** A tree archive that cannot be unpacked (not one, or a path that would leave the tree). */
export class TreeArchiveError extends CachetError {
  readonly code = "CACHET_INTEGRITY";
  constructor(reason: string) {
    super(`shared tree archive is not valid: ${reason}`);
  }
}

/** The archive of the directory `dir`, streamed; a file that changes size while it is read fails it. */
export async function* packTree(dir: string): AsyncGenerator<Buffer> {
  yield Buffer.from(MAGIC);
  for (const relative of await listTree(dir, "")) {
    const path = join(dir, ...relative.split("/"));
    const stat = await lstat(path);
    if (stat.isDirectory()) yield line({ t: "d", p: relative, m: stat.mode & 0o777 });
    else if (stat.isSymbolicLink()) yield line({ t: "l", p: relative, l: await readlink(path) });
    else if (stat.isFile()) {
      yield line({ t: "f", p: relative, m: stat.mode & 0o777, s: stat.size });
      let read = 0;
      for await (const piece of createReadStream(path, { end: Math.max(0, stat.size - 1), highWaterMark: 1 << 20 })) {
        if (stat.size === 0) break;
        read += (piece as Buffer).byteLength;
        yield piece as Buffer;
      }
      if (read !== stat.size) throw new TreeArchiveError(`${relative} changed size while it was read`);
    }
  }
}

async function listTree(dir: string, prefix: string): Promise<string[]> {
  const names = (await readdir(join(dir, ...prefix.split("/").filter(Boolean)), { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
  const out: string[] = [];
  for (const entry of names) {
    const relative = prefix === "" ? entry.name : `${prefix}/${entry.name}`;
    out.push(relative);
    if (entry.isDirectory()) out.push(...(await listTree(dir, relative)));
  }
  return out;
}

function line(header: Header): Buffer {
  return Buffer.from(`${JSON.stringify(header)}\n`);
}

/** Unpacks an archive stream into the (new, empty) directory `dest`; `onFile` is called per file written. */
export async function unpackTree(source: AsyncIterable<Uint8Array>, dest: string, onFile?: (relativePath: string, bytes: number) => void): Promise<UnpackTally> {
  const tally: UnpackTally = { files: 0, directories: 0, symlinks: 0, bytes: 0 };
  const reader = new ByteReader(source[Symbol.asyncIterator]());
  const magic = await reader.line();
  if (magic === undefined || `${magic}\n` !== MAGIC) throw new TreeArchiveError("it does not start with cachet-tree/1");
  await mkdir(dest, { recursive: true });
  // Every path made so far, and the symlinks among them: an entry may not come twice, nor lie under a symlink
  // (through one it would write outside `dest`, and this runs before the archive's digest is known to hold).
  const made = new Set<string>();
  const symlinks = new Set<string>();
  for (;;) {
    const text = await reader.line();
    if (text === undefined) break;
    let header: Header;
    try {
      header = JSON.parse(text) as Header;
    } catch {
      throw new TreeArchiveError("a header is not JSON");
    }
    const path = safePath(header.p);
    if (made.has(path)) throw new TreeArchiveError(`the path ${JSON.stringify(path)} comes twice`);
    for (let slash = path.indexOf("/"); slash > 0; slash = path.indexOf("/", slash + 1)) {
      if (symlinks.has(path.slice(0, slash))) throw new TreeArchiveError(`the path ${JSON.stringify(path)} goes through a symlink`);
    }
    made.add(path);
    const target = join(dest, ...path.split("/"));
    if (header.t === "d") {
      await mkdir(target, { recursive: true });
      await chmod(target, permissions(header.m, 0o755) | 0o700);
      tally.directories++;
    } else if (header.t === "l") {
      await symlink(String(header.l), target);
      symlinks.add(path);
      tally.symlinks++;
    } else if (header.t === "f") {
      const size = Number(header.s);
      if (!Number.isSafeInteger(size) || size < 0) throw new TreeArchiveError(`${header.p} has no valid size`);
      const out = createWriteStream(target, { flags: "wx", mode: permissions(header.m, 0o644) | 0o600 });
      for await (const piece of reader.bytes(size)) {
        if (!out.write(piece)) await once(out, "drain");
      }
      out.end();
      await once(out, "close");
      tally.files++;
      tally.bytes += size;
      onFile?.(header.p, size);
    } else throw new TreeArchiveError(`unknown entry type ${JSON.stringify(header.t)}`);
  }
  return tally;
}

/** An entry's mode as permission bits only: an archive never makes a setuid, setgid or sticky file. */
function permissions(mode: unknown, fallback: number): number {
  return (typeof mode === "number" && Number.isInteger(mode) ? mode : fallback) & 0o777;
}

function safePath(path: unknown): string {
  if (typeof path !== "string" || path === "") throw new TreeArchiveError("an entry has no path");
  const normal = posix.normalize(path);
  if (normal !== path || path.startsWith("/") || path.split("/").some((part) => part === ".." || part === "." || part === "") || path.includes(sep === "/" ? "\0" : "\\")) {
    throw new TreeArchiveError(`the path ${JSON.stringify(path)} would leave the tree`);
  }
  return path;
}

/** Reads lines and counted byte runs from a stream of chunks. */
class ByteReader {
  private buffer = Buffer.alloc(0);
  private done = false;

  constructor(private readonly source: AsyncIterator<Uint8Array>) {}

  private async fill(): Promise<boolean> {
    if (this.done) return false;
    const next = await this.source.next();
    if (next.done) {
      this.done = true;
      return false;
    }
    this.buffer = this.buffer.byteLength === 0 ? Buffer.from(next.value) : Buffer.concat([this.buffer, next.value]);
    return true;
  }

  /** The next line without its `\n`, or undefined at the end of the stream. */
  async line(): Promise<string | undefined> {
    for (;;) {
      const end = this.buffer.indexOf(10);
      if (end >= 0) {
        const text = this.buffer.subarray(0, end).toString("utf8");
        this.buffer = this.buffer.subarray(end + 1);
        return text;
      }
      if (this.buffer.byteLength > 1 << 20) throw new TreeArchiveError("a header line is too long");
      if (!(await this.fill())) {
        if (this.buffer.byteLength > 0) throw new TreeArchiveError("it ends inside a header");
        return undefined;
      }
    }
  }

  /** Exactly `count` bytes, in pieces. */
  async *bytes(count: number): AsyncGenerator<Buffer> {
    let left = count;
    while (left > 0) {
      if (this.buffer.byteLength === 0 && !(await this.fill())) throw new TreeArchiveError("it ends inside a file");
      const take = Math.min(left, this.buffer.byteLength);
      yield this.buffer.subarray(0, take);
      this.buffer = this.buffer.subarray(take);
      left -= take;
    }
  }
}
