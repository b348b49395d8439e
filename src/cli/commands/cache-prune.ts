import { parseDuration, parseSize } from "../../config/index.js";
import { pruneCache } from "../../store/index.js";
import { commandRoot, storeOptions, type CommandContext } from "../context.js";
import { printData, printNote, removalSummary } from "../output.js";
import { progressReporter } from "../progress.js";
import { UsageError } from "../usage-error.js";

export interface PruneFlags {
  ci?: boolean;
  maxAge?: string;
  maxSize?: string;
  dryRun?: boolean;
  json?: boolean;
}

/** `cachet cache prune`: removes unused content, and downloaded / old / least-recently-used entries when asked. */
export async function cachePruneCommand(context: CommandContext, flags: PruneFlags): Promise<number> {
  const maxAgeMs = flags.maxAge === undefined ? undefined : parseDuration(flags.maxAge);
  if (flags.maxAge !== undefined && maxAgeMs === undefined) {
    throw new UsageError(`--max-age ${JSON.stringify(flags.maxAge)} is not a duration (try 30d, 12h, 90m)`);
  }
  const maxSizeBytes = flags.maxSize === undefined ? undefined : parseSize(flags.maxSize);
  if (flags.maxSize !== undefined && maxSizeBytes === undefined) {
    throw new UsageError(`--max-size ${JSON.stringify(flags.maxSize)} is not a size (try 500MiB, 2GiB, 1000000)`);
  }
  const root = commandRoot(context);
  const reporter = progressReporter(context.progress, "Pruning", context.output.stderr);
  printNote(context.output, `${flags.dryRun ? "Checking" : "Pruning"} cache at: ${root}`);
  try {
    const result = await pruneCache({
      ...storeOptions(context),
      force: context.force,
      ci: flags.ci,
      maxAgeMs,
      maxSizeBytes,
      dryRun: flags.dryRun,
      reporter,
    });
    if (flags.json) {
      const { root, found, dryRun, unknownBuckets, tally } = result;
      printData(context.output, JSON.stringify({ root, found, dryRun, unknownBuckets, removed: tally }));
    }
    if (!result.found) {
      printNote(context.output, `No cache found at: ${result.root}`);
      return 0;
    }
    for (const bucket of result.unknownBuckets) {
      printNote(context.output, `${flags.dryRun ? "Would remove" : "Removed"} bucket of an unknown version: ${bucket}`);
    }
    const { tally } = result;
    if (tally.entries === 0 && tally.files === 0 && tally.directories === 0) printNote(context.output, "No unused entries found");
    else printNote(context.output, removalSummary(flags.dryRun ? "Would remove" : "Removed", tally));
    return 0;
  } finally {
    reporter.stop();
  }
}
