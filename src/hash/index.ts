/**
 * The hash layer: canonical value encoding and digests for cache keys, the stored-result value codec, and
 * content digests of files and directory trees. It imports nothing of cachet but the error base.
 */
export { encodeCanonical, hashValue, type HashOptions } from "./canonical-encoding.js";
export { hashKey, type Hashable } from "./hash-key.js";
export { sha256Hex } from "./sha256.js";
export { StreamSha256, OFFLOAD_AFTER } from "./sha256-stream.js";
export { HashWorkerGoneError, SLOT_SIZE, takeBatch, releaseBatch, type Batch } from "./sha256-worker.js";
export { serializeValue, deserializeValue, VALUE_FORMAT, type SerializeOptions } from "./value-codec.js";
export { describeAt, keySegment } from "./value-path.js";
export { UnhashableValueError, UnserializableValueError, ValueDecodeError, UnsupportedFileTypeError } from "./errors.js";
export { hashFile, hashFileSync, hashFileSyncChecked, isExecutable, type FileDigest, type CheckedFileDigest } from "./file-digest.js";
export {
  hashTree,
  hashTreeSync,
  treeDigestFromEntries,
  type TreeDigest,
  type TreeEntry,
  type HashTreeOptions,
  type TreeSkip,
} from "./tree-digest.js";
