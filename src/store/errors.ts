import { CachetError } from "../errors.js";

/** An entry name that could escape the cache root or is otherwise unusable (`..`, `/`, NUL, empty). */
export class InvalidEntryNameError extends CachetError {
  readonly code = "CACHET_INVALID_NAME";
  constructor(readonly entryName: string, reason: string) {
    super(`invalid entry name ${JSON.stringify(entryName)}: ${reason}`);
  }
}

/** An entry key that is not a non-empty string. */
export class InvalidEntryKeyError extends CachetError {
  readonly code = "CACHET_INVALID_KEY";
  constructor(reason: string) {
    super(`invalid entry key: ${reason}`);
  }
}

/** Waiting for a cache lock took longer than `CACHET_LOCK_TIMEOUT` allows. */
export class LockTimeoutError extends CachetError {
  readonly code = "CACHET_LOCK_TIMEOUT";
  constructor(readonly lockPath: string, readonly seconds: number, advice?: string) {
    super(
      `timed out after ${seconds}s waiting for the lock ${lockPath} held by another process ` +
        `(${advice ?? "raise CACHET_LOCK_TIMEOUT, or pass --force if no other process uses the cache"})`,
    );
  }
}

/** @deprecated The settings module's {@link SettingError}, under its former name. */
export { SettingError as StoreSettingError } from "../config/index.js";

/** Writing to the cache failed (disk full, read-only filesystem, permissions); nothing half-written is kept. */
export class StoreWriteError extends CachetError {
  readonly code: string;
  constructor(readonly path: string, cause: NodeJS.ErrnoException) {
    super(`${describeWriteFailure(cause)} while writing ${path}`, { cause });
    this.code = DISK_FULL_CODES.has(cause.code ?? "") ? "CACHET_DISK_FULL" : "CACHET_WRITE_FAILED";
  }
}

/** The cache root cannot be used at all (not a directory, not writable). */
export class CacheRootError extends CachetError {
  readonly code = "CACHET_BAD_ROOT";
  constructor(readonly root: string, reason: string, options?: { cause?: unknown }) {
    super(`cannot use the cache directory ${root}: ${reason}`, options);
  }
}

/** A linking or restore target that cannot be written as asked. */
export class LinkTargetError extends CachetError {
  readonly code = "CACHET_LINK_TARGET";
  constructor(readonly target: string, reason: string) {
    super(`cannot restore into ${target}: ${reason}`);
  }
}

/** A forced link mode (`CACHET_LINK_MODE`) that the filesystems of the cache and the restore target refuse. */
export class LinkModeError extends CachetError {
  readonly code = "CACHET_LINK_MODE";
  constructor(readonly mode: string, readonly source: string, readonly target: string, errno: string) {
    super(
      `CACHET_LINK_MODE=${mode} cannot be used from ${source} to ${target} (${errno}` +
        `${errno === "EXDEV" ? ": different filesystems" : ""}); unset it to let cachet choose, or set it to copy`,
    );
  }
}

/** Errno codes, and SQLite's result code for the same condition in the index, that mean the disk is full. */
const DISK_FULL_CODES = new Set(["ENOSPC", "EDQUOT", "SQLITE_FULL", "SQLITE_IOERR_SHMSIZE"]);

function describeWriteFailure(cause: NodeJS.ErrnoException): string {
  switch (cause.code) {
    case "ENOSPC":
    case "SQLITE_FULL":
    case "SQLITE_IOERR_SHMSIZE":
      return "no space left on device";
    case "EDQUOT":
      return "disk quota exceeded";
    case "EROFS":
      return "read-only file system";
    case "EACCES":
    case "EPERM":
      return "permission denied";
    default:
      return cause.message;
  }
}

/** Wraps a filesystem error raised while writing into the store in a {@link StoreWriteError}. */
export function asWriteError(path: string, error: unknown): unknown {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code && (["ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "EIO", "SQLITE_FULL"].includes(code) || code.startsWith("SQLITE_IOERR"))) {
    return new StoreWriteError(path, error as NodeJS.ErrnoException);
  }
  return error;
}

/** The entry index cannot be opened or read (permissions, I/O errors); corruption is repaired, not reported. */
export class IndexError extends CachetError {
  readonly code = "CACHET_INDEX";
  constructor(readonly file: string, reason: string, options?: { cause?: unknown }) {
    super(`cannot use the cache index ${file}: ${reason}`, options);
  }
}

/** A blob's content no longer matches its digest (bit rot, a crash before data reached the disk, tampering). */
export class BlobIntegrityError extends CachetError {
  readonly code = "CACHET_INTEGRITY";
  constructor(readonly path: string, readonly expected: string, readonly actual: string) {
    super(`cache blob ${path} is corrupt: expected sha256 ${expected}, found ${actual}`);
  }
}

/** Why a path of the cache root cannot be created or opened, in words (for {@link CacheRootError}). */
export function describeRootFailure(error: NodeJS.ErrnoException): string {
  const where = error.path ?? "";
  switch (error.code) {
    case "ENOTDIR":
    case "EEXIST":
      return `${where} (or a folder above it) is a file, not a directory`;
    case "EACCES":
    case "EPERM":
      return `permission denied for ${where} (cachet writes its lock and index files even to read)`;
    case "EROFS":
      return `${where} is on a read-only file system (cachet writes its lock and index files even to read)`;
    case "ENOENT":
      return `${where} cannot be created (its parent does not exist and cannot be made)`;
    default:
      return error.message;
  }
}
