import { measureCache } from "../../store/index.js";
import type { CommandContext } from "../context.js";
import { formatBytes } from "../format.js";
import { printData } from "../output.js";
import { progressReporter } from "../progress.js";

/** `cachet cache size [-H]`: bytes on disk (human units with -H or on a terminal). */
export async function cacheSizeCommand(context: CommandContext, flags: { human?: boolean; json?: boolean }): Promise<number> {
  const reporter = progressReporter(context.progress, "Measuring", context.output.stderr);
  try {
    const result = await measureCache({ cacheDir: context.root.path, reporter });
    if (flags.json) {
      const { files, directories, bytes } = result.tally;
      printData(context.output, JSON.stringify({ root: result.root, found: result.found, bytes, files, directories }));
      return 0;
    }
    const human = flags.human ?? context.output.stdout.isTTY === true;
    printData(context.output, human ? formatBytes(result.tally.bytes) : String(result.tally.bytes));
    return 0;
  } finally {
    reporter.stop();
  }
}
