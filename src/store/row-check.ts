import { createHash } from "node:crypto";

/** The fields of an index row a reader acts on; a checksum over them is stored with the row. */
export interface CheckedFields {
  name: string;
  key: string;
  bucket: string;
  digest: string;
  format: string | null;
  createdAt: number;
  inline: Uint8Array | null;
}

/**
 * A 16-byte checksum of a row's identity (name, key) and content (bucket, digest, inline bytes, format,
 * creation time). Checked on every read from the index file: a flipped byte anywhere a reader looks, or a
 * damaged b-tree answering a lookup with another key's row, makes the row a miss instead of wrong data.
 * Fields are length-prefixed, so no two rows encode alike.
 */
export function rowCheck(fields: CheckedFields): Buffer {
  const hash = createHash("sha256");
  const text =
    `cachet-row/1\n${fields.name.length}:${fields.name}${fields.key.length}:${fields.key}` +
    `${fields.bucket}:${fields.digest}:${fields.format === null ? "-" : `${fields.format.length}:${fields.format}`}:${fields.createdAt}:`;
  hash.update(text);
  if (fields.inline !== null) hash.update(fields.inline);
  return hash.digest().subarray(0, 16);
}

/**
 * True when a row read back is what was written. A row without a checksum (written before checksums existed)
 * cannot be checked against its key, so it is never trusted: the caller treats it as a miss.
 */
export function rowIsIntact(fields: CheckedFields, check: Uint8Array | null): boolean {
  if (check === null) return false;
  const expected = rowCheck(fields);
  return check.byteLength === expected.byteLength && Buffer.compare(expected, check) === 0;
}
