import { formatBytes, measureCache } from "../../store/index.js";
import type { CommandContext } from "../context.js";
import { printData } from "../output.js";
import { progressReporter } from "../progress.js";

/** `cachet cache size [-H]`: bytes on disk (human units with -H or on a terminal). */
export async function cacheSizeCommand(context: CommandContext, flags: { human?: boolean }): Promise<number> {
  const reporter = progressReporter(context.settings.progress, "Measuring", context.output.stderr);
  try {
    const result = await measureCache({ cacheDir: context.settings.cacheDir, noCache: context.settings.noCache, env: context.env, reporter });
    const human = flags.human ?? context.output.stdout.isTTY === true;
    printData(context.output, human ? formatBytes(result.tally.bytes) : String(result.tally.bytes));
    return 0;
  } finally {
    reporter.stop();
  }
}
