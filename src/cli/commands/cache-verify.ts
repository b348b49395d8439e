import { verifyStore } from "../../store/index.js";
import { openExistingStore, type CommandContext } from "../context.js";
import { formatBytes, plural } from "../format.js";
import { printData, printNote } from "../output.js";
import { progressReporter } from "../progress.js";

/**
 * `cachet cache verify [--repair]`: checks the index file and every entry against its digest, drops the bad
 * entries; with `--repair` also rebuilds what it can from damaged index copies. Exit 1 if anything was bad
 * (damaged copies waiting for `--repair` are reported, not failed).
 */
export async function cacheVerifyCommand(context: CommandContext, flags: { json?: boolean; repair?: boolean }): Promise<number> {
  const store = await openExistingStore(context);
  if (!store) return 0;
  const reporter = progressReporter(context.progress, "Verifying", context.output.stderr);
  try {
    const result = await verifyStore(store, { reporter, repair: flags.repair ?? false });
    reporter.stop();
    if (flags.json) {
      printData(
        context.output,
        JSON.stringify({
          checked: result.checked,
          ok: result.tally.entries,
          bytes: result.tally.bytes,
          bad: result.bad,
          indexProblems: result.indexProblems,
          damagedIndexes: result.damagedIndexes,
          recovered: result.recovered,
        }),
      );
    } else {
      for (const problem of result.indexProblems.slice(0, 5)) printNote(context.output, `Index problem: ${problem}`);
      for (const copy of result.recovered) {
        printNote(context.output, `Recovered ${plural(copy.recovered, "entry", "entries")} of ${copy.readable} readable from ${copy.file}`);
      }
      if (!flags.repair && result.damagedIndexes.length > 0) {
        printNote(
          context.output,
          `${plural(result.damagedIndexes.length, "damaged index copy waits", "damaged index copies wait")} ` +
            `(${result.damagedIndexes.join(", ")}): run \`cachet cache verify --repair\` to recover their entries`,
        );
      }
      for (const bad of result.bad) printNote(context.output, `Dropped ${bad.name}/${bad.key}: ${bad.reason}`);
      printNote(
        context.output,
        `Checked ${plural(result.checked, "entry", "entries")} (${formatBytes(result.tally.bytes)} ok): ` +
          (result.bad.length === 0 ? "all intact" : `${plural(result.bad.length, "bad entry", "bad entries")} dropped`),
      );
    }
    const indexBad = result.indexProblems.length > 0 && !flags.repair;
    return result.bad.length === 0 && !indexBad ? 0 : 1;
  } finally {
    reporter.stop();
    await store.close();
  }
}
