import { readSettings, redactUrl, type Settings } from "./config/index.js";
import { openStore, type CacheStore, type StoreOptions } from "./store/index.js";

/**
 * The store the settings ask for: the local cache (`openStore`), or, when a shared tier is configured
 * (`CACHET_REMOTE`, `--remote`, package.json `"cachet.remote"`), the local cache in front of it (`TieredStore`).
 * The remote layer (and its PostgreSQL and Redis clients) is loaded only then. A remote that cannot be reached
 * does not fail this: the tiered store reports it once and works locally. Tasks open their default store here.
 */
export async function openConfiguredStore(options: StoreOptions = {}, settings: Settings = readSettings()): Promise<CacheStore> {
  const remoteUrl = settings.remote;
  const local = await openStore(options);
  if (remoteUrl === undefined) return local;
  const { TieredStore, openRemoteStore, remoteOptionsFromSettings } = await import("./remote/index.js");
  const remoteOptions = { ...remoteOptionsFromSettings(settings)!, onWarning: options.onWarning };
  return new TieredStore({
    local,
    openRemote: () => openRemoteStore(remoteOptions),
    remoteName: redactUrl(remoteUrl),
    onWarning: options.onWarning,
  });
}
