#!/usr/bin/env node
import { readSettings, SettingError } from "../config/index.js";
import { isCachetError } from "../errors.js";
import { runCli } from "./program.js";
import { UsageError } from "./usage-error.js";

// Signals end the process through `exit`, so temporary roots and queued index writes are handled on the way out.
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.once(signal, () => process.exit(128 + (signal === "SIGINT" ? 2 : signal === "SIGTERM" ? 15 : 1)));
}

// A reader that stops early (`cachet cache ls | head`) closes the pipe: what is left to print is dropped, and the
// command still finishes its work (a restore, an index write) instead of dying on EPIPE half-way.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code !== "EPIPE" && error.code !== "ERR_STREAM_DESTROYED") throw error;
  });
}

try {
  process.exitCode = await runCli(process.argv.slice(2));
} catch (error) {
  process.exitCode = reportFailure(error);
}

function reportFailure(error: unknown): number {
  // A bad flag, argument or setting value is the user's to fix: exit 2, like a usage error.
  if (error instanceof UsageError || error instanceof SettingError) {
    process.stderr.write(`error: ${error.message}\n`);
    return 2;
  }
  if (isCachetError(error)) {
    process.stderr.write(`error: ${error.message}\n`);
    return 1;
  }
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`error: ${message}${code ? ` (${code})` : ""}\n`);
  if (debugging() && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
  else process.stderr.write("(set CACHET_DEBUG=1 for details and report it if it looks like a bug in cachet)\n");
  return 1;
}

/** `CACHET_DEBUG` is on; a value that is not understood (already reported at start) counts as off here. */
function debugging(): boolean {
  try {
    return readSettings().debug;
  } catch {
    return false;
  }
}
