/** Where a table is written. */
export interface TableStream {
  write(text: string): unknown;
}

/** Whether a column's cells line up on their left or right edge (sizes read best right-aligned). */
export type ColumnAlign = "left" | "right";

const FLUSH_AT = 64 * 1024;
const GAP = "  ";

/**
 * Rows of text cells. On a terminal (`aligned`) the columns are padded with spaces to line up, which needs every
 * row first; otherwise each row is one line of tab-separated cells, streamed (for `cut`, `awk`, spreadsheets).
 * Cells must not hold tabs or line breaks; they are replaced by spaces.
 */
export class TableWriter {
  private readonly rows: string[][] = [];
  private pending = "";
  private count = 0;

  constructor(
    private readonly out: TableStream,
    private readonly aligned: boolean,
    private readonly header: readonly string[],
    private readonly align: readonly ColumnAlign[] = [],
  ) {}

  /** Rows written so far, not counting the header. */
  get size(): number {
    return this.count;
  }

  row(cells: readonly string[]): void {
    const clean = cells.map((cell) => cell.replace(/[\t\r\n]/g, " "));
    if (this.count === 0 && !this.aligned) this.emit(`${this.header.join("\t")}\n`);
    this.count++;
    if (this.aligned) this.rows.push(clean);
    else this.emit(`${clean.join("\t")}\n`);
  }

  /** Writes what is held back: on a terminal the whole table; otherwise the last rows. Nothing for no rows. */
  end(): void {
    if (this.aligned && this.count > 0) {
      const all = [[...this.header], ...this.rows];
      const widths = this.header.map((_, column) => Math.max(...all.map((row) => width(row[column] ?? ""))));
      for (const row of all) this.emit(`${this.line(row, widths)}\n`);
      this.rows.length = 0;
    }
    if (this.pending) this.out.write(this.pending);
    this.pending = "";
  }

  private line(row: readonly string[], widths: readonly number[]): string {
    const last = widths.length - 1;
    const cells = widths.map((columnWidth, column) => {
      const cell = row[column] ?? "";
      const padding = " ".repeat(columnWidth - width(cell));
      if (this.align[column] === "right") return padding + cell;
      return column === last ? cell : cell + padding;
    });
    return cells.join(GAP).trimEnd();
  }

  private emit(text: string): void {
    this.pending += text;
    if (this.pending.length >= FLUSH_AT) {
      this.out.write(this.pending);
      this.pending = "";
    }
  }
}

/** Terminal columns of a cell: one per code point (names are ASCII in practice; wide characters count as one). */
function width(cell: string): number {
  let count = 0;
  for (const _ of cell) count++;
  return count;
}
