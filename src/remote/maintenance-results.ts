// What the maintenance of the shared tier (size, clean, prune, verify) reports; types only, so the public
// declarations do not reach the database driver.

/** What the shared tier holds. */
export interface RemoteSize {
  entries: number;
  blobs: number;
  /** Bytes of blob content plus inline values. */
  bytes: number;
  /** Leases held right now (not expired). */
  leases: number;
}

/** What a clean, prune or verify of the shared tier removed. */
export interface RemoteRemoval {
  entries: number;
  blobs: number;
  /** Bytes of the blobs removed (inline values count with their entries). */
  bytes: number;
  leases: number;
}

/** Options of {@link pruneRemote}. */
export interface RemotePruneOptions {
  /** Also remove entries not used (nor created) within this many ms, by the database clock. */
  maxAgeMs?: number | undefined;
  /** Also remove least-recently-used entries until entries and blobs fit this many bytes. */
  maxSizeBytes?: number | undefined;
  /** Count what would be removed, and remove nothing. */
  dryRun?: boolean | undefined;
}

/** What {@link verifyRemote} found. */
export interface RemoteVerifyResult {
  /** Entries and blobs checked. */
  entries: number;
  blobs: number;
  /** Entries removed: their content is missing or does not match its digest. */
  bad: { name: string; key: string; reason: string }[];
}
