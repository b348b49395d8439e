import { Command, CommanderError, Option } from "commander";
import { createRequire } from "node:module";
import { commandContext, type CommandContext, type GlobalFlags } from "./context.js";
import { settingsHelp, subcommandsHelp } from "./help-text.js";
import { processOutput, type Output } from "./output.js";
import { cacheCleanCommand } from "./commands/cache-clean.js";
import { cacheDirCommand } from "./commands/cache-dir.js";
import { cacheExplainCommand } from "./commands/cache-explain.js";
import { cacheLsCommand } from "./commands/cache-ls.js";
import { cachePruneCommand, pruneLimits, type PruneFlags } from "./commands/cache-prune.js";
import { cacheSizeCommand } from "./commands/cache-size.js";
import { cacheVerifyCommand } from "./commands/cache-verify.js";
import { UsageError } from "./usage-error.js";
import { remoteCleanCommand, remoteLsCommand, remotePruneCommand, remoteSizeCommand, remoteVerifyCommand } from "./commands/cache-remote.js";

const { version } = createRequire(import.meta.url)("../../package.json") as { version: string };

/** Builds the `cachet` command tree. `run` receives the exit code of the command that ran. */
export function buildProgram(output: Output, env: NodeJS.ProcessEnv, run: (code: number) => void): Command {
  const program = new Command("cachet")
    .description("Durable, versioned, concurrency-safe caching: task results and sources, on a local store.")
    .version(version, "-V, --version", "print the version")
    .helpOption("-h, --help", "show help")
    .addOption(new Option("--cache-dir <dir>", "cache root (env CACHET_CACHE_DIR)"))
    .addOption(new Option("--no-cache", "use a temporary cache for this process only, removed at exit"))
    .addOption(new Option("--force", "do not wait for other processes using the cache (clean, prune)"))
    .addOption(new Option("--remote [url]", "the shared cache on PostgreSQL (env CACHET_REMOTE); cache ls, size, clean, prune and verify act on it"))
    .addOption(new Option("--remote-read-only", "read the shared cache but never write to it (env CACHET_REMOTE_WRITE=0)"))
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (text) => output.stdout.write(text),
      writeErr: (text) => output.stderr.write(text),
      outputError: () => {},
    });

  const contextOf = (command: Command): CommandContext => {
    const flags = command.optsWithGlobals() as GlobalFlags;
    return commandContext(flags, output, env);
  };
  const action =
    <A extends unknown[]>(fn: (context: CommandContext, ...args: A) => Promise<number>) =>
    async (...args: unknown[]): Promise<void> => {
      const command = args[args.length - 1] as Command;
      run(await fn(contextOf(command), ...(args.slice(0, -1) as A)));
    };

  const cache = program.command("cache").description("inspect and manage the cache directory").exitOverride();
  cache.command("dir").description("print the cache root").action(action(cacheDirCommand));
  cache
    .command("clean")
    .description("remove everything, or only the entries of the given names")
    .argument("[names...]", "entry names (task or source names)")
    .option("--json", "also print what was removed as JSON on stdout")
    .action(action((context, names: string[], flags: { json?: boolean }) => (context.remote ? remoteCleanCommand(context, names, flags) : cacheCleanCommand(context, names, flags))));
  cache
    .command("prune")
    .description("remove unused content; with flags, also downloaded, old or least-recently-used entries")
    .option("--ci", "also remove downloaded entries (git checkouts and databases among them), keep computed ones (run at the end of a CI job)")
    .option("--max-age <duration>", "also remove entries not used within DURATION (e.g. 30d, 12h)")
    .option("--max-size <size>", "also remove least-recently-used entries until the cache fits SIZE (e.g. 2GiB)")
    .option("--dry-run", "list what would be removed, and remove nothing")
    .option("--json", "also print what was removed as JSON on stdout")
    .action(action((context, flags: PruneFlags) => (context.remote ? remotePruneCommand(context, pruneLimits(flags), flags) : cachePruneCommand(context, flags))));
  cache
    .command("size")
    .description("print the cache's size in bytes")
    .option("-H, --human", "human-readable units (default on a terminal)")
    .option("--json", "machine-readable output (bytes, files, directories)")
    .action(action((context, flags: { human?: boolean; json?: boolean }) => (context.remote ? remoteSizeCommand(context, flags) : cacheSizeCommand(context, flags))));
  cache
    .command("ls")
    .description("list entries with name, key, size, origin, age and last use (a task result's files under it)")
    .argument("[name]", "only entries of this name")
    .option("--json", "machine-readable output")
    .action(action((context, name: string | undefined, flags: { json?: boolean }) => (context.remote ? remoteLsCommand(context, name, flags) : cacheLsCommand(context, name, flags))));
  cache
    .command("verify")
    .description("check the index and every entry against its digest, and drop the bad ones")
    .option("--repair", "replace a damaged index and put back the entries of damaged index copies that verify")
    .option("--json", "machine-readable output")
    .action(action((context, flags: { json?: boolean; repair?: boolean }) => (context.remote ? remoteVerifyCommand(context, flags) : cacheVerifyCommand(context, flags))));

  cache
    .command("explain")
    .description("show what a task's entry (or a git source's checkout) was keyed on and how it differs from the name's most recently used other entry")
    .argument("<name>", "task or source name")
    .argument("[key]", "entry key, or a unique start of it as `cache ls` shows it (default: the most recently used entry)")
    .option("--json", "machine-readable output")
    .action(action((context, name: string, key: string | undefined, flags: { json?: boolean }) => cacheExplainCommand(context, name, key, flags)));

  for (const command of [program, cache, ...cache.commands]) {
    command.exitOverride().configureOutput(program.configureOutput());
    command.showSuggestionAfterError(true);
    command.configureHelp({ showGlobalOptions: true });
  }
  // `cachet` and `cachet --help` list every command and every setting; `cachet cache` lists its commands.
  program.addHelpText("after", () => `\n${subcommandsHelp(cache)}\n\n${settingsHelp()}\n`);
  return program;
}

/** Parses argv and runs the command; resolves to the process exit code. */
export async function runCli(argv: string[], output: Output = processOutput, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let code = 0;
  const program = buildProgram(output, env, (exitCode) => {
    code = exitCode;
  });
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
