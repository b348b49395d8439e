import { Command, CommanderError, Option } from "commander";
import { createRequire } from "node:module";
import { commandContext, type CommandContext, type ContextOptions, type GlobalFlags } from "./context.js";
import { settingsHelp, subcommandsHelp } from "./help-text.js";
import { processOutput, type Output } from "./output.js";
import type { PruneFlags } from "./commands/cache-prune.js";
import type { RunFlags } from "./commands/run.js";
import { UsageError } from "./usage-error.js";

const { version } = createRequire(import.meta.url)("../../package.json") as { version: string };

/**
 * Builds the `cachet` command tree. `run` receives the exit code of the command that ran; `argv` is what will be
 * parsed (`cachet run` checks its command came after `--`).
 */
export function buildProgram(output: Output, env: NodeJS.ProcessEnv, run: (code: number) => void, argv: readonly string[] = []): Command {
  const program = new Command("cachet")
    .description("Durable, versioned, concurrency-safe caching: task results and sources, on a local store.")
    .version(version, "-V, --version", "print the version")
    .helpOption("-h, --help", "show help")
    .addOption(new Option("--cache-dir <dir>", "cache root (env CACHET_CACHE_DIR)"))
    .addOption(new Option("--no-cache", "use a temporary cache for this process only, removed at exit"))
    .addOption(new Option("--force", "do not wait for other processes using the cache (clean, prune)"))
    .addOption(new Option("--remote [url]", "the shared cache on PostgreSQL (env CACHET_REMOTE); cache ls, size, clean, prune and verify act on it, push sends to it"))
    .addOption(new Option("--remote-read-only", "read the shared cache but never write to it (env CACHET_REMOTE_WRITE=0)"))
    .addOption(new Option("--offline", "sources serve what is stored and never open a connection (env CACHET_OFFLINE)"))
    .addOption(new Option("--refresh", "rerun or revalidate every entry instead of using it (env CACHET_REFRESH)"))
    .addOption(
      new Option("--refresh-package <name>", "rerun or revalidate only the entries of NAME (repeatable)").argParser(collect),
    )
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (text) => output.stdout.write(text),
      writeErr: (text) => output.stderr.write(text),
      outputError: () => {},
    });

  const contextOf = (command: Command, options?: ContextOptions): CommandContext => {
    const flags = command.optsWithGlobals() as GlobalFlags;
    return commandContext(flags, output, env, process.cwd(), options);
  };
  const action =
    <A extends unknown[]>(fn: (context: CommandContext, ...args: A) => Promise<number>, options?: ContextOptions) =>
    async (...args: unknown[]): Promise<void> => {
      const command = args[args.length - 1] as Command;
      run(await fn(contextOf(command, options), ...(args.slice(0, -1) as A)));
    };

  // Each command's module is loaded when it runs, so `cachet run` starts without loading what it does not use.
  const cache = program.command("cache").description("inspect and manage the cache directory").exitOverride();
  cache.command("dir").description("print the cache root").action(action(async (context) => (await import("./commands/cache-dir.js")).cacheDirCommand(context)));
  cache
    .command("clean")
    .description("remove everything, or only the entries of the given names")
    .argument("[names...]", "entry names (task or source names)")
    .option("--json", "also print what was removed as JSON on stdout")
    .action(
      action((context, names: string[], flags: { json?: boolean }) =>
        context.remote
          ? import("./commands/cache-remote.js").then((r) => r.remoteCleanCommand(context, names, flags))
          : import("./commands/cache-clean.js").then((m) => m.cacheCleanCommand(context, names, flags)),
      ),
    );
  cache
    .command("prune")
    .description("remove unused content; with flags, also downloaded, old or least-recently-used entries")
    .option("--ci", "also remove downloaded entries (git checkouts and databases among them), keep computed ones (run at the end of a CI job)")
    .option("--max-age <duration>", "also remove entries not used within DURATION (e.g. 30d, 12h)")
    .option("--max-size <size>", "also remove least-recently-used entries until the cache fits SIZE (e.g. 2GiB)")
    .option("--dry-run", "list what would be removed, and remove nothing")
    .option("--json", "also print what was removed as JSON on stdout")
    .action(
      action((context, flags: PruneFlags) =>
        context.remote
          ? Promise.all([import("./commands/cache-remote.js"), import("./commands/cache-prune.js")]).then(([r, m]) => r.remotePruneCommand(context, m.pruneLimits(flags), flags))
          : import("./commands/cache-prune.js").then((m) => m.cachePruneCommand(context, flags)),
      ),
    );
  cache
    .command("size")
    .description("print the cache's size in bytes")
    .option("-H, --human", "human-readable units (default on a terminal)")
    .option("--json", "machine-readable output (bytes, files, directories)")
    .action(
      action((context, flags: { human?: boolean; json?: boolean }) =>
        context.remote
          ? import("./commands/cache-remote.js").then((r) => r.remoteSizeCommand(context, flags))
          : import("./commands/cache-size.js").then((m) => m.cacheSizeCommand(context, flags)),
      ),
    );
  cache
    .command("ls")
    .description("list entries with name, key, size, origin, age and last use (a task result's files under it)")
    .argument("[name]", "only entries of this name")
    .option("--json", "machine-readable output")
    .action(
      action((context, name: string | undefined, flags: { json?: boolean }) =>
        context.remote
          ? import("./commands/cache-remote.js").then((r) => r.remoteLsCommand(context, name, flags))
          : import("./commands/cache-ls.js").then((m) => m.cacheLsCommand(context, name, flags)),
      ),
    );
  cache
    .command("verify")
    .description("check the index and every entry against its digest, and drop the bad ones")
    .option("--repair", "replace a damaged index and put back the entries of damaged index copies that verify")
    .option("--json", "machine-readable output")
    .action(
      action((context, flags: { json?: boolean; repair?: boolean }) =>
        context.remote
          ? import("./commands/cache-remote.js").then((r) => r.remoteVerifyCommand(context, flags))
          : import("./commands/cache-verify.js").then((m) => m.cacheVerifyCommand(context, flags)),
      ),
    );

  cache
    .command("push")
    .description("send the local entries the shared cache (--remote, CACHET_REMOTE) lacks, e.g. uploads dropped while it was down")
    .argument("[names...]", "only entries of these names")
    .option("--dry-run", "list what would be sent, and send nothing")
    .option("--json", "also print the counts as JSON on stdout")
    .action(action((context, names: string[], flags: { dryRun?: boolean; json?: boolean }) => import("./commands/cache-remote.js").then((r) => r.remotePushCommand(context, names, flags))));

  cache
    .command("explain")
    .description("show what a task's entry (or a git source's checkout) was keyed on and how it differs from the name's most recently used other entry")
    .argument("<name>", "task or source name")
    .argument("[key]", "entry key, or a unique start of it as `cache ls` shows it (default: the most recently used entry)")
    .option("--json", "machine-readable output")
    .action(action((context, name: string, key: string | undefined, flags: { json?: boolean }) => import("./commands/cache-explain.js").then((m) => m.cacheExplainCommand(context, name, key, flags))));

  program
    .command("run")
    .description("run a command once per key: replay its output and restore its --out paths on a hit")
    .usage("[options] -- <command> [args...]")
    .argument("<command...>", "the command and its arguments, after --")
    .option("--name <name>", "entry name (default: the package name and the command's first word, e.g. my-pkg:tsc)")
    .addOption(new Option("--key <spec>", "also key on what SPEC reads: a path or glob, file:PATH, dir:PATH, git, git:tags, env:NAME (repeatable)").argParser(collect))
    .addOption(new Option("--env <name>", "also key on the variable NAME (set, empty and unset differ; repeatable)").argParser(collect))
    .addOption(new Option("--out <path>", "a file or directory the command makes, stored and restored (repeatable)").argParser(collect))
    .option("--dry-run", "say whether it would hit or run, and why, without running it")
    .option("--serialize", "wait for an identical run in another process and replay it (the default)")
    .option("--no-serialize", "do not wait for an identical run in another process")
    .action(
      action(async (context, command: string[], flags: RunFlags) => {
        const { runRunCommand } = await import("./commands/run.js");
        requireSeparator(argv, command);
        return runRunCommand(context, command, flags);
      }, { cacheOptional: true }),
    );

  for (const command of [program, cache, ...program.commands.filter((command) => command !== cache), ...cache.commands]) {
    command.exitOverride().configureOutput(program.configureOutput());
    command.showSuggestionAfterError(true);
    command.configureHelp({ showGlobalOptions: true });
  }
  // `cachet` and `cachet --help` list every command and every setting; `cachet cache` lists its commands.
  program.addHelpText("after", () => `\n${subcommandsHelp(cache)}\n\n${settingsHelp()}\n`);
  return program;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** `cachet run` takes its command after `--`, so the command's own flags are never read as cachet's. */
function requireSeparator(rawArgs: readonly string[], command: readonly string[]): void {
  const at = rawArgs.indexOf("--");
  if (at < 0 || rawArgs.length - at - 1 !== command.length) {
    throw new UsageError(`cachet run takes its command after --, as in: cachet run --out dist -- ${command.join(" ") || "tsc -p ."}`);
  }
}

/** Parses argv and runs the command; resolves to the process exit code. */
export async function runCli(argv: string[], output: Output = processOutput, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let code = 0;
  const program = buildProgram(
    output,
    env,
    (exitCode) => {
      code = exitCode;
    },
    argv,
  );
  try {
    await program.parseAsync(argv, { from: "user" });
    return code;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === "commander.helpDisplayed" || error.code === "commander.version" || error.exitCode === 0) return 0;
      // A missing command: commander has printed the help to stderr; that is a usage error.
      if (error.code === "commander.help") return 2;
      const message = error.message.replace(/^error: /, "").replace(/\s*\n\s*/g, " ").trim();
      throw new UsageError(`${message} (see cachet --help)`);
    }
    throw error;
  }
}
