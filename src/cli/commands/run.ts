import { constants } from "node:os";
import { isAbsolute, relative, resolve, sep } from "node:path";
import { refreshes } from "../../config/index.js";
import { assertValidName } from "../../store/entry-name.js";
import type { CacheStore, KeyLock } from "../../store/index.js";
import { openStore } from "../../store/store.js";
import { contentEntryKey } from "../../task/content-entries.js";
import { storeOptions, type CommandContext } from "../context.js";
import { printData, printNote, type Output } from "../output.js";
import { UsageError } from "../usage-error.js";
import { RUN_LOG_FORMAT, decodeRunLog, type LogChunk } from "../run/run-log.js";
import { outputsStored, restoreOutputs, storeOutputs, type RunOutput } from "../run/run-outputs.js";
import type { CommandOutcome } from "../run/run-process.js";
import { alwaysRuns, readPackageCachetFields } from "../../sources/cache-keys.js";
import { cwdInPackage, defaultRunName, findPackage, runKey, type RunKeyComponents } from "./run-key.js";

/** Flags of `cachet run`. */
export interface RunFlags {
  name?: string | undefined;
  key?: string[] | undefined;
  env?: string[] | undefined;
  out?: string[] | undefined;
  dryRun?: boolean | undefined;
  /** commander turns `--no-serialize` into `serialize: false`. */
  serialize?: boolean | undefined;
}

/** The entry `<key>` of a run: written last, after the log (`<key>.0`) and the outputs (`<key>.1`, …). */
const RUN_RECORD_FORMAT = "cachet-run/1";

interface RunRecord {
  exitCode: number;
  outputs: RunOutput[];
}

/**
 * `cachet run [--name NAME] [--key SPEC]… [--env NAME]… [--out PATH]… [--dry-run] -- COMMAND [ARGS…]`: runs the
 * command once per key. A hit replays its output (same bytes, same streams, same order), restores its `--out`
 * paths and exits with its code; a miss runs it, tees and records its output, and stores it when it exits 0.
 * Concurrent identical runs wait for the first and replay it. A cache that cannot be used never stops the
 * command: it runs uncached, with one warning.
 */
export async function runRunCommand(context: CommandContext, command: string[], flags: RunFlags): Promise<number> {
  const cwd = process.cwd();
  const home = findPackage(cwd);
  const name = flags.name ?? defaultRunName(command, home);
  try {
    assertValidName(name);
  } catch (error) {
    throw new UsageError(`${(error as Error).message}${flags.name === undefined ? " (pass --name NAME)" : ""}`);
  }
  refuseOutsAroundWorkingDir(flags.out ?? [], cwd, context.root.path);
  const fields = home.dir === undefined ? undefined : readPackageCachetFields(home.dir);
  const run = new CachedRun(context, name, cwd, fields !== undefined && alwaysRuns(fields, name));
  try {
    // The store is opened first for the file-digest memo; a cache that cannot be used keys without it.
    const store = await run.openGuarded();
    const { key, components } = await runKey({
      command,
      cwdRelative: cwdInPackage(cwd, home),
      outs: flags.out ?? [],
      envNames: flags.env ?? [],
      keySpecs: flags.key ?? [],
      env: context.env,
      cwd,
      packageDir: home.dir,
      packageCacheKeys: fields?.cacheKeys,
      store,
    });
    run.keyed(key, components);
    if (flags.dryRun) return await run.dryRun();
    return await run.execute(flags.serialize !== false);
  } finally {
    await run.close();
  }
}

class CachedRun {
  private store: CacheStore | undefined;
  private broken = false;
  private key = "";
  private components!: RunKeyComponents;

  constructor(
    private readonly context: CommandContext,
    private readonly name: string,
    private readonly cwd: string,
    /** The package's `"cachet.alwaysRun"` names this run: it reruns every time. */
    private readonly alwaysRun: boolean,
  ) {}

  /** Sets the run's key, computed once the store (for the digest memo) is open. */
  keyed(key: string, components: RunKeyComponents): void {
    this.key = key;
    this.components = components;
  }

  /** The store, or undefined (with one warning) when the cache cannot be used. */
  openGuarded(): Promise<CacheStore | undefined> {
    return this.guard(() => this.open());
  }

  private get output(): Output {
    return this.context.output;
  }

  private get refresh(): boolean {
    return this.alwaysRun || refreshes(this.context.settings.refresh, this.name);
  }

