import { isFalseWord, isTrueWord, parseBoolean } from "./booleans.js";
import { resolveCacheRoot, type CacheRoot } from "./cache-root.js";
import { SettingError } from "./errors.js";
import { readRemoteUrl } from "./connection-strings.js";
import { readPackageSettings } from "./package-settings.js";

/** How files are materialized out of the cache: reflink clone, hard link, or a plain copy. */
export const LINK_MODES = ["clone", "hardlink", "copy"] as const;
export type LinkMode = (typeof LINK_MODES)[number];

/** The seconds a process waits for a cache lock when `CACHET_LOCK_TIMEOUT` is not set. */
export const DEFAULT_LOCK_TIMEOUT_SECONDS = 300;

/** Which entries refresh (tasks rerun and replace their entry; sources revalidate): all of them, or those named. */
export type RefreshSetting = { readonly all: true } | { readonly all: false; readonly names: ReadonlySet<string> };

/**
 * Every setting cachet reads from its environment, flags and package.json, typed and validated. Each is read
 * when asked for, so a library caller that never needs one is not stopped by a bad value of it; the CLI asks
 * for all of them at start ({@link checkSettings}).
 */
export interface Settings {
  /** `--cache-dir` · `CACHET_CACHE_DIR` · package.json `"cachet.cacheDir"` · XDG · home. */
  readonly cacheRoot: CacheRoot;
  /** `--no-cache` · `CACHET_NO_CACHE`: tasks run without the cache; the CLI uses a temporary cache. */
  readonly noCache: boolean;
  /** `CACHET_LOCK_TIMEOUT`: seconds to wait for a cache lock. */
  readonly lockTimeoutSeconds: number;
  /** `CACHET_LINK_MODE`: a forced way of restoring trees, or undefined for automatic. */
  readonly linkMode: LinkMode | undefined;
  /**
   * `--refresh` / `--refresh-package NAME` · `CACHET_REFRESH`: tasks that run and replace their entry, and
   * sources (by entry name) whose stored responses are revalidated instead of trusted as fresh.
   */
  readonly refresh: RefreshSetting;
  /** `--offline` · `CACHET_OFFLINE`: sources serve what is stored, stale or not, and never open a connection. */
  readonly offline: boolean;
  /** `CACHET_NO_PROGRESS`: no progress bars. */
  readonly noProgress: boolean;
  /** `CI`: running in continuous integration (no progress bars). */
  readonly ci: boolean;
  /** `TERM=dumb`: a terminal that takes no escape codes (no progress bars). */
  readonly dumbTerminal: boolean;
  /** `CACHET_DEBUG`: failures that look like bugs print their stack. */
  readonly debug: boolean;
  /** `CACHET_IMAGE_ID`: set inside a container built from an `ImageSpec` (its id). */
  readonly imageId: string | undefined;
  // The remote tier (src/remote/).
  /** `--remote URL` · `CACHET_REMOTE` · package.json `"cachet.remote"`: the shared tier's PostgreSQL URL. */
  readonly remote: string | undefined;
  /** `CACHET_LEASES`: a Redis URL for fast lease hand-off (correctness still comes from PostgreSQL). */
  readonly leases: string | undefined;
  /** `--remote-read-only` · `CACHET_REMOTE_WRITE=0`: read the shared tier, never write to it. */
  readonly remoteWrite: boolean;
  /** `CACHET_LEASE_EXPIRY`: seconds a remote lease lasts without a heartbeat. */
  readonly leaseExpirySeconds: number;
  /** `CACHET_SIGNING_KEY`: the HMAC key remote entries are signed and checked with. */
  readonly signingKey: string | undefined;
}

/** Values given on the command line or as options, which win over the environment. */
export interface SettingFlags {
  /** `--cache-dir` / `openStore({ cacheDir })`. */
  cacheDir?: string | undefined;
  /** `--no-cache`. */
  noCache?: boolean | undefined;
  /** `--offline`. */
  offline?: boolean | undefined;
  /** `--refresh` (everything) or `--refresh-package NAME`… (those names); wins over `CACHET_REFRESH`. */
  refresh?: RefreshSetting | undefined;
  /** `--remote URL`. */
  remote?: string | undefined;
  /** `--remote-read-only`. */
  remoteReadOnly?: boolean | undefined;
}

