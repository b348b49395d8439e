import { resolve } from "node:path";
import { hashFile, hashKey, hashTree } from "../hash/index.js";

/** A file or directory named as a task input or result; hashed by content when a call is keyed. */
abstract class ContentRefBase {
  abstract readonly kind: "file" | "dir";
  /** Absolute path. */
  readonly path: string;
  /** @internal content digest for the current call, set before the key is computed. */
  digest: string | undefined;

  constructor(path: string) {
    this.path = resolve(path);
  }

  /** @internal computes {@link digest} from the content now on disk. */
  abstract resolveDigest(): Promise<void>;

  [hashKey](): unknown {
    return this.digest ?? unresolved(this.path);
  }

  toString(): string {
    return this.path;
  }
}

/**
 * A file as a task input or result. As an input it hashes by content (not by path or mtime); as a result its
 * content is stored in the cache and put back at `path` on a hit.
 */
export class FileRef extends ContentRefBase {
  readonly kind = "file" as const;

  async resolveDigest(): Promise<void> {
    this.digest = (await hashFile(this.path)).digest;
  }
}

/** A directory tree as a task input or result; see {@link FileRef}. Hashes by relative paths, content and exec bits. */
export class DirRef extends ContentRefBase {
  readonly kind = "dir" as const;

  async resolveDigest(): Promise<void> {
    this.digest = (await hashTree(this.path)).digest;
  }
}

function unresolved(path: string): never {
  throw new Error(`internal: the digest of ${path} was not computed before hashing`);
}

/** A file input or result: hashed by content, restored on a hit. */
export function file(path: string): FileRef {
  return new FileRef(path);
}

/** A directory input or result: hashed by content, restored (linked out of the cache) on a hit. */
export function dir(path: string): DirRef {
  return new DirRef(path);
}

export type ContentRef = FileRef | DirRef;

/** Where a reference sits inside a value: property names and indexes from the root. */
export type RefPath = ReadonlyArray<string | number>;

/**
 * Finds file and dir references in plain objects, arrays, Maps and Sets (not inside class instances), with
 * their paths. Cheap for the common case of primitive inputs.
 */
export function findRefs(value: unknown, path: (string | number)[] = [], found: Array<[RefPath, ContentRef]> = [], depth = 0): Array<[RefPath, ContentRef]> {
  if (value === null || typeof value !== "object" || depth > 64) return found;
  if (value instanceof FileRef || value instanceof DirRef) {
    found.push([[...path], value]);
    return found;
  }
  if (Array.isArray(value)) {
    for (let index = 0; index < value.length; index++) {
      path.push(index);
      findRefs(value[index], path, found, depth + 1);
      path.pop();
    }
    return found;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return found;
  for (const key of Object.keys(value)) {
    path.push(key);
    findRefs((value as Record<string, unknown>)[key], path, found, depth + 1);
    path.pop();
  }
  return found;
}