  async execute(serialize: boolean): Promise<number> {
    if (!this.refresh) {
      const code = await this.replay();
      if (code !== undefined) return code;
    }
    const lock = serialize ? await this.guard(() => this.lock()) : undefined;
    try {
      if (lock !== undefined && !this.refresh) {
        const code = await this.replay();
        if (code !== undefined) return code;
      }
      // Loaded only on a miss: a hit never starts a process (child_process and its sockets stay unloaded).
      const { runCommand } = await import("../run/run-process.js");
      const outcome = await runCommand(this.components.command, this.output, !this.broken, this.context.env);
      const code = exitCodeOf(outcome);
      if (outcome.startError !== undefined) printNote(this.output, `error: ${outcome.startError}`);
      const log = outcome.log;
      if (code === 0 && outcome.interrupted === undefined && log !== undefined && log.dropped === undefined) await this.guard(() => this.save(outcome));
      else if (code === 0 && log?.dropped === "too large") printNote(this.output, `warning: ${this.name}: the output was too large to record; not cached`);
      return code;
    } finally {
      lock?.release();
    }
  }

  async dryRun(): Promise<number> {
    const store = await this.guard(() => this.open());
    if (store === undefined) {
      printData(this.output, `miss: ${this.name} would run: the cache cannot be used`);
      return 0;
    }
    if (this.refresh) {
      const why = this.alwaysRun ? `the package's "cachet.alwaysRun" names it` : "--refresh (or CACHET_REFRESH) names it";
      printData(this.output, `miss: ${this.name} would run: ${why}`);
      return 0;
    }
    const record = await this.guard(async () => ((await this.readRecord(store)) !== undefined ? true : undefined));
    if (record) {
      printData(this.output, `hit: ${this.name} would replay its output and restore its outputs (key ${this.key.slice(0, 12)}…)`);
      return 0;
    }
    const { describeRunKeyChanges, previousRunEntry } = await import("../run/run-explain.js");
    const previous = await this.guard(() => previousRunEntry(store, this.name, this.key));
    const changes = previous === undefined ? [] : describeRunKeyChanges(previous.components, this.components);
    if (previous === undefined) printData(this.output, `miss: ${this.name} would run: no entry of ${this.name} yet`);
    else if (changes.length === 0) printData(this.output, `miss: ${this.name} would run: its entry is gone or incomplete`);
    else {
      printData(this.output, `miss: ${this.name} would run: compared with its entry ${previous.key.slice(0, 12)}…`);
      for (const change of changes) printData(this.output, `  ${change}`);
    }
    return 0;
  }

  async close(): Promise<void> {
    const store = this.store;
    this.store = undefined;
    await store?.close().catch(() => {});
  }

  /** Replays a stored run and returns its exit code, or undefined on a miss. */
  private async replay(): Promise<number | undefined> {
    const store = await this.guard(() => this.open());
    if (store === undefined) return undefined;
    const found = await this.guard(async () => {
      const record = await this.readRecord(store);
      if (record === undefined || !(await outputsStored(store, this.name, this.key, record.outputs))) return undefined;
      const stored = await store.getValue(this.name, contentEntryKey(this.key, 0));
      const log = stored?.format === RUN_LOG_FORMAT ? decodeRunLog(stored.data) : undefined;
      if (log === undefined) return undefined;
      if (!(await restoreOutputs(store, this.name, this.key, record.outputs, this.cwd))) return undefined;
      return { record, log };
    });
    if (found === undefined) return undefined;
    await writeLog(this.output, found.log);
    return found.record.exitCode;
  }

  private async readRecord(store: CacheStore): Promise<RunRecord | undefined> {
    const stored = await store.getValue(this.name, this.key);
    if (stored === undefined || stored.format !== RUN_RECORD_FORMAT) return undefined;
    const record = JSON.parse(Buffer.from(stored.data).toString("utf8")) as RunRecord;
    return typeof record.exitCode === "number" && Array.isArray(record.outputs) ? record : undefined;
  }

  private async lock(): Promise<KeyLock | undefined> {
    const store = await this.open();
    return store.lockKey(this.name, this.key, {
      onWait: () => {
        if (this.output.stderr.isTTY) printNote(this.output, `cachet: another process is running ${this.name}; waiting to replay its result`);
      },
    });
  }

