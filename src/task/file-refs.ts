import { stat } from "node:fs/promises";
import { isAbsolute, relative, resolve, sep } from "node:path";
import { describeAt, hashFile, hashKey, hashTree, keySegment, UnsupportedFileTypeError } from "../hash/index.js";
import { FileRefError, describeValue } from "./errors.js";

/** A file or directory named as a task input or result; hashed by content when a call is keyed. */
abstract class ContentRefBase {
  abstract readonly kind: "file" | "dir";
  /** Absolute path. */
  readonly path: string;
  /** @internal content digest for the current call, set before the key is computed. */
  digest: string | undefined;

  constructor(path: string) {
    if (typeof path !== "string" || path === "") {
      const call = `${new.target === DirRef ? "dir" : "file"}(path)`;
      const what = new.target === DirRef ? "a directory's path" : "a file's path";
      throw new FileRefError(`${call} takes ${what} as a non-empty string, got ${describeValue(path)}`, "", "");
    }
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
 * Computes the digest of every reference among a call's inputs. A reference that names nothing, or the wrong
 * kind, fails with a {@link FileRefError} naming the input (`input "src": no such file /work/src.txt`).
 */
export async function resolveDigests(refs: ReadonlyArray<readonly [RefPath, ContentRef]>): Promise<void> {
  await Promise.all(
    refs.map(async ([path, ref]) => {
      try {
        await ref.resolveDigest();
      } catch (error) {
        throw await refFailure("input", path, ref, error);
      }
    }),
  );
}

/**
 * What went wrong with reference `ref` at `path` of an input or result (`label`), when `error` is about the file
 * it names: a {@link FileRefError} that says so and what to do. Any other error (a full disk, say) is returned
 * as it is.
 */
export async function refFailure(label: "input" | "result", path: RefPath, ref: ContentRef, error: unknown): Promise<unknown> {
  const where = renderRefPath(path);
  const fail = (reason: string) => new FileRefError(describeAt(label, where, reason), where, ref.path, { cause: error });
  const found = await stat(ref.path).catch((statError: NodeJS.ErrnoException) => statError);
  if (found instanceof Error) {
    if (found.code === "ENOENT" || found.code === "ENOTDIR") return fail(`no such ${ref.kind === "dir" ? "directory" : "file"} ${ref.path}`);
    if (found.code === "EACCES" || found.code === "EPERM") return fail(`permission denied reading ${ref.path}`);
    return error;
  }
  if (ref.kind === "file" && found.isDirectory()) return fail(`${ref.path} is a directory; use dir() for a directory`);
  if (ref.kind === "dir" && !found.isDirectory()) {
    return fail(`${ref.path} is not a directory${found.isFile() ? "; use file() for a file" : ""}`);
  }
  if (error instanceof UnsupportedFileTypeError) return fail(error.message);
  const denied = error as NodeJS.ErrnoException | null;
  if (denied?.code === "EACCES" && denied.path?.startsWith(ref.path)) return fail(`permission denied reading ${denied.path}`);
  return error;
}

/**
 * A hit puts a `dir()` result back whole, so a result directory that is the current directory or holds it would
 * be swapped out from under the process (deleting what is there): such a result is refused as unstorable.
 */
export function assertRestorableDir(path: RefPath, ref: ContentRef): void {
  if (ref.kind !== "dir") return;
  const fromRef = relative(ref.path, process.cwd());
  if (fromRef === "" || (fromRef !== ".." && !fromRef.startsWith(`..${sep}`) && !isAbsolute(fromRef))) {
    const where = renderRefPath(path);
    throw new FileRefError(describeAt("result", where, `${ref.path} is the current directory or holds it; a hit would replace it whole (return the folder the task writes, such as dir("out"))`), where, ref.path);
  }
}

/** A reference's place in a value as messages print it: `src`, `out.report`, `files[2]`. */
function renderRefPath(path: RefPath): string {
  const text = path.map((part) => (typeof part === "number" ? `[${part}]` : keySegment(part))).join("");
  return text.startsWith(".") ? text.slice(1) : text;
}

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
