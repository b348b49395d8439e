/** What a long operation removed or measured. */
export interface Tally {
  entries: number;
  files: number;
  directories: number;
  bytes: number;
}

/** Progress of a long operation: called per item and once at the end. The library never prints. */
export interface Reporter {
  /** One file counted; `tally` is everything the operation counted so far. */
  item?(event: { path: string; bytes: number; tally: Readonly<Tally> }): void;
  end?(tally: Readonly<Tally>): void;
}

export function emptyTally(): Tally {
  return { entries: 0, files: 0, directories: 0, bytes: 0 };
}

/** The sum of two tallies (`part` may give only some counts): removals return tallies and callers add them up. */
export function addTally(total: Readonly<Tally>, part: Readonly<Partial<Tally>>): Tally {
  return {
    entries: total.entries + (part.entries ?? 0),
    files: total.files + (part.files ?? 0),
    directories: total.directories + (part.directories ?? 0),
    bytes: total.bytes + (part.bytes ?? 0),
  };
}
