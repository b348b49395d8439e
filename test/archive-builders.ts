// Archives made by the tests: well-formed ones through the libraries that write them (node-tar, yazl), and hostile
// ones those libraries refuse to write, by raw tar headers or by patching a zip's bytes.
import { createWriteStream } from "node:fs";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import yazl from "yazl";

/** One raw tar entry: `type` is the typeflag (`0` file, `1` hardlink, `2` symlink, `3` char device, `5` dir, …). */
export interface RawTarEntry {
  name: string;
  type?: string;
  mode?: number;
  data?: Buffer | string;
  /** The size the header declares, when it should not be the data's length. */
  size?: number;
  linkname?: string;
}

/** A 512-byte ustar header; sizes past the octal field's range use the base-256 form. */
export function tarHeader(entry: RawTarEntry): Buffer {
  const header = Buffer.alloc(512);
  const data = typeof entry.data === "string" ? Buffer.from(entry.data) : entry.data ?? Buffer.alloc(0);
  const size = entry.size ?? data.length;
  const octal = (value: number, offset: number, length: number) => header.write(`${value.toString(8).padStart(length - 1, "0")}\0`, offset, "ascii");
  header.write(entry.name, 0, 100, "utf8");
  octal(entry.mode ?? 0o644, 100, 8);
  octal(0, 108, 8);
  octal(0, 116, 8);
  if (size < 8 ** 11) octal(size, 124, 12);
  else {
    header[124] = 0x80;
    let rest = BigInt(size);
    for (let at = 135; at > 124; at--, rest >>= 8n) header[at] = Number(rest & 0xffn);
  }
  octal(Math.floor(Date.now() / 1000), 136, 12);
  header.write(entry.type ?? "0", 156, 1, "ascii");
  if (entry.linkname) header.write(entry.linkname, 157, 100, "utf8");
  header.write("ustar\0", 257, "ascii");
  header.write("00", 263, "ascii");
  header.fill(" ", 148, 156);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "ascii");
  return header;
}

/** One pax extended-header record, `<length> <key>=<value>\n`, its length counting itself. */
export function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let length = Buffer.byteLength(body) + 1;
  while (String(length).length + Buffer.byteLength(body) !== length) length++;
  return `${length}${body}`;
}

const padding = (size: number): Buffer => Buffer.alloc((512 - (size % 512)) % 512);

/** A whole tar of raw entries, with its two closing zero blocks. */
export function rawTar(entries: RawTarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    const data = typeof entry.data === "string" ? Buffer.from(entry.data) : entry.data ?? Buffer.alloc(0);
    parts.push(tarHeader(entry), data, padding(data.length));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** Writes a .tar.gz holding one file `name` of `size` zero bytes, streamed (no buffer of that size). */
export async function writeZeroTarGz(path: string, name: string, size: number): Promise<void> {
  async function* blocks() {
    yield tarHeader({ name, size });
    const chunk = Buffer.alloc(1024 * 1024);
    for (let left = size; left > 0; left -= chunk.length) yield left >= chunk.length ? chunk : chunk.subarray(0, left);
    yield padding(size);
    yield Buffer.alloc(1024);
  }
  await pipeline(Readable.from(blocks()), createGzip(), createWriteStream(path));
}

/** A zip entry for {@link writeZip}: a file (buffer or streamed zeros), a directory or a symlink. */
export type ZipEntry =
  | { name: string; data: Buffer | string; mode?: number; compress?: boolean }
  | { name: string; zeros: number; mode?: number }
  | { name: string; directory: true; mode?: number }
  | { name: string; symlink: string };

/** Writes a zip with yazl (Unix attributes, so modes and symlinks are kept). */
export async function writeZip(path: string, entries: ZipEntry[], options: { zip64?: boolean } = {}): Promise<void> {
  const zip = new yazl.ZipFile();
  const mtime = new Date();
  for (const entry of entries) {
    if ("directory" in entry) zip.addEmptyDirectory(entry.name, { mtime, mode: entry.mode ?? 0o40755 });
    else if ("symlink" in entry) zip.addBuffer(Buffer.from(entry.symlink), entry.name, { mtime, mode: 0o120777, compress: false });
    else if ("zeros" in entry) zip.addReadStream(zeroStream(entry.zeros), entry.name, { mtime, mode: entry.mode ?? 0o100644, size: entry.zeros });
    else zip.addBuffer(Buffer.from(entry.data), entry.name, { mtime, mode: entry.mode ?? 0o100644, compress: entry.compress ?? true, forceZip64Format: options.zip64 ?? false });
  }
  zip.end({ forceZip64Format: options.zip64 ?? false, comment: "" });
  await pipeline(zip.outputStream as NodeJS.ReadableStream, createWriteStream(path));
}

function zeroStream(size: number): Readable {
  const chunk = Buffer.alloc(1024 * 1024);
  let left = size;
  return new Readable({
    read() {
      if (left === 0) return void this.push(null);
      const part = left >= chunk.length ? chunk : chunk.subarray(0, left);
      left -= part.length;
      this.push(part);
    },
  });
}

/** Replaces every occurrence of `from` by `to` (same length) in a zip's bytes: names in both headers. */
export function patchZip(bytes: Buffer, from: string, to: string): Buffer {
  if (Buffer.byteLength(from) !== Buffer.byteLength(to)) throw new Error("a patch must keep the length");
  const out = Buffer.from(bytes);
  const needle = Buffer.from(from);
  let found = 0;
  for (let at = out.indexOf(needle); at !== -1; at = out.indexOf(needle, at + 1), found++) out.write(to, at);
  if (found === 0) throw new Error(`${from} is not in the zip`);
  return out;
}

/**
 * Changes the central directory record of entry `name` (the record yauzl trusts) with `patch`, given the record's
 * offset: its fields are at `at + 4` version made by, `+ 8` flags, `+ 24` uncompressed size, `+ 38` external
 * attributes.
 */
export function patchCentralRecord(bytes: Buffer, name: string, patch: (record: Buffer, at: number) => void): Buffer {
  const out = Buffer.from(bytes);
  const signature = Buffer.from([0x50, 0x4b, 0x01, 0x02]);
  for (let at = out.indexOf(signature); at !== -1; at = out.indexOf(signature, at + 4)) {
    const nameLength = out.readUInt16LE(at + 28);
    if (out.toString("utf8", at + 46, at + 46 + nameLength) !== name) continue;
    patch(out, at);
    return out;
  }
  throw new Error(`no central directory record for ${name}`);
}

/** Sets the uncompressed size the central directory declares for entry `name`. */
export function setCentralUncompressedSize(bytes: Buffer, name: string, size: number): Buffer {
  return patchCentralRecord(bytes, name, (record, at) => record.writeUInt32LE(size, at + 24));
}
