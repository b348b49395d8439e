import { BOOLEAN_ACCEPTED } from "./booleans.js";
import { ACCEPTED, DEFAULT_LEASE_EXPIRY_SECONDS, DEFAULT_LOCK_TIMEOUT_SECONDS, type Settings } from "./settings.js";

/** How one setting is set and what it accepts: the source of `cachet --help`'s settings and the README's table. */
export interface SettingDoc {
  /** The environment variable that sets it. */
  readonly env: string;
  /** The command-line flag, if there is one. */
  readonly flag?: string;
  /** The field of package.json's `"cachet"` object, if there is one. */
  readonly packageJson?: string;
  /** What it does, in a few words. */
  readonly does: string;
  /** The values it accepts (the same words its error names). */
  readonly accepted: string;
  /** What applies when it is not set. */
  readonly default: string;
}

/** Every setting, keyed like {@link Settings} (so none can be left out). */
export const SETTING_DOCS: { readonly [K in keyof Settings]: SettingDoc } = {
  cacheRoot: {
    env: "CACHET_CACHE_DIR",
    flag: "--cache-dir DIR",
    packageJson: "cacheDir",
    does: "the cache root",
    accepted: "a directory path (relative to the current directory; in package.json, to that package.json)",
    default: "$XDG_CACHE_HOME/cachet, else ~/.cache/cachet (%LOCALAPPDATA%\\cachet\\cache on Windows)",
  },
  noCache: {
    env: "CACHET_NO_CACHE",
    flag: "--no-cache",
    does: "tasks run without the cache; the CLI uses a temporary cache, removed at exit",
    accepted: BOOLEAN_ACCEPTED,
    default: "off",
  },
  lockTimeoutSeconds: {
    env: "CACHET_LOCK_TIMEOUT",
    does: "how long to wait for a cache lock (a serialized task, or clean and prune waiting for other processes)",
    accepted: ACCEPTED.lockTimeout,
    default: String(DEFAULT_LOCK_TIMEOUT_SECONDS),
  },
  linkMode: {
    env: "CACHET_LINK_MODE",
    does: "forces how cached trees are restored",
    accepted: ACCEPTED.linkMode,
    default: "automatic: outputs (task dir() results) clone, else copy; sources clone, else hard link, else copy",
  },
  refresh: {
    env: "CACHET_REFRESH",
    flag: "--refresh, --refresh-package NAME",
    does: "tasks that run and replace their entry instead of reading it, and sources revalidated instead of trusted as fresh",
    accepted: ACCEPTED.refresh,
    default: "none",
  },
  offline: {
    env: "CACHET_OFFLINE",
    flag: "--offline",
    does: "sources serve what is stored, stale or not, and never open a connection; a miss is an error",
    accepted: BOOLEAN_ACCEPTED,
    default: "off",
  },
  noProgress: {
    env: "CACHET_NO_PROGRESS",
    does: "no progress bars",
    accepted: BOOLEAN_ACCEPTED,
    default: "off (bars are drawn when stderr is a terminal)",
  },
  ci: {
    env: "CI",
    does: "no progress bars (CI services set it)",
    accepted: "any value but empty, 0, false, no or off",
    default: "unset",
  },
  dumbTerminal: {
    env: "TERM",
    does: "set to dumb: no escape codes, so no progress bars",
    accepted: "dumb (other values change nothing)",
    default: "as the terminal sets it",
  },
  debug: {
    env: "CACHET_DEBUG",
    does: "a CLI failure that looks like a bug prints its stack trace",
    accepted: BOOLEAN_ACCEPTED,
    default: "off",
  },
  imageId: {
    env: "CACHET_IMAGE_ID",
    does: "set in containers built from an ImageSpec; isContainer() compares it with the spec's id",
    accepted: "an image name",
    default: "unset",
  },
  // The remote tier (src/remote/).
  remote: {
    env: "CACHET_REMOTE",
    flag: "--remote URL",
    packageJson: "remote",
    does: "a shared cache on PostgreSQL behind the local one (the password is never printed)",
    accepted: ACCEPTED.remote,
    default: "none (local cache only)",
  },
  leases: {
    env: "CACHET_LEASES",
    does: "Redis for fast hand-off of serialized tasks' leases (PostgreSQL still fences every commit)",
    accepted: ACCEPTED.leases,
    default: "none (leases on PostgreSQL only)",
  },
  remoteWrite: {
    env: "CACHET_REMOTE_WRITE",
    flag: "--remote-read-only",
    does: "0 (or the flag): read the shared cache but never write to it",
    accepted: BOOLEAN_ACCEPTED,
    default: "on",
  },
  leaseExpirySeconds: {
    env: "CACHET_LEASE_EXPIRY",
    does: "seconds a serialized task's shared lease lasts without a heartbeat (heartbeats every third of it)",
    accepted: ACCEPTED.leaseExpiry,
    default: String(DEFAULT_LEASE_EXPIRY_SECONDS),
  },
  signingKey: {
    env: "CACHET_SIGNING_KEY",
    does: "signs shared entries (HMAC-SHA256 over name, key, digest and metadata); unsigned or wrongly signed ones are misses",
    accepted: "any secret string",
    default: "none (entries unsigned)",
  },
};