  private async save(outcome: CommandOutcome): Promise<void> {
    const store = await this.open();
    const started = Date.now();
    const outputs = await storeOutputs(store, this.name, this.key, this.components.outs, this.cwd);
    for (const output of outputs) {
      if (output.kind === "absent") printNote(this.output, `warning: ${this.name}: --out ${output.path} was not made by the command; a hit will remove it`);
    }
    await store.put(this.name, contentEntryKey(this.key, 0), outcome.log!.encode(), { origin: "computed", format: RUN_LOG_FORMAT });
    const record: RunRecord = { exitCode: 0, outputs };
    await store.put(this.name, this.key, JSON.stringify(record), {
      origin: "computed",
      format: RUN_RECORD_FORMAT,
      components: this.components,
      costMs: Date.now() - started,
    });
  }

  /**
   * The local cache, or the local cache in front of the shared tier when one is configured (a CI fleet replays
   * what one machine ran). The remote layer is loaded only then, so a local hit starts as lean as before.
   */
  private async open(): Promise<CacheStore> {
    if (this.store === undefined) {
      const options = storeOptions(this.context);
      const shared = this.context.settings.remote !== undefined && !this.context.root.temporary;
      this.store = shared ? await (await import("../../open-store.js")).openConfiguredStore(options, this.context.settings) : await openStore(options);
    }
    return this.store;
  }

  /**
   * Runs a cache step; any failure makes the cache unused for the rest of the run (the command still runs) and
   * is reported once, as one warning line.
   */
  private async guard<T>(step: () => Promise<T>): Promise<T | undefined> {
    if (this.broken) return undefined;
    try {
      return await step();
    } catch (error) {
      this.broken = true;
      const message = error instanceof Error ? error.message : String(error);
      printNote(this.output, `warning: the cache cannot be used for ${this.name} (${message.replace(/^cachet: /, "")}); running without it`);
      return undefined;
    }
  }
}

/**
 * A hit replaces each `--out` path whole, so one that is the working directory or holds it (`.`, `..`, the package
 * root from a subfolder) would swap out the folder the command runs in, deleting every file the key does not cover;
 * one that is or holds the cache root would store the cache into itself. Both are refused before anything runs.
 */
function refuseOutsAroundWorkingDir(outs: readonly string[], cwd: string, cacheRoot: string): void {
  for (const out of outs) {
    const full = resolve(cwd, out);
    if (holds(full, cwd)) throw new UsageError(`--out ${out} is the working directory or holds it: a hit would replace it whole; name the folders or files the command writes (--out dist)`);
    if (holds(full, resolve(cacheRoot))) throw new UsageError(`--out ${out} holds the cache root ${cacheRoot}; name the folders or files the command writes, or move the cache (--cache-dir)`);
  }
}

/** True when `path` is `inner` or one of its ancestors. */
function holds(path: string, inner: string): boolean {
  const fromPath = relative(path, inner);
  return fromPath === "" || (fromPath !== ".." && !fromPath.startsWith(`..${sep}`) && !isAbsolute(fromPath));
}

/** The exit code to pass on: the command's, 128 + the signal's number for a signal death, 127 if it never started. */
function exitCodeOf(outcome: CommandOutcome): number {
  if (outcome.startError !== undefined) return 127;
  if (outcome.code !== undefined) return outcome.code;
  const signal = outcome.signal ?? outcome.interrupted ?? "SIGTERM";
  return 128 + (signalNumber(signal) ?? 15);
}

function signalNumber(signal: NodeJS.Signals): number | undefined {
  return (constants.signals as Partial<Record<NodeJS.Signals, number>>)[signal];
}

/**
 * Writes the recorded chunks in order, each to its stream, waiting when a stream is backed up. A stream whose reader
 * went away (`| head -1`) gets nothing more; the others still get theirs.
 */
async function writeLog(output: Output, chunks: readonly LogChunk[]): Promise<void> {
  const closed = new Set<NodeJS.WritableStream>();
  const listeners = [output.stdout, output.stderr].map((target) => {
    const onError = (): void => {
      closed.add(target);
      target.emit("drain");
    };
    target.on("error", onError);
    return () => target.removeListener("error", onError);
  });
  try {
    for (const chunk of chunks) {
      const target = chunk.stream === 1 ? output.stdout : output.stderr;
      if (closed.has(target)) continue;
      if (!target.write(chunk.data)) await new Promise<void>((resolve) => target.once("drain", resolve));
    }
  } finally {
    for (const remove of listeners) remove();
  }
}
