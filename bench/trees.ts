// The directory trees the benchmarks restore, key, pack and unpack: shaped like an installed package set or a
// source release (10 top folders × 10 sub-folders, 110 directories in all).
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface TreeShape {
  /** The largest file is 100 B × this (sizes are spread log-uniformly from 100 B); default 160 (16 KiB). */
  maxFactor?: number;
  /** File name extension; default `.js`. */
  extension?: string;
  /** Hex text (compresses about 2:1, like source code) instead of random bytes. */
  text?: boolean;
  /** Every tenth file executable. */
  someExecutable?: boolean;
}

/** Writes `files` files under `root` and returns their total size in bytes. */
export function writeTree(root: string, files: number, shape: TreeShape = {}): number {
  const { maxFactor = 160, extension = ".js", text = false, someExecutable = false } = shape;
  let bytes = 0;
  const perDir = Math.ceil(files / 100);
  for (let i = 0; i < files; i++) {
    const dir = join(root, `pkg-${Math.floor(i / (perDir * 10)) % 10}`, `mod-${Math.floor(i / perDir) % 10}`);
    if (i % perDir === 0) mkdirSync(dir, { recursive: true });
    const size = Math.round(100 * Math.pow(maxFactor, Math.random()));
    const data = text ? randomBytes(Math.ceil(size / 2)).toString("hex").slice(0, size) : randomBytes(size);
    writeFileSync(join(dir, `file-${i}${extension}`), data, { mode: someExecutable && i % 10 === 0 ? 0o755 : 0o644 });
    bytes += size;
  }
  return bytes;
}
