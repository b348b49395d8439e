/**
 * A minimal OCI distribution client: does a manifest exist in a registry? It speaks the registry HTTP API
 * directly (`HEAD /v2/<repository>/manifests/<tag>`), with the anonymous bearer-token exchange registries such
 * as Docker Hub and GHCR ask for, so no docker daemon or CLI is needed.
 */

/** Where an image lives: the registry's base URL and the repository path inside it. */
export interface RegistryTarget {
  /** `https://registry-1.docker.io`, `http://127.0.0.1:5000`, … */
  readonly baseUrl: string;
  /** `library/ubuntu`, `org/app`, … */
  readonly repository: string;
}

const DOCKER_HUB_HOSTS = new Set(["docker.io", "index.docker.io", "registry-1.docker.io"]);

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

async function anonymousToken(challenge: Challenge, repository: string, signal: AbortSignal): Promise<string | undefined> {
  const realm = challenge.params.realm;
  if (!realm) return undefined;
  const url = new URL(realm);
  if (challenge.params.service) url.searchParams.set("service", challenge.params.service);
  url.searchParams.set("scope", challenge.params.scope ?? `repository:${repository}:pull`);
  const response = await fetch(url, { signal, headers: { Accept: "application/json" } });
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
  token: string | undefined,
  signal: AbortSignal,
): Promise<Response> {
  const headers: Record<string, string> = { Accept: MANIFEST_TYPES };
  if (token) headers.Authorization = `Bearer ${token}`;
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

/**
 * Whether the registry has a manifest for `repository:tag`: `true` (200), `false` (404, or an error body saying
 * the manifest or repository is unknown), `undefined` when it cannot tell (network error, timeout, 401/403 even
 * after an anonymous token, 5xx, anything else).
 */
export async function manifestExists(
  target: RegistryTarget,
  tag: string,
  options: RegistryQueryOptions = {},
): Promise<boolean | undefined> {
  const signal = AbortSignal.timeout(options.timeoutMs ?? 10_000);
  const url = `${target.baseUrl}/v2/${target.repository}/manifests/${encodeURIComponent(tag)}`;
  try {
    let token: string | undefined;
    let asked = false;
    /** One request, answering a first 401's Bearer challenge with an anonymous token; undefined if that fails. */
    const request = async (method: "HEAD" | "GET"): Promise<Response | undefined> => {
      const response = await manifestRequest(url, method, token, signal);
      if (response.status !== 401 || asked) return response;
      asked = true;
      await response.body?.cancel();
      // The Bearer one of possibly several challenges (a registry may offer Basic too).
      const challenge = parseChallenges(response.headers.get("www-authenticate")).find((c) => c.scheme === "bearer");
      if (!challenge) return undefined;
      token = await anonymousToken(challenge, target.repository, signal);
      if (!token) return undefined;
      return manifestRequest(url, method, token, signal);
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
