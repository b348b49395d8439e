export { cliSettings } from "./cli-settings.js";
export type { CliSettings, GlobalFlags } from "./cli-settings.js";
export { envBoolean, ConfigError } from "./env-flags.js";
