/**
 * A minimal OCI distribution client: does a manifest exist in a registry? It speaks the registry HTTP API
 * directly (`HEAD /v2/<repository>/manifests/<tag>`), with the bearer-token exchange registries such as Docker
 * Hub and GHCR ask for (anonymous, or with credentials from a docker `config.json`) and Basic auth, so no docker
 * daemon or CLI is needed. Credentials are never logged nor put in an error message.
 */
import { readFile } from "node:fs/promises";

import { ImageSpecError } from "./errors.js";

/** Where an image lives: the registry's base URL and the repository path inside it. */
export interface RegistryTarget {
  /** `https://registry-1.docker.io`, `http://127.0.0.1:5000`, … */
  readonly baseUrl: string;
  /** `library/ubuntu`, `org/app`, … */
  readonly repository: string;
}

const DOCKER_HUB_HOSTS = new Set(["docker.io", "index.docker.io", "registry-1.docker.io"]);
/** Names a docker `config.json` may file Docker Hub's credentials under (`https://index.docker.io/v1/` is docker's). */
const DOCKER_HUB_AUTH_HOSTS = new Set([...DOCKER_HUB_HOSTS, "registry.hub.docker.com"]);

const MANIFEST_TYPES = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.docker.distribution.manifest.v2+json",
].join(", ");

/** True for hosts served over plain http: the loopback interface (local, insecure registries). */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/:\d+$/, "");
  return bare === "localhost" || bare === "[::1]" || /^127(?:\.\d{1,3}){3}$/.test(bare);
}

/**
 * Splits `[registry/]name` into the registry's URL and the repository. A first registry component with a `.`
 * or `:`, or `localhost`, is a host; otherwise (or with no registry at all) the image is on Docker Hub, where
 * single-name images live under `library/`.
 */
export function registryTarget(registry: string | undefined, name: string): RegistryTarget {
  const parts = registry ? registry.split("/").filter((part) => part !== "") : [];
  let host = "docker.io";
  const first = parts[0];
  if (first !== undefined && (first.includes(".") || first.includes(":") || first === "localhost")) {
    host = parts.shift()!;
  }
  let repository = [...parts, name].join("/");
  if (DOCKER_HUB_HOSTS.has(host)) {
    host = "registry-1.docker.io";
    if (!repository.includes("/")) repository = `library/${repository}`;
  }
  const scheme = isLoopbackHost(host) ? "http" : "https";
  return { baseUrl: `${scheme}://${host}`, repository };
}

/** Options of a registry query. */
export interface RegistryQueryOptions {
  /** Give up (answer `undefined`) after this many milliseconds in total. Default 10 000. */
  timeoutMs?: number;
}

/**
 * A user name and password for one registry. The password is kept in a private field: it does not show in
 * `util.inspect`, `console.log` or `JSON.stringify` of this object, and nothing here puts it in a message.
 */
export class RegistryCredentials {
  readonly #authorization: string;

  constructor(
    readonly username: string,
    password: string,
  ) {
    this.#authorization = `Basic ${Buffer.from(`${username}:${password}`, "utf8").toString("base64")}`;
    Object.freeze(this);
  }

  /** The `Authorization` header value of HTTP Basic auth with these credentials. */
  basicAuthorization(): string {
    return this.#authorization;
  }

  toJSON(): { username: string } {
    return { username: this.username };
  }
}

/** The host a registry is reached at (`ghcr.io`, `127.0.0.1:5000`), as credentials are filed under. */
export function registryHost(target: RegistryTarget): string {
  return new URL(target.baseUrl).host;
}

/**
 * The host part of a `config.json` `auths` key, the way docker reads one: `https://index.docker.io/v1/`,
 * `http://localhost:5000`, `ghcr.io/v2/` and `ghcr.io` all name a host; Docker Hub's names are one.
 */
function authHost(key: string): string {
  const host = key.trim().toLowerCase().replace(/^[a-z][a-z0-9+.-]*:\/\//, "").split("/")[0] ?? "";
  return DOCKER_HUB_AUTH_HOSTS.has(host) ? "docker.io" : host;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2,3})?$/;

/**
 * The credentials a docker `config.json` holds for `target`'s registry: the `auths` entry whose key names the same
 * host (with Docker Hub's aliases), by its `auth` (base64 of `user:password`), or else its `username` and
 * `password`. Undefined when no entry for the host holds credentials (credential helpers, `credsStore` and
 * `credHelpers`, are not run; an `identitytoken` is not used). A file that cannot be read, is not JSON, or whose
 * entry for the host is malformed is an ImageSpecError naming the file and the entry, never quoting the file.
 */
