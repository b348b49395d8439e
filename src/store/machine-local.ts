/**
 * The entry name of the file-stat memo of cache keys (one entry per base directory; see `src/sources/file-digests.ts`).
 * It holds this machine's inode numbers and file times, which mean nothing on another machine.
 */
export const FILE_DIGEST_MEMO_NAME = "cachet-file-digests";

/** Entry names that stay on the machine that wrote them: never sent to a shared tier, whoever asks to push. */
export const MACHINE_LOCAL_NAMES: ReadonlySet<string> = new Set([FILE_DIGEST_MEMO_NAME]);
