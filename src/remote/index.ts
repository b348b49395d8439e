export { RemoteStore, openRemoteStore, remoteOptionsFromSettings } from "./remote-store.js";
export type { RemoteStoreOptions, RemotePutOptions, RemoteKeyLock } from "./remote-store.js";
export { TieredStore } from "./tiered-store.js";
export type { TieredStoreOptions } from "./tiered-store.js";
export type { Lease } from "./leases.js";
export { MIGRATIONS, SCHEMA_VERSION } from "./migrations.js";
export { RemoteError, RemoteTimeoutError, LeaseLostError, SignatureError, RemoteIntegrityError, RemoteReadOnlyError, RemoteRefusedError } from "./errors.js";
export { TreeArchiveError } from "./tree-archive.js";
export type { RemoteSize, RemoteRemoval, RemotePruneOptions, RemoteVerifyResult } from "./maintenance-results.js";