/** Where settings are read from. */
export interface SettingsSource {
  /** Default `process.env`. */
  env?: NodeJS.ProcessEnv | undefined;
  /** Where relative paths start and the package.json search begins; default `process.cwd()`. */
  cwd?: string | undefined;
  flags?: SettingFlags | undefined;
}

/** The accepted values of each setting that has a fixed set of them, as messages and the help name them. */
export const ACCEPTED = {
  lockTimeout: "a number of seconds ≥ 0",
  linkMode: `${LINK_MODES.slice(0, -1).join(", ")} or ${LINK_MODES[LINK_MODES.length - 1]}`,
  refresh: "1, true, yes, on or * (everything); 0, false, no or off (none); or task and source names separated by commas",
  remote: "a postgres:// or postgresql:// URL",
  leases: "a redis:// or rediss:// URL",
  leaseExpiry: "a number of seconds ≥ 1",
} as const;

/** The seconds a remote lease lasts without a heartbeat when `CACHET_LEASE_EXPIRY` is not set. */
export const DEFAULT_LEASE_EXPIRY_SECONDS = 30;

/** Reads settings from `source` (flag > environment > package.json > default). */
export function readSettings(source: SettingsSource = {}): Settings {
  return new SettingsReader(source.env ?? process.env, source.cwd, source.flags ?? {});
}

/** Reads every setting: the first one that is not valid throws its {@link SettingError}. */
export function checkSettings(settings: Settings): void {
  for (const key of SETTING_KEYS) void settings[key];
}

/** Every key of {@link Settings}, in the order the help and the README list them. */
export const SETTING_KEYS: readonly (keyof Settings)[] = [
  "cacheRoot",
  "noCache",
  "lockTimeoutSeconds",
  "linkMode",
  "refresh",
  "offline",
  "noProgress",
  "ci",
  "dumbTerminal",
  "debug",
  "imageId",
  "remote",
  "leases",
  "remoteWrite",
  "leaseExpirySeconds",
  "signingKey",
];

/** Whether the task or source `name` refreshes under `refresh`. */
export function refreshes(refresh: RefreshSetting, name: string): boolean {
  return refresh.all || refresh.names.has(name);
}

/**
 * Reads each setting when asked for. Only the cache root is kept once read (it may read package.json); the
 * others are a variable each, cheap enough to read at every task call without keeping anything.
 */
class SettingsReader implements Settings {
  #cacheRoot: CacheRoot | undefined;

  constructor(
    private readonly env: NodeJS.ProcessEnv,
    private readonly cwd: string | undefined,
    private readonly flags: SettingFlags,
  ) {}

  get cacheRoot(): CacheRoot {
    this.#cacheRoot ??= resolveCacheRoot({ cacheDir: this.flags.cacheDir, env: this.env, cwd: this.cwd ?? process.cwd() });
    return this.#cacheRoot;
  }

  get noCache(): boolean {
    return this.flags.noCache === true || (parseBoolean("CACHET_NO_CACHE", this.env.CACHET_NO_CACHE) ?? false);
  }

  get lockTimeoutSeconds(): number {
    return parseLockTimeout(this.env.CACHET_LOCK_TIMEOUT);
  }

  get linkMode(): LinkMode | undefined {
    return parseLinkMode(this.env.CACHET_LINK_MODE);
  }

  get refresh(): RefreshSetting {
    return this.flags.refresh ?? parseRefresh(this.env.CACHET_REFRESH);
  }

  get offline(): boolean {
    return this.flags.offline === true || (parseBoolean("CACHET_OFFLINE", this.env.CACHET_OFFLINE) ?? false);
  }

  get noProgress(): boolean {
    return parseBoolean("CACHET_NO_PROGRESS", this.env.CACHET_NO_PROGRESS) ?? false;
  }

