import type { IndexReplacement } from "./index-recovery.js";
import type { StoreWarning } from "./link-out.js";

/** The warning for an index found damaged and replaced by a fresh one. */
export function replacedIndexWarning(replacement: IndexReplacement): StoreWarning {
  const kept = replacement.keptAs
    ? `it was moved to ${replacement.keptAs} and a fresh index started`
    : "another process already replaced it with a fresh index";
  return {
    code: "CACHET_INDEX_REPLACED",
    message:
      `cachet: the cache index ${replacement.file} is damaged (${replacement.reason}); ${kept}. Earlier entries are ` +
      "misses until `cachet cache verify --repair` recovers what it can.",
  };
}
