import type { EntryInfo, Store } from "../store/index.js";
import { contentEntryKey, contentEntryOwner, RESULT_WITH_REFS_FORMAT } from "../task/index.js";

/**
 * Finds the content entries of task results (`<key>.0`, `<key>.1`, … next to the envelope `<key>`) from their
 * envelope, so a listing shows them under their task entry instead of as rows of their own. Content entries whose
 * envelope is gone (or is not a task result with files) are not claimed, and are listed as entries.
 */
export class ContentEntries {
  private readonly found = new Map<string, EntryInfo[]>();

  constructor(private readonly store: Store) {}

  /** The content entries of `entry`, in order, when it is a task result with files; otherwise none. */
  of(entry: EntryInfo): EntryInfo[] {
    return entry.format === RESULT_WITH_REFS_FORMAT ? this.probe(entry.name, entry.key) : [];
  }

  /** True when `entry` is a content entry that its task entry's listing shows. */
  claimed(entry: EntryInfo): boolean {
    const owner = contentEntryOwner(entry.key);
    if (!owner) return false;
    const envelope = this.store.info(entry.name, owner.owner);
    if (envelope?.format !== RESULT_WITH_REFS_FORMAT) return false;
    return this.probe(entry.name, owner.owner).some((content) => content.key === entry.key);
  }

  /** Content entries `0, 1, …` of an envelope, up to the first one missing (reads the index; no use recorded). */
  private probe(name: string, key: string): EntryInfo[] {
    const id = `${name}\0${key}`;
    let entries = this.found.get(id);
    if (entries === undefined) {
      entries = [];
      for (let index = 0; ; index++) {
        const content = this.store.info(name, contentEntryKey(key, index));
        if (!content) break;
        entries.push(content);
      }
      this.found.set(id, entries);
    }
    return entries;
  }
}
