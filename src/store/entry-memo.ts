/**
 * Small inline rows read in this process, kept in memory so a repeated hit skips SQLite. The index decides when
 * the memo is valid (it clears it when another connection commits or this one writes); the memo only keeps
 * rows, bounded by bytes and count, least recently read first out. A row is admitted on its second read, so
 * one-off scans do not churn it. Rows are stored and handed out as copies: a caller may write to what it got.
 */

/** What the memo keeps of a row: enough to answer a hit (the value was verified before it was admitted). */
export interface MemoRow {
  id: number;
  digest: string;
  inline: Uint8Array;
  createdAt: number;
  lastUsedAt: number;
  format: string | null;
}

const MAX_BYTES = 16 * 1024 * 1024;
const MAX_ROWS = 50_000;
/** A row larger than this share of the budget is never kept. */
const MAX_ROW_BYTES = MAX_BYTES / 16;
const ROW_OVERHEAD = 64;

export class EntryMemo {
  private readonly rows = new Map<string, MemoRow>();
  private readonly readOnce = new Set<string>();
  private bytes = 0;

  /** The row for `memoKey` (a copy), marking it most recently read; undefined when not kept. */
  get(memoKey: string): MemoRow | undefined {
    const row = this.rows.get(memoKey);
    if (row === undefined) return undefined;
    this.rows.delete(memoKey);
    this.rows.set(memoKey, row);
    return { ...row, inline: Buffer.from(row.inline) };
  }

  /** Records the use time of a kept row. */
  touch(memoKey: string, at: number): void {
    const row = this.rows.get(memoKey);
    if (row !== undefined) row.lastUsedAt = at;
  }

  /** Offers a verified row just read from the index: kept on its second offer. */
  offer(memoKey: string, row: MemoRow): void {
    if (!this.readOnce.has(memoKey)) {
      if (this.readOnce.size >= MAX_ROWS) this.readOnce.clear();
      this.readOnce.add(memoKey);
      return;
    }
    this.readOnce.delete(memoKey);
    const size = sizeOf(memoKey, row.inline);
    if (size > MAX_ROW_BYTES) return;
    // A private copy, outside Buffer's shared pool.
    this.rows.set(memoKey, { ...row, inline: new Uint8Array(row.inline) });
    this.bytes += size;
    while (this.bytes > MAX_BYTES || this.rows.size > MAX_ROWS) {
      const [oldestKey, oldest] = this.rows.entries().next().value as [string, MemoRow];
      this.rows.delete(oldestKey);
      this.bytes -= sizeOf(oldestKey, oldest.inline);
    }
  }

  clear(): void {
    if (this.rows.size > 0) this.rows.clear();
    if (this.readOnce.size > 0) this.readOnce.clear();
    this.bytes = 0;
  }
}

function sizeOf(memoKey: string, inline: Uint8Array): number {
  return inline.byteLength + memoKey.length * 2 + ROW_OVERHEAD;
}
