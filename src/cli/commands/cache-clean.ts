import { assertValidName, cleanCache } from "../../store/index.js";
import { commandRoot, storeOptions, type CommandContext } from "../context.js";
import { printData, printNote, removalSummary } from "../output.js";
import { progressReporter } from "../progress.js";

/** `cachet cache clean [NAME...]`: removes everything, or the entries of the given names. */
export async function cacheCleanCommand(context: CommandContext, names: string[], flags: { json?: boolean } = {}): Promise<number> {
  for (const name of names) assertValidName(name); // before a name is printed: a bad one is its own one-line error
  const root = commandRoot(context);
  const reporter = progressReporter(context.progress, "Removing", context.output.stderr);
  const what = names.length === 0 ? "cache" : `entries of ${names.join(", ")} in cache`;
  printNote(context.output, `Clearing ${what} at: ${root}`);
  try {
    const result = await cleanCache({ ...storeOptions(context), force: context.force, names, reporter });
    reporter.stop();
    if (flags.json) {
      const { root, found, tally, entriesByName } = result;
      printData(context.output, JSON.stringify({ root, found, removed: tally, ...(entriesByName && { entriesByName }) }));
    }
    if (!result.found) {
      printNote(context.output, `No cache found at: ${result.root}`);
      return 0;
    }
    const counts = result.entriesByName;
    const missing = counts ? Object.keys(counts).filter((name) => counts[name] === 0) : [];
    if (missing.length > 0) printNote(context.output, `No entries found for: ${missing.join(", ")}`);
    // A clean of names none of which had entries has nothing else to say.
    if (!counts || missing.length < Object.keys(counts).length) printNote(context.output, removalSummary("Removed", result.tally));
    return 0;
  } finally {
    reporter.stop();
  }
}