  get ci(): boolean {
    // `CI` is not ours: CI services set it to `true`, `1` or their own name, so any value but an off word counts.
    const raw = this.env.CI;
    return raw !== undefined && raw.trim() !== "" && !isFalseWord(raw);
  }

  get dumbTerminal(): boolean {
    return this.env.TERM === "dumb";
  }

  get debug(): boolean {
    return parseBoolean("CACHET_DEBUG", this.env.CACHET_DEBUG) ?? false;
  }

  get imageId(): string | undefined {
    return this.env.CACHET_IMAGE_ID || undefined;
  }

  get remote(): string | undefined {
    if (this.flags.remote !== undefined && this.flags.remote !== "") return readRemoteUrl("--remote", this.flags.remote, ["postgres:", "postgresql:"], ACCEPTED.remote);
    const fromEnv = this.env.CACHET_REMOTE;
    if (fromEnv !== undefined && fromEnv.trim() !== "") return readRemoteUrl("CACHET_REMOTE", fromEnv, ["postgres:", "postgresql:"], ACCEPTED.remote);
    const fromPackage = readPackageSettings(this.cwd ?? process.cwd());
    if (fromPackage?.remote === undefined) return undefined;
    return readRemoteUrl(`${fromPackage.file} "cachet.remote"`, fromPackage.remote, ["postgres:", "postgresql:"], ACCEPTED.remote);
  }

  get leases(): string | undefined {
    const raw = this.env.CACHET_LEASES;
    if (raw === undefined || raw.trim() === "") return undefined;
    return readRemoteUrl("CACHET_LEASES", raw, ["redis:", "rediss:"], ACCEPTED.leases);
  }

  get remoteWrite(): boolean {
    if (this.flags.remoteReadOnly === true) return false;
    return parseBoolean("CACHET_REMOTE_WRITE", this.env.CACHET_REMOTE_WRITE) ?? true;
  }

  get leaseExpirySeconds(): number {
    const raw = this.env.CACHET_LEASE_EXPIRY;
    if (raw === undefined || raw.trim() === "") return DEFAULT_LEASE_EXPIRY_SECONDS;
    const seconds = Number(raw);
    // Under a second, heartbeats (a third of it) would flood the database and a lease would not outlive a round trip.
    if (!/^\s*\d*\.?\d+\s*$/.test(raw) || !Number.isFinite(seconds) || seconds < 1) {
      throw new SettingError("CACHET_LEASE_EXPIRY", raw, ACCEPTED.leaseExpiry);
    }
    return seconds;
  }

  get signingKey(): string | undefined {
    return this.env.CACHET_SIGNING_KEY || undefined;
  }
}


function parseLockTimeout(raw: string | undefined): number {
  if (raw === undefined || raw.trim() === "") return DEFAULT_LOCK_TIMEOUT_SECONDS;
  const seconds = Number(raw);
  if (!/^\s*\d*\.?\d+\s*$/.test(raw) || !Number.isFinite(seconds)) {
    throw new SettingError("CACHET_LOCK_TIMEOUT", raw, ACCEPTED.lockTimeout);
  }
  return seconds;
}

function parseLinkMode(raw: string | undefined): LinkMode | undefined {
  if (raw === undefined || raw.trim() === "") return undefined;
  const mode = raw.trim().toLowerCase();
  if (!(LINK_MODES as readonly string[]).includes(mode)) throw new SettingError("CACHET_LINK_MODE", raw, ACCEPTED.linkMode);
  return mode as LinkMode;
}

const REFRESH_NONE: RefreshSetting = Object.freeze({ all: false, names: Object.freeze(new Set<string>()) });
const REFRESH_ALL: RefreshSetting = Object.freeze({ all: true });

function parseRefresh(raw: string | undefined): RefreshSetting {
  if (raw === undefined || raw.trim() === "" || isFalseWord(raw)) return REFRESH_NONE;
  if (raw.trim() === "*" || isTrueWord(raw)) return REFRESH_ALL;
  return { all: false, names: new Set(raw.split(",").map((name) => name.trim()).filter((name) => name !== "")) };
}

