// Real servers for the ImageSpec.exist() tests: a docker-registry process (Debian's distribution v2) on
// 127.0.0.1 with no auth, htpasswd (Basic) auth or token auth, and the token server token auth needs — a small
// HTTP server that issues JWTs signed with a key whose certificate the registry trusts. Not a test file.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, createPrivateKey, randomUUID, sign, X509Certificate, type KeyObject } from "node:crypto";
import { accessSync, constants, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createNetServer, type AddressInfo } from "node:net";
import { delimiter, join } from "node:path";
import { startProcess, type Child } from "./workers/child.js";

/** The first executable `name` on PATH, or "". */
export function findOnPath(name: string): string {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      // not here
    }
  }
  return "";
}

export const REGISTRY_BINARY = findOnPath("docker-registry");

/** Why the real-registry tests cannot run here (a tool they need is missing), or false. */
export const registrySkipReason: string | false = (() => {
  // docker-registry is the registry; openssl makes the token server's key and certificate; perl's crypt() makes
  // the bcrypt entries of htpasswd (perl-base is part of every Debian system).
  const missing = ["docker-registry", "openssl", "perl"].filter((tool) => findOnPath(tool) === "");
  if (missing.length === 0) return false;
  return `${missing.join(", ")} ${missing.length === 1 ? "is" : "are"} not installed (apt-get install -y ${missing.join(" ")}), so ImageSpec.exist() is not tested against a real registry`;
})();

/** A TCP port nothing listens on right now. */
export async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Runs a short command (openssl, perl) to its end, bounded, and returns its stdout. */
function run(command: string, args: string[]): string {
  return execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 30_000, killSignal: "SIGKILL" });
}

/** A bcrypt hash of `password` (the only kind docker-registry's htpasswd accepts), through libcrypt via perl. */
export function bcrypt(password: string): string {
  // A fixed salt (22 characters of bcrypt's alphabet; the last one carries 2 bits, hence "u").
  const hash = run("perl", ["-e", "print crypt($ARGV[0], $ARGV[1])", password, "$2b$04$cachetTestSaltOfBcrypu"]);
  assert.match(hash, /^\$2b\$04\$.{53}$/, `perl's crypt() made no bcrypt hash: ${hash}`);
  return hash;
}

/** Authorization headers for requests to a registry (what a client with credentials would send). */
export type RegistryAuth = (scope: string) => Promise<Record<string, string>>;

export const noAuth: RegistryAuth = async () => ({});

