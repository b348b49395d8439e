import { basename, dirname, join, relative } from "node:path";
import { parseDuration, parseSize } from "../../config/index.js";
import { pruneCache, type PruneItem } from "../../store/index.js";
import { commandRoot, storeOptions, type CommandContext } from "../context.js";
import { formatBytes, shortEntryKey, shortKey } from "../format.js";
import { printData, printNote, removalSummary } from "../output.js";
import { progressReporter } from "../progress.js";
import { TableWriter } from "../table.js";
import { UsageError } from "../usage-error.js";

export interface PruneFlags {
  ci?: boolean;
  maxAge?: string;
  maxSize?: string;
  dryRun?: boolean;
  json?: boolean;
}

/** `--max-age` and `--max-size` read (a value that is not a duration or size is a usage error). */
export function pruneLimits(flags: PruneFlags): { maxAgeMs: number | undefined; maxSizeBytes: number | undefined } {
  const maxAgeMs = flags.maxAge === undefined ? undefined : parseDuration(flags.maxAge);
  if (flags.maxAge !== undefined && maxAgeMs === undefined) {
    throw new UsageError(`--max-age ${JSON.stringify(flags.maxAge)} is not a duration (try 30d, 12h, 90m)`);
  }
  const maxSizeBytes = flags.maxSize === undefined ? undefined : parseSize(flags.maxSize);
  if (flags.maxSize !== undefined && maxSizeBytes === undefined) {
    throw new UsageError(`--max-size ${JSON.stringify(flags.maxSize)} is not a size (try 500MiB, 2GiB, 1000000)`);
  }
  return { maxAgeMs, maxSizeBytes };
}

/**
 * `cachet cache prune`: removes unused content, and downloaded / old / least-recently-used entries when asked.
 * With `--dry-run` it lists what would go (a table on stdout, or the `items` of `--json`) and removes nothing.
 */
export async function cachePruneCommand(context: CommandContext, flags: PruneFlags): Promise<number> {
  const { maxAgeMs, maxSizeBytes } = pruneLimits(flags);
  const root = commandRoot(context);
  const reporter = progressReporter(context.progress, flags.dryRun ? "Checking" : "Pruning", context.output.stderr);
  const terminal = context.output.stdout.isTTY === true;
  const items: PruneItem[] = [];
  const listing = flags.dryRun && !flags.json ? new TableWriter(context.output.stdout, terminal, ["WHAT", "ITEM", "SIZE", "WHY"], ["left", "left", "right"]) : undefined;
  const onItem = flags.json
    ? (item: PruneItem) => items.push(item)
    : listing
      ? (item: PruneItem) => listing.row(itemRow(item, root, terminal))
      : undefined;
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
      onItem,
    });
    reporter.stop();
    listing?.end();
    if (flags.json) {
      const { root, found, dryRun, unknownBuckets, tally } = result;
      printData(context.output, JSON.stringify({ root, found, dryRun, unknownBuckets, removed: tally, items }));
    }
    if (!result.found) {
      printNote(context.output, `No cache found at: ${result.root}`);
      return 0;
    }
    if (!flags.dryRun) {
      for (const bucket of result.unknownBuckets) printNote(context.output, `Removed bucket of an unknown version: ${bucket}`);
    }
    const { tally } = result;
    if (tally.entries === 0 && tally.files === 0 && tally.directories === 0) printNote(context.output, "No unused entries found");
    else printNote(context.output, removalSummary(flags.dryRun ? "Would remove" : "Removed", tally));
    return 0;
  } finally {
    reporter.stop();
  }
}

const CONTENT_REASONS: Record<Exclude<PruneItem["kind"], "entry">, string> = {
  bucket: "a bucket of a version this cachet does not know",
  staging: "left by an interrupted write",
  lock: "per-key lock files",
  blob: "no entry refers to it",
  tree: "no entry refers to it",
  git: "a git repository database no entry uses",
  stamp: "a restore stamp whose folder is gone or whose tree no entry holds",
};

const ENTRY_REASONS = {
  ci: "downloaded (--ci)",
  "max-age": "not used within --max-age",
  "max-size": "least recently used beyond --max-size",
} as const;

/** One line of the dry-run listing: what, which, how big, why. */
function itemRow(item: PruneItem, root: string, terminal: boolean): string[] {
  if (item.kind === "entry") {
    return ["entry", `${item.name}/${terminal ? shortEntryKey(item.key) : item.key}`, formatBytes(item.size), ENTRY_REASONS[item.reason]];
  }
  const path = relative(root, item.path);
  // On a terminal, blob and tree digests are shortened like keys: `blobs-v1/87/fa/87fab3984f35…`.
  const shown = terminal ? join(dirname(path), shortKey(basename(path))) : path;
  return [item.kind, shown, formatBytes(item.bytes), CONTENT_REASONS[item.kind]];
}
