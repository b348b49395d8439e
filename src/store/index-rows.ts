/**
 * Rows of the index as SQLite returns them and as the rest of the store sees them: the column lists the index
 * selects, the one conversion from a raw row, and the bucket names the `bucket` column holds. Nothing outside
 * the index reads a raw row or a bucket name.
 */

/** Where an entry's content lives. */
export type Storage = "inline" | "blob" | "tree";

/** How an entry came to be: made here (kept by `prune --ci`) or fetched from elsewhere (dropped by it). */
export type Origin = "computed" | "downloaded";

/** The part of a row a reader needs to judge and return an entry (the hot path of a cache hit). */
export interface ValueRow {
  id: number;
  storage: Storage;
  digest: string;
  inline: Uint8Array | null;
  createdAt: number;
  lastUsedAt: number;
  format: string | null;
}

/** One row of the index, as the rest of the store sees it. */
export interface IndexRow extends ValueRow {
  name: string;
  key: string;
  size: number;
  origin: Origin;
  costMs: number;
}

/**
 * The columns a hit needs, in the positions {@link toValueRow} reads: every returned column costs a value
 * conversion on the hottest path. `bucket` and `row_check` are there for the row's checksum.
 */
export const VALUE_COLUMNS = "id, bucket, digest, inline, created_at, last_used_at, format, row_check";

/** Every column but `components` (read only by `explain`), in the positions {@link toRow} reads. */
export const ROW_COLUMNS = `${VALUE_COLUMNS}, name, key, size, origin, cost_ms`;

/** Positions shared by both column lists. */
const BUCKET = 1;
const ROW_CHECK = 7;

const STORAGE_TO_BUCKET: Readonly<Record<Storage, string>> = { inline: "inline", blob: "blobs-v1", tree: "trees-v1" };
const BUCKET_TO_STORAGE: Readonly<Record<string, Storage>> = { inline: "inline", "blobs-v1": "blob", "trees-v1": "tree" };

/** The `bucket` column's value for content stored as `storage`. */
export function bucketOf(storage: Storage): string {
  return STORAGE_TO_BUCKET[storage];
}

/** The storage a `bucket` column names, or undefined for a bucket this build does not know. */
export function storageOf(bucket: string): Storage | undefined {
  return Object.hasOwn(BUCKET_TO_STORAGE, bucket) ? BUCKET_TO_STORAGE[bucket] : undefined;
}

/** A row selected with {@link VALUE_COLUMNS} (or {@link ROW_COLUMNS}); a bucket this build does not know is storage `unknown`. */
export function toValueRow(raw: unknown[]): ValueRow {
  return {
    id: raw[0] as number,
    storage: storageOf(raw[BUCKET] as string) ?? ("unknown" as Storage),
    digest: raw[2] as string,
    inline: raw[3] as Uint8Array | null,
    createdAt: raw[4] as number,
    lastUsedAt: raw[5] as number,
    format: raw[6] as string | null,
  };
}

/** A row selected with {@link ROW_COLUMNS}. */
export function toRow(raw: unknown[]): IndexRow {
  const row = toValueRow(raw) as IndexRow;
  row.name = raw[8] as string;
  row.key = raw[9] as string;
  row.size = raw[10] as number;
  row.origin = raw[11] as Origin;
  row.costMs = raw[12] as number;
  return row;
}

/** The raw `bucket` column of a row selected with either column list (what its checksum covers). */
export function rawBucket(raw: unknown[]): string {
  return raw[BUCKET] as string;
}

/** The raw `row_check` column of a row selected with either column list. */
export function rawRowCheck(raw: unknown[]): Uint8Array | null {
  return raw[ROW_CHECK] as Uint8Array | null;
}

/** The JavaScript type of each column of {@link ROW_COLUMNS}, in order, with `null` where the column may be NULL. */
const ROW_TYPES: ReadonlyArray<readonly string[]> = [
  ["number"], // id
  ["string"], // bucket
  ["string"], // digest
  ["bytes", "null"], // inline
  ["number"], // created_at
  ["number"], // last_used_at
  ["string", "null"], // format
  ["bytes", "null"], // row_check
  ["string"], // name
  ["string"], // key
  ["number"], // size
  ["string"], // origin
  ["number"], // cost_ms
];

/**
 * True when every column of a raw row (selected with {@link ROW_COLUMNS}) has its schema's type: rows read back
 * from a damaged file may not, and are skipped before {@link toRow} trusts them.
 */
export function hasRowTypes(raw: unknown[]): boolean {
  return ROW_TYPES.every((types, position) => {
    const value = raw[position];
    const type = value === null ? "null" : value instanceof Uint8Array ? "bytes" : typeof value;
    return types.includes(type);
  });
}