export async function readRegistryCredentials(configPath: string, target: RegistryTarget): Promise<RegistryCredentials | undefined> {
  const where = `ImageSpec option "registryConfig" (${configPath})`;
  let text: string;
  try {
    text = await readFile(configPath, "utf8");
  } catch (cause) {
    throw new ImageSpecError(`${where}: cannot read the file: ${(cause as Error).message}`, { cause });
  }
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch {
    // No cause and no parser message: it quotes the text around the error, which may be a secret.
    throw new ImageSpecError(`${where}: not valid JSON (expected a docker config.json)`);
  }
  if (!isRecord(config)) throw new ImageSpecError(`${where}: not a JSON object (expected a docker config.json)`);
  const auths = config.auths;
  if (auths === undefined) return undefined;
  if (!isRecord(auths)) throw new ImageSpecError(`${where}: "auths" is not an object`);
  const host = registryHost(target);
  const wanted = authHost(host);
  const keys = Object.keys(auths).filter((key) => authHost(key) === wanted);
  // docker's own key first: the bare host, or Hub's `https://index.docker.io/v1/`; then the file's order.
  const preferred = wanted === "docker.io" ? "https://index.docker.io/v1/" : host;
  keys.sort((a, b) => Number(b === preferred) - Number(a === preferred));
  for (const key of keys) {
    const entry = auths[key];
    const name = `${where}: auths[${JSON.stringify(key)}]`;
    if (!isRecord(entry)) throw new ImageSpecError(`${name} is not an object`);
    if (entry.auth !== undefined && entry.auth !== "") {
      const auth = typeof entry.auth === "string" ? entry.auth.trim() : undefined;
      const decoded = auth !== undefined && BASE64.test(auth) ? Buffer.from(auth, "base64").toString("utf8") : undefined;
      const colon = decoded?.indexOf(":") ?? -1;
      if (decoded === undefined || colon <= 0) {
        throw new ImageSpecError(`${name}: "auth" is not the base64 of "user:password"`);
      }
      return new RegistryCredentials(decoded.slice(0, colon), decoded.slice(colon + 1));
    }
    const { username, password } = entry;
    if (username !== undefined && typeof username !== "string") throw new ImageSpecError(`${name}: "username" is not a string`);
    if (password !== undefined && typeof password !== "string") throw new ImageSpecError(`${name}: "password" is not a string`);
    if (username && password) return new RegistryCredentials(username, password);
  }
  return undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Whether credentials may be sent to `url`: over https, or over http to this machine (a local registry). */
function mayCarryCredentials(url: URL): boolean {
  return url.protocol === "https:" || (url.protocol === "http:" && isLoopbackHost(url.host));
}

interface Challenge {
  readonly scheme: string;
  readonly params: Readonly<Record<string, string>>;
}

/** Parses a `WWW-Authenticate` header's first challenge: `Bearer realm="…",service="…",scope="…"`. */
export function parseChallenge(header: string | null): Challenge | undefined {
  return parseChallenges(header)[0];
}

/**
 * Parses every challenge of a `WWW-Authenticate` header (RFC 9110 §11.6.1). A server may send several, in one
 * header or in several, which fetch joins with ", ": `Basic realm="x", Bearer realm="…",service="…"`.
 */
export function parseChallenges(header: string | null): Challenge[] {
  const challenges: Array<{ scheme: string; params: Record<string, string> }> = [];
  if (!header) return challenges;
  // An auth-param (`name=value`, the value a token or a quoted string) or, alone, the scheme of a new challenge.
  const item = /[\s,]*([!#$%&'*+.^_`|~0-9A-Za-z-]+)(?:\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*)))?/y;
  for (let match = item.exec(header); match && match[0] !== ""; match = item.exec(header)) {
    const [, name, quoted, plain] = match as unknown as [string, string, string | undefined, string | undefined];
    if (quoted === undefined && plain === undefined) {
      challenges.push({ scheme: name.toLowerCase(), params: {} });
    } else if (challenges.length > 0) {
      challenges[challenges.length - 1]!.params[name.toLowerCase()] = quoted !== undefined ? quoted.replace(/\\(.)/g, "$1") : plain!;
    }
  }
  return challenges;
}

/**
 * A bearer token from the challenge's realm for `repository`: asked with the credentials' Basic auth when there
 * are credentials and the realm may carry them, anonymously otherwise. Undefined when the realm refuses.
 */
async function bearerToken(
  challenge: Challenge,
  repository: string,
  credentials: RegistryCredentials | undefined,
  signal: AbortSignal,
): Promise<string | undefined> {
  const realm = challenge.params.realm;
  if (!realm) return undefined;
  const url = new URL(realm);
  if (challenge.params.service) url.searchParams.set("service", challenge.params.service);
  url.searchParams.set("scope", challenge.params.scope ?? `repository:${repository}:pull`);
  const headers: Record<string, string> = { Accept: "application/json" };
  if (credentials && mayCarryCredentials(url)) headers.Authorization = credentials.basicAuthorization();
  const response = await fetch(url, { signal, headers });
  if (!response.ok) {
    await response.body?.cancel();
    return undefined;
  }
  const body = (await response.json()) as { token?: unknown; access_token?: unknown };
  const token = body.token ?? body.access_token;
  return typeof token === "string" && token !== "" ? token : undefined;
}

async function manifestRequest(
  url: string,
  method: "HEAD" | "GET",
  authorization: string | undefined,
  signal: AbortSignal,
): Promise<Response> {
  const headers: Record<string, string> = { Accept: MANIFEST_TYPES };
  // fetch drops Authorization when a redirect leaves the registry's origin.
  if (authorization) headers.Authorization = authorization;
  return fetch(url, { method, headers, signal, redirect: "follow" });
}

/** Reads OCI error codes from an error body (`{"errors":[{"code":"MANIFEST_UNKNOWN"}]}`). */
async function errorCodes(response: Response): Promise<string[]> {
  try {
    const body = (await response.json()) as { errors?: Array<{ code?: unknown }> };
    return (body.errors ?? []).map((error) => String(error.code));
  } catch {
    return [];
  }
}

const NOT_FOUND_CODES = new Set(["MANIFEST_UNKNOWN", "NAME_UNKNOWN", "NOT_FOUND"]);

/** Options of `manifestExists`. */
export interface ManifestQueryOptions extends RegistryQueryOptions {
  /** Credentials for the registry (from `readRegistryCredentials`); default none, anonymous. */
  credentials?: RegistryCredentials;
}

/**
 * Whether the registry has a manifest for `repository:tag`: `true` (200), `false` (404, or an error body saying
 * the manifest or repository is unknown), `undefined` when it cannot tell (network error, timeout, 401/403 even
 * after a token or credentials, 5xx, anything else). Never rejects. Credentials are sent only when the registry
 * asks (a 401 challenge): as Basic auth to a registry that asks for Basic, or to the token realm of a Bearer
 * challenge; and only over https or to a loopback host.
 */
export async function manifestExists(
  target: RegistryTarget,
  tag: string,
  options: ManifestQueryOptions = {},
): Promise<boolean | undefined> {
  const signal = AbortSignal.timeout(options.timeoutMs ?? 10_000);
  const url = `${target.baseUrl}/v2/${target.repository}/manifests/${encodeURIComponent(tag)}`;
  const credentials = options.credentials && mayCarryCredentials(new URL(url)) ? options.credentials : undefined;
  try {
    let authorization: string | undefined;
    let asked = false;
    /** One request, answering a first 401's challenge (a token, or Basic credentials); undefined if that fails. */
    const request = async (method: "HEAD" | "GET"): Promise<Response | undefined> => {
      const response = await manifestRequest(url, method, authorization, signal);
      if (response.status !== 401 || asked) return response;
      asked = true;
      await response.body?.cancel();
      // A registry may offer several challenges (Basic and Bearer); a token is preferred.
      const challenges = parseChallenges(response.headers.get("www-authenticate"));
      const bearer = challenges.find((c) => c.scheme === "bearer");
      if (bearer) {
        const token = await bearerToken(bearer, target.repository, credentials, signal);
        if (!token) return undefined;
        authorization = `Bearer ${token}`;
      } else if (credentials && challenges.some((c) => c.scheme === "basic")) {
        authorization = credentials.basicAuthorization();
      } else {
        return undefined;
      }
      return manifestRequest(url, method, authorization, signal);
    };
    let response = await request("HEAD");
    if (response && (response.status === 405 || response.status === 400)) {
      // Some registries refuse HEAD or answer it without a body to explain; ask again with GET (which may be the
      // first request to meet the registry's challenge).
      await response.body?.cancel();
      response = await request("GET");
    }
    if (!response) return undefined;
    const status = response.status;
    if (status === 200) {
      await response.body?.cancel();
      return true;
    }
    if (status === 404) {
      await response.body?.cancel();
      return false;
    }
    if (status >= 400 && status < 500 && status !== 401 && status !== 403 && status !== 429) {
      const codes = await errorCodes(response);
      return codes.some((code) => NOT_FOUND_CODES.has(code)) ? false : undefined;
    }
    await response.body?.cancel();
    return undefined;
  } catch {
    return undefined;
  }
}
