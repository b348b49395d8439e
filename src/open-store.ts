import { SettingError, readSettings, redactUrl, type Settings } from "./config/index.js";
import { openStore, type CacheStore, type StoreOptions } from "./store/index.js";

/**
 * The store the settings ask for: the local cache (`openStore`), or, when a shared tier is configured
 * (`CACHET_REMOTE`, `--remote`, package.json `"cachet.remote"`), the local cache in front of it (`TieredStore`).
 * The remote layer (and its PostgreSQL and Redis clients) is loaded only then. A remote that cannot be reached
 * does not fail this: the tiered store reports it once and works locally. Settings are read from `options.env`
 * and `options.cwd` (default the process's). Tasks open their default store here.
 */
export async function openConfiguredStore(options: StoreOptions = {}, settings: Settings = readSettings({ env: options.env, cwd: options.cwd })): Promise<CacheStore> {
  const local = await openStore(options);
  // A temporary cache (`noCache`) is this process's alone: no shared tier behind it.
  if (options.noCache) return local;
  try {
    const remoteUrl = settings.remote;
    if (remoteUrl === undefined) return local;
    const { TieredStore, openRemoteStore, remoteOptionsFromSettings } = await import("./remote/index.js");
    const remoteOptions = { ...remoteOptionsFromSettings(settings)!, onWarning: options.onWarning };
    return new TieredStore({
      local,
      openRemote: (signal) => openRemoteStore({ ...remoteOptions, signal }),
      remoteName: redactUrl(remoteUrl),
      onWarning: options.onWarning,
    });
  } catch (error) {
    // A remote setting that is not understood (the URL, the leases URL, the expiry, the write switch) leaves the
    // local cache working (said once, by the caller's handler).
    if (!(error instanceof SettingError)) throw error;
    (options.onWarning ?? ((warning) => process.emitWarning(warning.message, { code: warning.code })))({
      code: error.code,
      message: `cachet: ${error.message}; the shared cache is not used`,
    });
    return local;
  }
}
