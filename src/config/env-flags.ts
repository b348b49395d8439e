import { CachetError } from "../errors.js";

const TRUE_WORDS = new Set(["1", "true", "yes", "on"]);
const FALSE_WORDS = new Set(["0", "false", "no", "off", ""]);

/** Reads a boolean environment variable; `undefined` when unset. Throws on words that are neither. */
export function envBoolean(env: NodeJS.ProcessEnv, name: string): boolean | undefined {
  const raw = env[name];
  if (raw === undefined) return undefined;
  const word = raw.trim().toLowerCase();
  if (TRUE_WORDS.has(word)) return true;
  if (FALSE_WORDS.has(word)) return false;
  throw new ConfigError(`${name}=${JSON.stringify(raw)} is not valid: expected 1/0, true/false, yes/no or on/off`);
}

/** A setting given on the command line or in the environment that cachet cannot use. */
export class ConfigError extends CachetError {
  readonly code = "CACHET_CONFIG";
}
