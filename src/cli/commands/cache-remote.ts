import { openRemoteStore, pushToRemote, remoteOptionsFromSettings, type RemoteRemoval, type RemoteStore } from "../../remote/index.js";
import { assertValidName } from "../../store/index.js";
import { openExistingStore, type CommandContext } from "../context.js";
import { formatAge, formatBytes, plural, shortEntryKey } from "../format.js";
import { printData, printNote } from "../output.js";
import { TableWriter } from "../table.js";
import { UsageError } from "../usage-error.js";

/** `cachet cache … --remote`: the same commands on the shared tier (`--remote URL`, `CACHET_REMOTE`, package.json). */
async function withRemote(context: CommandContext, work: (store: RemoteStore) => Promise<number>): Promise<number> {
  const options = remoteOptionsFromSettings(context.settings);
  if (options === undefined) {
    throw new UsageError('--remote needs a URL (--remote postgres://…), or CACHET_REMOTE or package.json "cachet.remote" set');
  }
  const store = await openRemoteStore({ ...options, onWarning: context.onWarning });
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}

/**
 * `cachet cache ls --remote [NAME]`. A value's size is its bytes, as in the local listing. A tree is kept in the
 * shared tier as one archive, whose size is all the remote knows (the files' total is known only once unpacked):
 * its row says so (`4.0MiB archive`; JSON `size: null` and `archiveSize`), never passing it off as the local size.
 */
export function remoteLsCommand(context: CommandContext, name: string | undefined, flags: { json?: boolean }): Promise<number> {
  return withRemote(context, async (store) => {
    const out = context.output.stdout;
    const terminal = out.isTTY === true;
    const table = flags.json ? undefined : new TableWriter(out, terminal, ["NAME", "KEY", "SIZE", "ORIGIN", "AGE", "LAST USE"], ["left", "left", "right"]);
    const items: unknown[] = [];
    const now = Date.now();
    for await (const entry of store.list(name)) {
      if (flags.json) {
        const size = entry.storage === "tree" ? { size: null, archiveSize: entry.size } : { size: entry.size };
        items.push({ ...entry, ...size, format: entry.format ?? null, createdAt: entry.createdAt.toISOString(), lastUsedAt: entry.lastUsedAt.toISOString() });
      } else {
        table!.row([
          entry.name,
          terminal ? shortEntryKey(entry.key) : entry.key,
          entry.storage === "tree" ? `${formatBytes(entry.size)} archive` : formatBytes(entry.size),
          entry.origin,
          formatAge(now - entry.createdAt.getTime()),
          formatAge(now - entry.lastUsedAt.getTime(), " ago"),
        ]);
      }
    }
    if (flags.json) printData(context.output, JSON.stringify(items));
    else {
      table!.end();
      if (table!.size === 0) printNote(context.output, name === undefined ? `No entries in ${store.root}` : `No entries for ${name} in ${store.root}`);
    }
    return 0;
  });
}

/** `cachet cache size --remote`. */
export function remoteSizeCommand(context: CommandContext, flags: { human?: boolean; json?: boolean }): Promise<number> {
  return withRemote(context, async (store) => {
    const size = await store.size();
    if (flags.json) printData(context.output, JSON.stringify({ remote: store.root, ...size }));
    else printData(context.output, (flags.human ?? context.output.stdout.isTTY === true) ? formatBytes(size.bytes) : String(size.bytes));
    return 0;
  });
}

/** `cachet cache clean --remote [NAME...]`. */
export function remoteCleanCommand(context: CommandContext, names: string[], flags: { json?: boolean }): Promise<number> {
  for (const name of names) assertValidName(name);
  return withRemote(context, async (store) => {
    printNote(context.output, `Clearing ${names.length === 0 ? "the shared cache" : `entries of ${names.join(", ")} in the shared cache`} at: ${store.root}`);
    const removed = await store.clean(names);
    report(context, removed, flags);
    return 0;
  });
}

