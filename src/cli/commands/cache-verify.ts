import { verifyStore, formatBytes } from "../../store/index.js";
import { openExistingStore, type CommandContext } from "../context.js";
import { printData, printNote, plural } from "../output.js";
import { progressReporter } from "../progress.js";

/** `cachet cache verify`: checks every entry against its digest, drops the bad ones; exit 1 if any were bad. */
export async function cacheVerifyCommand(context: CommandContext, flags: { json?: boolean }): Promise<number> {
  const store = await openExistingStore(context);
  if (!store) return 0;
  const reporter = progressReporter(context.settings.progress, "Verifying", context.output.stderr);
  try {
    const result = await verifyStore(store, { reporter });
    if (flags.json) {
      printData(context.output, JSON.stringify({ checked: result.checked, ok: result.tally.entries, bytes: result.tally.bytes, bad: result.bad }));
    } else {
      for (const bad of result.bad) printNote(context.output, `Dropped ${bad.name}/${bad.key}: ${bad.reason}`);
      printNote(
        context.output,
        `Checked ${plural(result.checked, "entry", "entries")} (${formatBytes(result.tally.bytes)} ok): ` +
          (result.bad.length === 0 ? "all intact" : `${plural(result.bad.length, "bad entry", "bad entries")} dropped`),
      );
    }
    return result.bad.length === 0 ? 0 : 1;
  } finally {
    reporter.stop();
    await store.close();
  }
}
