import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { basename, dirname, join, relative, sep } from "node:path";
import { UsageError } from "../usage-error.js";

/** Version of the run key's shape: bumping it makes every earlier `cachet run` entry a miss. */
const RUN_KEY_VERSION = "cachet-run-key/1";

/** What a `cachet run` key is made of, recorded with the entry so `--dry-run` and `explain` can say what changed. */
export interface RunKeyComponents {
  version: typeof RUN_KEY_VERSION;
  /** The command and its arguments, as given after `--`. */
  command: string[];
  /** The working directory relative to the nearest package.json (`.` there), or absolute without one. */
  cwd: string;
  /** The `--out` paths, as given (relative to the working directory). */
  outs: string[];
  /** Each `--env` variable: a digest of its value (`set:<sha256>`, empty included), or `unset`. */
  env: Record<string, string>;
}

/** What {@link runKey} needs. */
export interface RunKeyRequest {
  command: readonly string[];
  /** The working directory relative to the package (see {@link findPackage}). */
  cwdRelative: string;
  outs: readonly string[];
  envNames: readonly string[];
  /** `--key` specifications; see the note on {@link runKey}. */
  keySpecs: readonly string[];
  env: NodeJS.ProcessEnv;
}

/**
 * The key of a `cachet run`: the one place that decides what a run is keyed on. Today that is the command line,
 * the working directory relative to the package, the `--out` paths and every `--env` variable (a digest of its
 * value: set, empty and unset all differ; the value itself is never stored). `--key` specifications (files,
 * globs, directories, git state) need the cache-key module, which this build does not have: they are refused
 * with a usage error rather than ignored, since ignoring one would return outputs made from other inputs.
 */
export async function runKey(request: RunKeyRequest): Promise<{ key: string; components: RunKeyComponents }> {
  if (request.keySpecs.length > 0) {
    throw new UsageError(`--key is not supported yet by this build of cachet (got --key ${request.keySpecs[0]}); key on --env and the command line for now`);
  }
  const env: Record<string, string> = {};
  for (const name of [...new Set(request.envNames)].sort()) env[name] = envDigest(request.env[name]);
  const components: RunKeyComponents = {
    version: RUN_KEY_VERSION,
    command: [...request.command],
    cwd: request.cwdRelative,
    outs: [...request.outs],
    env,
  };
  const key = createHash("sha256").update(JSON.stringify(components)).digest("hex");
  return { key, components };
}

function envDigest(value: string | undefined): string {
  if (value === undefined) return "unset";
  return `set:${createHash("sha256").update(RUN_KEY_VERSION).update("\0").update(value).digest("hex")}`;
}

/** The nearest package.json at or above `cwd`: its directory and `name`, if any. */
export interface PackageHome {
  dir: string | undefined;
  name: string | undefined;
}

export function findPackage(cwd: string): PackageHome {
  for (let dir = cwd; ; dir = dirname(dir)) {
    const file = join(dir, "package.json");
    if (existsSync(file)) {
      let name: string | undefined;
      try {
        const parsed = JSON.parse(readFileSync(file, "utf8")) as { name?: unknown };
        if (typeof parsed.name === "string" && parsed.name !== "") name = parsed.name;
      } catch {
        name = undefined; // an unreadable package.json still marks the package's root
      }
      return { dir, name };
    }
    if (dirname(dir) === dir) return { dir: undefined, name: undefined };
  }
}

/** The working directory as the key records it: relative to the package (POSIX separators), else absolute. */
export function cwdInPackage(cwd: string, home: PackageHome): string {
  if (home.dir === undefined) return cwd;
  return relative(home.dir, cwd).split(sep).join("/") || ".";
}

/** The default entry name: `<package>:<command word>` (`my-pkg:tsc`; `@scope/pkg` becomes `@scope+pkg`). */
export function defaultRunName(command: readonly string[], home: PackageHome): string {
  const word = basename(command[0] ?? "run");
  return home.name === undefined ? word : `${home.name.replace(/\//g, "+")}:${word}`;
}