/** `cachet cache prune --remote [--max-age D] [--max-size S] [--dry-run]`: a dry run counts what would go and removes nothing. */
export function remotePruneCommand(
  context: CommandContext,
  options: { maxAgeMs?: number | undefined; maxSizeBytes?: number | undefined },
  flags: { json?: boolean; dryRun?: boolean; ci?: boolean },
): Promise<number> {
  // --ci's rule (drop downloads, keep computed results) is the local cache's; ignoring it would prune other than asked.
  if (flags.ci === true) throw new UsageError("--ci prunes the local cache only; with --remote use --max-age or --max-size");
  const dryRun = flags.dryRun === true;
  return withRemote(context, async (store) => {
    printNote(context.output, `${dryRun ? "Checking" : "Pruning"} the shared cache at: ${store.root}`);
    report(context, await store.prune({ ...options, dryRun }), flags, dryRun);
    return 0;
  });
}

/** `cachet cache verify --remote`: exit code 1 when entries had to be removed. */
export function remoteVerifyCommand(context: CommandContext, flags: { json?: boolean }): Promise<number> {
  return withRemote(context, async (store) => {
    const result = await store.verify();
    if (flags.json) printData(context.output, JSON.stringify({ remote: store.root, ...result }));
    for (const bad of result.bad) printNote(context.output, `removed ${bad.name}/${bad.key}: ${bad.reason}`);
    printNote(context.output, `Checked ${plural(result.entries, "inline value", "inline values")} and ${plural(result.blobs, "blob", "blobs")} in ${store.root}: ${result.bad.length === 0 ? "all good" : `${plural(result.bad.length, "entry", "entries")} removed`}`);
    return result.bad.length === 0 ? 0 : 1;
  });
}

/**
 * `cachet cache push [NAME...] [--dry-run]`: sends the local entries the shared cache lacks (uploads dropped while
 * it was down or slow), most recently used first. The file-stat memo of cache keys stays local.
 */
export function remotePushCommand(context: CommandContext, names: string[], flags: { dryRun?: boolean; json?: boolean }): Promise<number> {
  for (const name of names) assertValidName(name);
  return withRemote(context, async (remote) => {
    if (!remote.writable) throw new UsageError(`the shared cache ${remote.root} is read-only here (--remote-read-only or CACHET_REMOTE_WRITE=0): nothing can be pushed`);
    const local = await openExistingStore(context);
    if (local === undefined) return 0;
    try {
      const verb = flags.dryRun ? "would push" : "pushed";
      const result = await pushToRemote(local, remote, {
        names,
        dryRun: flags.dryRun,
        onEntry: (entry, outcome) => {
          if (outcome.kind === "pushed") printNote(context.output, `${verb} ${entry.name} ${entry.key} (${formatBytes(entry.size)})`);
          else if (outcome.kind === "skipped") printNote(context.output, `skipped ${entry.name} ${entry.key}: ${outcome.reason}`);
        },
      });
      if (flags.json) printData(context.output, JSON.stringify({ remote: remote.root, dryRun: flags.dryRun === true, ...result }));
      printNote(
        context.output,
        `${flags.dryRun ? "Would push" : "Pushed"} ${plural(result.pushed, "entry", "entries")} (${formatBytes(result.bytes)}) to ${remote.root}; ` +
          `${plural(result.present, "entry was", "entries were")} there already` +
          (result.skipped > 0 ? `; ${plural(result.skipped, "local entry", "local entries")} skipped (damaged, or removed or replaced meanwhile)` : ""),
      );
      return 0;
    } finally {
      await local.close();
    }
  });
}

function report(context: CommandContext, removed: RemoteRemoval, flags: { json?: boolean }, dryRun = false): void {
  if (flags.json) printData(context.output, JSON.stringify({ dryRun, removed }));
  printNote(
    context.output,
    `${dryRun ? "Would remove" : "Removed"} ${plural(removed.entries, "entry", "entries")}, ${plural(removed.blobs, "blob", "blobs")} (${formatBytes(removed.bytes)})` +
      (removed.leases > 0 ? ` and ${plural(removed.leases, "expired lease", "expired leases")}` : ""),
  );
}