export function basicAuth(user: string, password: string): RegistryAuth {
  const header = `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
  return async () => ({ Authorization: header });
}

/** A docker-registry process on 127.0.0.1. */
export class TestRegistry {
  private constructor(
    readonly child: Child,
    /** `127.0.0.1:<port>`, as an ImageSpec registry. */
    readonly host: string,
    /** The storage root (the test may damage it). */
    readonly storage: string,
  ) {}

  /** `http://127.0.0.1:<port>` */
  get base(): string {
    return `http://${this.host}`;
  }

  /**
   * Starts docker-registry in `dir` with the given `auth:` section (YAML lines, already indented) and waits until it
   * answers `/v2/` (with any status: an authenticating registry answers 401).
   */
  static async start(dir: string, auth: string[] = []): Promise<TestRegistry> {
    mkdirSync(dir, { recursive: true });
    const port = await freePort();
    const storage = join(dir, "data");
    const config = join(dir, "config.yml");
    writeFileSync(
      config,
      [
        "version: 0.1",
        "log:",
        "  level: error",
        "  accesslog:",
        "    disabled: true",
        "storage:",
        "  filesystem:",
        `    rootdirectory: ${storage}`,
        "http:",
        `  addr: 127.0.0.1:${port}`,
        ...(auth.length > 0 ? ["auth:", ...auth] : []),
        "",
      ].join("\n"),
    );
    const child = startProcess(REGISTRY_BINARY, ["serve", config], {}, { cwd: dir });
    const registry = new TestRegistry(child, `127.0.0.1:${port}`, storage);
    try {
      const deadline = performance.now() + 20_000;
      for (;;) {
        try {
          await fetch(`${registry.base}/v2/`, { signal: AbortSignal.timeout(2000) });
          return registry;
        } catch {
          // not listening yet
        }
        if (child.exitedYet()) throw new Error(`docker-registry exited at start:\n${child.stderr()}${child.stdout()}`);
        if (performance.now() > deadline) throw new Error(`docker-registry did not answer within 20 s:\n${child.stderr()}${child.stdout()}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } catch (error) {
      await child.kill9();
      throw error;
    }
  }

  async stop(): Promise<void> {
    await this.child.kill9();
  }
}

const sha256 = (data: Uint8Array | string): string => `sha256:${createHash("sha256").update(data).digest("hex")}`;

/** Uploads a blob through the OCI distribution API (POST an upload, PUT its bytes with the digest). */
async function pushBlob(base: string, repository: string, data: Uint8Array, headers: Record<string, string>): Promise<string> {
  const digest = sha256(data);
  const started = await fetch(`${base}/v2/${repository}/blobs/uploads/`, { method: "POST", headers });
  assert.equal(started.status, 202, `blob upload start: ${started.status} ${await started.text()}`);
  const location = new URL(started.headers.get("location")!, base);
  location.searchParams.set("digest", digest);
  const put = await fetch(location, { method: "PUT", body: data, headers: { ...headers, "Content-Type": "application/octet-stream" } });
  assert.equal(put.status, 201, `blob upload: ${put.status} ${await put.text()}`);
  return digest;
}

/** Pushes a tiny OCI image (config blob, one layer blob, manifest) under `repository:tag`. */
export async function pushImage(registry: TestRegistry, repository: string, tag: string, auth: RegistryAuth = noAuth): Promise<void> {
  const headers = await auth(`repository:${repository}:pull,push`);
  const layer = new TextEncoder().encode(`not really a tarball of ${repository}, the registry does not look inside`);
  const layerDigest = await pushBlob(registry.base, repository, layer, headers);
  const config = new TextEncoder().encode(
    JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [layerDigest] } }),
  );
  const configDigest = await pushBlob(registry.base, repository, config, headers);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: configDigest, size: config.byteLength },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: layerDigest, size: layer.byteLength }],
  });
  const put = await fetch(`${registry.base}/v2/${repository}/manifests/${tag}`, {
    method: "PUT",
    body: manifest,
    headers: { ...headers, "Content-Type": "application/vnd.oci.image.manifest.v1+json" },
  });
  assert.equal(put.status, 201, `manifest upload: ${put.status} ${await put.text()}`);
}

/** The status of `HEAD /v2/<repository>/manifests/<tag>` with the given auth (to check what a push did). */
export async function manifestStatus(registry: TestRegistry, repository: string, tag: string, auth: RegistryAuth): Promise<number> {
  const response = await fetch(`${registry.base}/v2/${repository}/manifests/${tag}`, {
    method: "HEAD",
    headers: { ...(await auth(`repository:${repository}:pull`)), Accept: "application/vnd.oci.image.manifest.v1+json" },
  });
  return response.status;
}

/** One request the token server answered. */
export interface TokenRequest {
  service: string | null;
  scopes: string[];
  /** The user of a Basic Authorization header, or undefined for an anonymous request. */
  user: string | undefined;
}

/** How the token server answers: grant by its rules, or fail in one of the ways a real one can. */
export type TokenServerMode = "grant" | "refuse" | "fail" | "garbage" | "untrusted";

interface Grant {
  type: string;
  name: string;
  actions: string[];
}

/** A signing key with its self-signed certificate, made by openssl. */
interface SigningKey {
  key: KeyObject;
  certPem: string;
  certDer: Buffer;
}

function makeSigningKey(dir: string, name: string): SigningKey {
  const keyFile = join(dir, `${name}.key.pem`);
  const certFile = join(dir, `${name}.cert.pem`);
  run("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", keyFile, "-out", certFile, "-days", "2", "-subj", `/CN=${name}`,
  ]);
  const certPem = readFileSync(certFile, "utf8");
  return { key: createPrivateKey(readFileSync(keyFile)), certPem, certDer: new X509Certificate(certPem).raw };
}

/**
 * The token service of a registry with `auth: token` (the Docker registry token protocol): `GET /token?service=
 * …&scope=repository:<name>:<actions>` answers `{"token": <JWT>}`. Anonymous requests get `pull` on repositories
 * under a public prefix and nothing elsewhere (an empty grant, which the registry answers with 401
 * insufficient_scope); requests with a known user's Basic credentials get every action they ask for; wrong
 * credentials get 401. `mode` makes it refuse, fail or misbehave instead.
 */
export class TokenServer {
  readonly service = "cachet-test-registry";
  readonly issuer = "cachet-test-token-issuer";
  readonly requests: TokenRequest[] = [];
  mode: TokenServerMode = "grant";

  private constructor(
    private readonly server: Server,
    readonly port: number,
    /** PEM file of the certificate the registry trusts (`rootcertbundle`). */
    readonly certFile: string,
    private readonly trusted: SigningKey,
    private readonly untrusted: SigningKey,
    private readonly users: ReadonlyMap<string, string>,
    private readonly publicPrefixes: readonly string[],
  ) {}

  /** Makes keys in `dir` and listens on 127.0.0.1. */
  static async start(
    dir: string,
    options: { users?: Record<string, string>; publicPrefixes?: string[] } = {},
  ): Promise<TokenServer> {
    mkdirSync(dir, { recursive: true });
    const trusted = makeSigningKey(dir, "cachet-test-token-issuer");
    const untrusted = makeSigningKey(dir, "someone-else");
    const certFile = join(dir, "rootcertbundle.pem");
    writeFileSync(certFile, trusted.certPem);
    let self: TokenServer | undefined;
    const server = createServer((request, response) => self!.handle(request, response));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    self = new TokenServer(
      server,
      (server.address() as AddressInfo).port,
      certFile,
      trusted,
      untrusted,
      new Map(Object.entries(options.users ?? {})),
      options.publicPrefixes ?? ["cachet-test/"],
    );
    return self;
  }

  get realm(): string {
    return `http://127.0.0.1:${this.port}/token`;
  }

  /** The registry's `auth:` section for this token server. */
  registryAuth(): string[] {
    return [
      "  token:",
      `    realm: ${this.realm}`,
      `    service: ${this.service}`,
      `    issuer: ${this.issuer}`,
      `    rootcertbundle: ${this.certFile}`,
    ];
  }

  /** Auth for pushes: a token from this server's own endpoint, asked with a user's Basic credentials. */
  userAuth(user: string, password: string): RegistryAuth {
    return async (scope) => {
      const url = new URL(this.realm);
      url.searchParams.set("service", this.service);
      url.searchParams.set("scope", scope);
      const response = await fetch(url, { headers: { Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}` } });
      assert.equal(response.status, 200, `token for ${user}: ${response.status}`);
      const { token } = (await response.json()) as { token: string };
      return { Authorization: `Bearer ${token}` };
    };
  }

  /** Stops listening and drops open connections. Idempotent. */
  async close(): Promise<void> {
    if (!this.server.listening) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(request: IncomingMessage, response: ServerResponse): void {
    const url = new URL(request.url ?? "/", this.realm);
    const user = this.user(request.headers.authorization);
    this.requests.push({ service: url.searchParams.get("service"), scopes: url.searchParams.getAll("scope"), user: user?.name });
    if (url.pathname !== "/token") {
      response.writeHead(404).end();
      return;
    }
    if (this.mode === "fail") {
      response.writeHead(500, { "Content-Type": "text/plain" }).end("token service down for maintenance");
      return;
    }
    if (this.mode === "garbage") {
      response.writeHead(200, { "Content-Type": "text/html" }).end("<html>sign in first</html>");
      return;
    }
    if (this.mode === "refuse" || (user !== undefined && !user.valid)) {
      response.writeHead(401, { "WWW-Authenticate": `Basic realm="${this.service}"`, "Content-Type": "application/json" });
      response.end(JSON.stringify({ details: "authentication required" }));
      return;
    }
    if (url.searchParams.get("service") !== this.service) {
      response.writeHead(400, { "Content-Type": "application/json" }).end(JSON.stringify({ details: "unknown service" }));
      return;
    }
    const grants = url.searchParams.getAll("scope").flatMap((scope) => this.grant(scope, user?.name));
    const token = this.sign(grants, user?.name ?? "", this.mode === "untrusted" ? this.untrusted : this.trusted);
    response.writeHead(200, { "Content-Type": "application/json" });
    response.end(JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() }));
  }

  private user(header: string | undefined): { name: string; valid: boolean } | undefined {
    const match = /^Basic\s+(\S+)$/i.exec(header ?? "");
    if (!match) return undefined;
    const decoded = Buffer.from(match[1]!, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    const name = colon < 0 ? decoded : decoded.slice(0, colon);
    return { name, valid: colon >= 0 && this.users.get(name) === decoded.slice(colon + 1) };
  }

  /** What `scope` (`repository:<name>:<actions>`) gives `user`: all asked actions for a known user, else public pulls. */
  private grant(scope: string, user: string | undefined): Grant[] {
    const match = /^(repository):(.+):([a-z*,]+)$/.exec(scope);
    if (!match) return [];
    const [, type, name, actions] = match as unknown as [string, string, string, string];
    const asked = actions.split(",");
    const allowed =
      user !== undefined ? asked : this.publicPrefixes.some((prefix) => name.startsWith(prefix)) ? asked.filter((a) => a === "pull") : [];
    return [{ type, name, actions: allowed }];
  }

  private sign(access: Grant[], subject: string, signer: SigningKey): string {
    const now = Math.floor(Date.now() / 1000);
    const encode = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString("base64url");
    const header = { typ: "JWT", alg: "ES256", x5c: [signer.certDer.toString("base64")] };
    const claims = { iss: this.issuer, sub: subject, aud: this.service, exp: now + 300, nbf: now - 60, iat: now, jti: randomUUID(), access };
    const input = `${encode(header)}.${encode(claims)}`;
    const signature = sign("sha256", Buffer.from(input), { key: signer.key, dsaEncoding: "ieee-p1363" });
    return `${input}.${signature.toString("base64url")}`;
  }
}
