// ImageSpec.exist() against real servers: Debian's docker-registry (distribution v2) on 127.0.0.1 without auth,
// with htpasswd (Basic) auth, and with token auth backed by a token server of the test's own — anonymously and
// with credentials from a docker config.json (`registryConfig`); then protocol details no real registry here
// shows, against a scripted one. exist() answers true, false, or undefined when the registry cannot tell
// (unreachable, needs credentials, refuses them, server error): a 401 is never "exists" nor "absent".
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { type AddressInfo } from "node:net";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";

import { ImageSpecError } from "../src/task/errors.js";
import { ImageSpec, type ImageSpecOptions } from "../src/task/image-spec.js";
import { parseChallenge, parseChallenges, readRegistryCredentials, RegistryCredentials, registryTarget } from "../src/task/image-registry.js";
import { runToEnd } from "./workers/child.js";
import {
  TestRegistry,
  TokenServer,
  basicAuth,
  bcrypt,
  freePort,
  manifestStatus,
  noAuth,
  pushImage,
  registrySkipReason,
} from "./registry-servers.js";

const REPO = new URL("..", import.meta.url).pathname;
const EXIST_WORKER = new URL("./workers/image-exist-worker.ts", import.meta.url).pathname;

const configDirs: string[] = [];
after(() => {
  for (const dir of configDirs) rmSync(dir, { recursive: true, force: true });
});

/** Writes a docker config.json holding `content` (its `auths`, or the whole file as text) to a fresh directory. */
function dockerConfig(content: { auths?: Record<string, Record<string, string>>; [field: string]: unknown } | string): string {
  const dir = mkdtempSync(join(tmpdir(), "cachet-docker-config-"));
  configDirs.push(dir);
  const path = join(dir, "config.json");
  writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content, null, 2), { mode: 0o600 });
  return path;
}

/** A config.json `auth` value: base64 of `user:password`. */
const authOf = (user: string, password: string): string => Buffer.from(`${user}:${password}`).toString("base64");

/**
 * Runs exist() for each spec in a child process and returns its answers and everything it printed, so a test can
 * check that no secret appears anywhere: in an answer, an error (message, cause, stack), a warning or any output.
 */
async function existInChild(specs: ImageSpecOptions[], timeoutMs?: number): Promise<{ answers: unknown[]; output: string }> {
  const run = await runToEnd(["--import", "tsx", EXIST_WORKER, JSON.stringify({ specs, timeoutMs })], {}, { cwd: REPO });
  assert.equal(run.code, 0, `the worker failed: ${run.stderr}${run.stdout}`);
  const report = JSON.parse(run.stdout.trim().split("\n").at(-1)!) as { answers: unknown[]; processWarnings: string[] };
  assert.deepEqual(report.processWarnings, [], "no process warnings");
  assert.equal(run.stderr, "", "nothing on stderr");
  return { answers: report.answers, output: run.stdout + run.stderr };
}

/** Asserts that none of the secrets appears in `text`, as given or in base64 (as an `auth` or a Basic header holds it). */
function assertNoSecret(text: string, user: string, password: string): void {
  for (const secret of [password, authOf(user, password), Buffer.from(password).toString("base64")]) {
    assert.ok(!text.includes(secret), `a secret appears in: ${text}`);
  }
}

describe("ImageSpec.exist() against a real registry (docker-registry on 127.0.0.1)", { skip: registrySkipReason }, () => {
  const dir = mkdtempSync(join(tmpdir(), "cachet-registry-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe("without auth", () => {
    let registry: TestRegistry;
    before(async () => {
      registry = await TestRegistry.start(join(dir, "open"));
    });
    after(() => registry?.stop());

    test("true for a pushed image, false for another tag or repository", async () => {
      const spec = new ImageSpec({ name: "cachet-test/pipeline", registry: registry.host, packages: ["sharp"] });
      assert.equal(await spec.exist(), false, "before the push");
      await pushImage(registry, "cachet-test/pipeline", spec.tag);
      assert.equal(await spec.exist(), true);
      assert.equal(await spec.withPackages("zod").exist(), false, "another tag of the same repository");
      assert.equal(await new ImageSpec({ name: "cachet-test/never-pushed", registry: registry.host }).exist(), false);
    });

    test("undefined when the registry answers 500 (its storage is broken)", async () => {
      const spec = new ImageSpec({ name: "broken", registry: `${registry.host}/cachet-test` });
      await pushImage(registry, "cachet-test/broken", spec.tag);
      assert.equal(await spec.exist(), true);
      // The tags folder becomes a file: the registry cannot read any tag of the repository and answers 500.
      const tags = join(registry.storage, "docker/registry/v2/repositories/cachet-test/broken/_manifests/tags");
      renameSync(tags, `${tags}.moved`);
      writeFileSync(tags, "not a directory");
      assert.equal(await manifestStatus(registry, "cachet-test/broken", spec.tag, noAuth), 500);
      assert.equal(await spec.exist(), undefined);
    });

    test("undefined when nothing listens on the registry's port", async () => {
      const closed = await freePort();
      const spec = new ImageSpec({ name: "app", registry: `127.0.0.1:${closed}` });
      assert.equal(await spec.exist({ timeoutMs: 3000 }), undefined);
    });
  });

  describe("with htpasswd (Basic) auth", () => {
    let registry: TestRegistry;
    const pusher = basicAuth("pusher", "s3cret");
    before(async () => {
      const htpasswd = join(dir, "basic", "htpasswd");
      mkdirSync(join(dir, "basic"));
      writeFileSync(htpasswd, `pusher:${bcrypt("s3cret")}\n`);
      registry = await TestRegistry.start(join(dir, "basic"), ["  htpasswd:", "    realm: cachet-test-basic", `    path: ${htpasswd}`]);
    });
    after(() => registry?.stop());

    test("undefined, not true, for an image that is there: without credentials the registry cannot be asked", async () => {
      const spec = new ImageSpec({ name: "app", registry: `${registry.host}/cachet-test` });
      await pushImage(registry, "cachet-test/app", spec.tag, pusher);
      assert.equal(await manifestStatus(registry, "cachet-test/app", spec.tag, pusher), 200, "the push worked");
      assert.equal(await manifestStatus(registry, "cachet-test/app", spec.tag, noAuth), 401);
      assert.equal(await spec.exist(), undefined);
    });

    test("undefined, not false, for an image that is not there", async () => {
      const spec = new ImageSpec({ name: "app", registry: `${registry.host}/cachet-test`, packages: ["never-built"] });
      assert.equal(await manifestStatus(registry, "cachet-test/app", spec.tag, pusher), 404);
      assert.equal(await spec.exist(), undefined);
      assert.equal(await new ImageSpec({ name: "nobody", registry: registry.host }).exist(), undefined);
    });

    for (const [form, entry] of [
      ["an auth field", { auth: authOf("pusher", "s3cret") }],
      ["username and password fields", { username: "pusher", password: "s3cret" }],
    ] as const) {
      test(`with the right credentials in registryConfig (${form}): true for the pushed image, false for others`, async () => {
        const registryConfig = dockerConfig({ auths: { [registry.host]: entry, "ghcr.io": { auth: authOf("someone", "else") } } });
        const spec = new ImageSpec({ name: "app", registry: `${registry.host}/cachet-test`, registryConfig });
        await pushImage(registry, "cachet-test/app", spec.tag, pusher);
        assert.equal(await spec.exist(), true);
        assert.equal(await spec.withPackages("never-built").exist(), false, "another tag");
        assert.equal(await new ImageSpec({ name: "nobody", registry: registry.host, registryConfig }).exist(), false, "a repository never pushed");
      });
    }

    test("a config key written as a URL (http://host/v2/) names the same registry", async () => {
      const registryConfig = dockerConfig({ auths: { [`http://${registry.host}/v2/`]: { auth: authOf("pusher", "s3cret") } } });
      const spec = new ImageSpec({ name: "app", registry: `${registry.host}/cachet-test`, registryConfig, packages: ["url-key"] });
      await pushImage(registry, "cachet-test/app", spec.tag, pusher);
      assert.equal(await spec.exist(), true);
    });

    test("with a wrong password, or credentials filed for another host only: undefined, without a secret in any output", async () => {
      const spec = new ImageSpec({ name: "app", registry: `${registry.host}/cachet-test`, packages: ["wrong-password"] });
      await pushImage(registry, "cachet-test/app", spec.tag, pusher);
      const wrong = dockerConfig({ auths: { [registry.host]: { auth: authOf("pusher", "not-the-s3cret") } } });
      const elsewhere = dockerConfig({ auths: { "127.0.0.1": { auth: authOf("pusher", "s3cret") }, "ghcr.io": { username: "pusher", password: "s3cret" } } });
      assert.equal(await new ImageSpec({ ...spec.toOptions(), registryConfig: wrong }).exist(), undefined, "in process: undefined, no rejection");
      const { answers, output } = await existInChild([
        { ...spec.toOptions(), registryConfig: wrong },
        { ...spec.toOptions(), registryConfig: wrong, packages: ["absent"] },
        { ...spec.toOptions(), registryConfig: elsewhere },
      ]);
      assert.deepEqual(answers, [{ answer: "undefined" }, { answer: "undefined" }, { answer: "undefined" }]);
      assertNoSecret(output, "pusher", "not-the-s3cret");
      assertNoSecret(output, "pusher", "s3cret");
    });
  });

  describe("with token auth (a token server of the test's own)", () => {
    let tokens: TokenServer;
    let registry: TestRegistry;
    let pushed: ImageSpec;
    let hidden: ImageSpec;
    let pusher: ReturnType<TokenServer["userAuth"]>;
    before(async () => {
      tokens = await TokenServer.start(join(dir, "token-server"), { users: { pusher: "s3cret" }, publicPrefixes: ["cachet-test/"] });
      registry = await TestRegistry.start(join(dir, "token"), tokens.registryAuth());
      pusher = tokens.userAuth("pusher", "s3cret");
      pushed = new ImageSpec({ name: "app", registry: `${registry.host}/cachet-test`, packages: ["sharp"] });
      await pushImage(registry, "cachet-test/app", pushed.tag, pusher);
      hidden = new ImageSpec({ name: "app", registry: `${registry.host}/private`, packages: ["sharp"] });
      await pushImage(registry, "private/app", hidden.tag, pusher);
    });
    after(async () => {
      await registry?.stop();
      await tokens?.close();
    });
    const anonymousRequests = () => tokens.requests.filter((request) => request.user === undefined);

    test("the registry really asks for a token: without one it answers 401 with a Bearer challenge", async () => {
      const response = await fetch(`${registry.base}/v2/cachet-test/app/manifests/${pushed.tag}`, { method: "HEAD" });
      assert.equal(response.status, 401);
      assert.deepEqual(parseChallenge(response.headers.get("www-authenticate")), {
        scheme: "bearer",
        params: { realm: tokens.realm, service: tokens.service, scope: "repository:cachet-test/app:pull" },
      });
    });

    test("true for a pushed public image, through an anonymous token for the pull scope the registry asked for", async () => {
      tokens.requests.length = 0;
      assert.equal(await pushed.exist(), true);
      assert.deepEqual(tokens.requests, [{ service: tokens.service, scopes: ["repository:cachet-test/app:pull"], user: undefined }]);
    });

    test("false for another tag, or a repository never pushed (404 after the token)", async () => {
      tokens.requests.length = 0;
      assert.equal(await pushed.withPackages("zod").exist(), false);
      assert.equal(await new ImageSpec({ name: "never-pushed", registry: `${registry.host}/cachet-test` }).exist(), false);
      assert.equal(anonymousRequests().length, 2, "one anonymous token each");
    });

    test("undefined for a repository the anonymous token does not cover (denied scope: 401 insufficient_scope)", async () => {
      tokens.requests.length = 0;
      assert.equal(await manifestStatus(registry, "private/app", hidden.tag, pusher), 200, "it is there");
      assert.equal(await hidden.exist(), undefined);
      assert.deepEqual(anonymousRequests(), [{ service: tokens.service, scopes: ["repository:private/app:pull"], user: undefined }]);
    });

    for (const [mode, what] of [
      ["refuse", "the token server answers 401"],
      ["fail", "the token server answers 500"],
      ["garbage", "the token server answers something that is not JSON"],
      ["untrusted", "the token is signed by a key the registry does not trust"],
    ] as const) {
      test(`undefined when ${what}`, async () => {
        tokens.mode = mode;
        tokens.requests.length = 0;
        try {
          assert.equal(await pushed.exist(), undefined);
          assert.equal(tokens.requests.length, 1, "asked the token server once");
        } finally {
          tokens.mode = "grant";
        }
        assert.equal(await pushed.exist(), true, "and true again once tokens are good");
      });
    }

    test("with the right credentials: a token asked with them (Basic) covers the private repository", async () => {
      const registryConfig = dockerConfig({ auths: { [registry.host]: { auth: authOf("pusher", "s3cret") } } });
      tokens.requests.length = 0;
      const privately = new ImageSpec({ ...hidden.toOptions(), registryConfig });
      assert.equal(privately.tag, hidden.tag, "registryConfig does not change the tag");
      assert.equal(await privately.exist(), true);
      assert.equal(await privately.withPackages("zod").exist(), false, "another tag of the private repository");
      assert.equal(await new ImageSpec({ name: "never-pushed", registry: `${registry.host}/private`, registryConfig }).exist(), false);
      assert.equal(await new ImageSpec({ ...pushed.toOptions(), registryConfig }).exist(), true, "and public ones");
      assert.deepEqual(tokens.requests, [
        { service: tokens.service, scopes: ["repository:private/app:pull"], user: "pusher" },
        { service: tokens.service, scopes: ["repository:private/app:pull"], user: "pusher" },
        { service: tokens.service, scopes: ["repository:private/never-pushed:pull"], user: "pusher" },
        { service: tokens.service, scopes: ["repository:cachet-test/app:pull"], user: "pusher" },
      ]);
    });

    test("with wrong credentials: undefined (the token server refuses them), without a secret in any output", async () => {
      const registryConfig = dockerConfig({ auths: { [registry.host]: { username: "pusher", password: "wrong-s3cret" } } });
      tokens.requests.length = 0;
      assert.equal(await new ImageSpec({ ...hidden.toOptions(), registryConfig }).exist(), undefined);
      assert.deepEqual(tokens.requests, [{ service: tokens.service, scopes: ["repository:private/app:pull"], user: "pusher" }], "asked once, with them");
      const { answers, output } = await existInChild([
        { ...hidden.toOptions(), registryConfig },
        { ...pushed.toOptions(), registryConfig },
        { ...hidden.toOptions(), registryConfig, packages: ["absent"] },
      ]);
      assert.deepEqual(answers, [{ answer: "undefined" }, { answer: "undefined" }, { answer: "undefined" }], "a refused login is not answered anonymously");
      assertNoSecret(output, "pusher", "wrong-s3cret");
    });

    test("undefined when the token server does not answer at all", async () => {
      const gone = await TokenServer.start(join(dir, "token-server-gone"));
      let lonely: TestRegistry | undefined;
      try {
        lonely = await TestRegistry.start(join(dir, "token-gone"), gone.registryAuth());
        await gone.close();
        const response = await fetch(`${lonely.base}/v2/cachet-test/app/manifests/latest`, { method: "HEAD" });
        assert.equal(parseChallenge(response.headers.get("www-authenticate"))?.params.realm, gone.realm, "the realm is the closed server");
        assert.equal(await new ImageSpec({ name: "app", registry: `${lonely.host}/cachet-test` }).exist({ timeoutMs: 5000 }), undefined);
      } finally {
        await gone.close();
        await lonely?.stop();
      }
    });
  });
});

/** A scripted registry on 127.0.0.1: `handle` answers every request. */
async function fakeRegistry(handle: (request: IncomingMessage, response: ServerResponse, port: number) => void): Promise<{ server: Server; port: number }> {
  let port = 0;
  const server = createServer((request, response) => handle(request, response, port));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
  return { server, port };
}

describe("ImageSpec.exist() protocol details (scripted registry)", () => {
  const servers: Server[] = [];
  after(() => {
    for (const server of servers) {
      server.closeAllConnections();
      server.close();
    }
  });

  async function registry(handle: Parameters<typeof fakeRegistry>[0]): Promise<number> {
    const { server, port } = await fakeRegistry(handle);
    servers.push(server);
    return port;
  }

  test("a 401 Bearer challenge is answered with an anonymous token", async () => {
    const seen: string[] = [];
    const port = await registry((request, response, self) => {
      const url = new URL(request.url!, `http://127.0.0.1:${self}`);
      seen.push(`${request.method} ${url.pathname}${url.search}`);
      if (url.pathname === "/token") {
        assert.equal(url.searchParams.get("service"), "fake-registry");
        assert.equal(url.searchParams.get("scope"), "repository:org/app:pull");
        response.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ token: "t0k3n" }));
        return;
      }
      if (request.headers.authorization !== "Bearer t0k3n") {
        response
          .writeHead(401, {
            "WWW-Authenticate": `Bearer realm="http://127.0.0.1:${self}/token",service="fake-registry",scope="repository:org/app:pull"`,
          })
          .end();
        return;
      }
      assert.match(String(request.headers.accept), /application\/vnd\.oci\.image\.manifest\.v1\+json/);
      response.writeHead(url.pathname.endsWith(`/manifests/${present.tag}`) ? 200 : 404).end();
    });
    const present = new ImageSpec({ name: "app", registry: `127.0.0.1:${port}/org` });
    assert.equal(await present.exist(), true);
    assert.equal(await present.withCommands("x").exist(), false);
    assert.ok(seen.some((line) => line.startsWith("GET /token?")));
    assert.ok(seen.every((line) => !line.startsWith("GET /v2/")), "the manifest is asked with HEAD");
  });

  test("undefined when the token does not help, for Basic auth, 403 and 5xx", async () => {
    const stillDenied = await registry((request, response, self) => {
      if (request.url!.startsWith("/token")) {
        response.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ access_token: "nope" }));
        return;
      }
      response.writeHead(401, { "WWW-Authenticate": `Bearer realm="http://127.0.0.1:${self}/token"` }).end();
    });
    assert.equal(await new ImageSpec({ name: "app", registry: `127.0.0.1:${stillDenied}` }).exist(), undefined);
    const basic = await registry((_request, response) => {
      response.writeHead(401, { "WWW-Authenticate": 'Basic realm="registry"' }).end();
    });
    assert.equal(await new ImageSpec({ name: "app", registry: `127.0.0.1:${basic}` }).exist(), undefined);
    for (const status of [403, 500, 503]) {
      const port = await registry((_request, response) => response.writeHead(status).end());
      assert.equal(await new ImageSpec({ name: "app", registry: `127.0.0.1:${port}` }).exist(), undefined, String(status));
    }
  });

  test("undefined when the registry never answers: the client gives up and closes the connection", { timeout: 30_000 }, async () => {
    // Checked by what the server sees (the client hanging up), not by a clock: a hang fails on the test's timeout.
    let hungUp: () => void;
    const closed = new Promise<void>((resolve) => (hungUp = resolve));
    const silent = await registry((request) => {
      request.socket.on("close", () => hungUp());
    });
    assert.equal(await new ImageSpec({ name: "app", registry: `127.0.0.1:${silent}` }).exist({ timeoutMs: 300 }), undefined);
    await closed;
  });

  test("a registry that refuses HEAD is asked with GET, and its error codes are read", async () => {
    const port = await registry((request, response) => {
      if (request.method === "HEAD") {
        response.writeHead(405).end();
        return;
      }
      response
        .writeHead(400, { "Content-Type": "application/json" })
        .end(JSON.stringify({ errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }] }));
    });
    assert.equal(await new ImageSpec({ name: "app", registry: `127.0.0.1:${port}` }).exist(), false);
  });

  test("a registry that refuses HEAD and asks for a token gets the token for its GET", async () => {
    const seen: string[] = [];
    const port = await registry((request, response, self) => {
      const url = new URL(request.url!, `http://127.0.0.1:${self}`);
      seen.push(`${request.method} ${url.pathname}${request.headers.authorization ? " (token)" : ""}`);
      if (url.pathname === "/token") {
        response.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ token: "t0k3n" }));
      } else if (request.method === "HEAD") {
        response.writeHead(405).end();
      } else if (request.headers.authorization !== "Bearer t0k3n") {
        response.writeHead(401, { "WWW-Authenticate": `Bearer realm="http://127.0.0.1:${self}/token",service="fake"` }).end();
      } else {
        response.writeHead(url.pathname.endsWith(`/manifests/${present.tag}`) ? 200 : 404).end();
      }
    });
    const present = new ImageSpec({ name: "app", registry: `127.0.0.1:${port}` });
    assert.equal(await present.exist(), true, seen.join(", "));
    assert.equal(await present.withCommands("x").exist(), false, seen.join(", "));
  });

  test("a Bearer challenge is found among several (fetch joins WWW-Authenticate headers with a comma)", async () => {
    for (const order of [["basic", "bearer"], ["bearer", "basic"]]) {
      const port = await registry((request, response, self) => {
        if (request.url!.startsWith("/token")) {
          const url = new URL(request.url!, `http://127.0.0.1:${self}`);
          assert.equal(url.searchParams.get("service"), "fake", "the Bearer challenge's own parameters, not Basic's");
          response.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ token: "t0k3n" }));
        } else if (request.headers.authorization === "Bearer t0k3n") {
          response.writeHead(200).end();
        } else {
          const challenges = {
            basic: 'Basic realm="fake registry"',
            bearer: `Bearer realm="http://127.0.0.1:${self}/token",service="fake"`,
          };
          response.writeHead(401, [...order.map((scheme) => ["WWW-Authenticate", challenges[scheme as "basic" | "bearer"]])].flat()).end();
        }
      });
      assert.equal(await new ImageSpec({ name: "app", registry: `127.0.0.1:${port}` }).exist(), true, order.join(" then "));
    }
  });

  test("WWW-Authenticate parsing", () => {
    assert.deepEqual(parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull"'), {
      scheme: "bearer",
      params: { realm: "https://auth.docker.io/token", service: "registry.docker.io", scope: "repository:library/ubuntu:pull" },
    });
    assert.deepEqual(parseChallenge("Basic realm=x"), { scheme: "basic", params: { realm: "x" } });
    assert.equal(parseChallenge(null), undefined);
    assert.deepEqual(parseChallenges('Basic realm="a, b", Bearer realm="https://auth.example/token",service="svc", Negotiate'), [
      { scheme: "basic", params: { realm: "a, b" } },
      { scheme: "bearer", params: { realm: "https://auth.example/token", service: "svc" } },
      { scheme: "negotiate", params: {} },
    ]);
    assert.deepEqual(parseChallenges(""), []);
  });
});

describe("registryConfig: credentials from a docker config.json", () => {
  const hub = registryTarget(undefined, "app");
  const local = registryTarget("127.0.0.1:5000/ns", "app");
  const read = async (config: Parameters<typeof dockerConfig>[0], target = local) => {
    const credentials = await readRegistryCredentials(dockerConfig(config), target);
    return credentials && { username: credentials.username, authorization: credentials.basicAuthorization() };
  };
  const basic = (user: string, password: string) => ({ username: user, authorization: `Basic ${authOf(user, password)}` });

  test("matched by host and port; auth (base64 user:password, the password may hold ':') or username and password", async () => {
    assert.deepEqual(await read({ auths: { "127.0.0.1:5000": { auth: authOf("me", "pa:ss") } } }), basic("me", "pa:ss"));
    assert.deepEqual(await read({ auths: { "127.0.0.1:5000": { username: "me", password: "pw" } } }), basic("me", "pw"));
    assert.deepEqual(await read({ auths: { "127.0.0.1:5000": { auth: authOf("a", "1"), username: "b", password: "2" } } }), basic("a", "1"), "auth wins, as in docker");
    assert.deepEqual(await read({ auths: { "http://127.0.0.1:5000/v2/": { auth: authOf("me", "pw") } } }), basic("me", "pw"), "a URL key");
    assert.equal(await read({ auths: { "127.0.0.1:5001": { auth: authOf("me", "pw") } } }), undefined, "another port");
    assert.equal(await read({ auths: { "127.0.0.1": { auth: authOf("me", "pw") } } }), undefined, "no port");
    assert.equal(await read({ auths: { "ghcr.io": { auth: authOf("me", "pw") } } }), undefined, "another host");
    assert.equal(await read({}), undefined, "no auths");
    assert.equal(await read({ auths: {}, credsStore: "desktop" }), undefined, "credential helpers are not run");
    assert.equal(await read({ auths: { "127.0.0.1:5000": {} }, credsStore: "desktop" }), undefined, "an entry without credentials (kept by a helper)");
    assert.equal(await read({ auths: { "127.0.0.1:5000": { identitytoken: "refresh-token" } } }), undefined, "an identity token is not used");
    assert.deepEqual(
      await read({ auths: { "http://127.0.0.1:5000": {}, "127.0.0.1:5000/v2/": { username: "second", password: "pw" } } }),
      basic("second", "pw"),
      "the first entry for the host that holds credentials",
    );
    assert.deepEqual(
      await read({ auths: { "https://127.0.0.1:5000": { auth: authOf("url", "1") }, "127.0.0.1:5000": { auth: authOf("bare", "2") } } }),
      basic("bare", "2"),
      "docker's own key (the bare host) first",
    );
  });

  test("Docker Hub: every name docker files it under, its own key first", async () => {
    assert.deepEqual(registryTarget("docker.io/acme", "app"), { baseUrl: "https://registry-1.docker.io", repository: "acme/app" });
    for (const key of ["https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io", "https://registry.hub.docker.com"]) {
      assert.deepEqual(await read({ auths: { [key]: { auth: authOf("hubber", "pw") } } }, hub), basic("hubber", "pw"), key);
    }
    assert.deepEqual(
      await read({ auths: { "docker.io": { auth: authOf("alias", "1") }, "https://index.docker.io/v1/": { auth: authOf("canonical", "2") } } }, hub),
      basic("canonical", "2"),
    );
    assert.equal(await read({ auths: { "ghcr.io": { auth: authOf("me", "pw") } } }, hub), undefined);
    assert.equal(await read({ auths: { "https://index.docker.io/v1/": { auth: authOf("me", "pw") } } }, local), undefined, "Hub's credentials are Hub's only");
  });

  test("a file that cannot be read, is not JSON, or holds a malformed entry for the registry is an ImageSpecError without the secret", async () => {
    const secret = "hunter2-very-secret";
    const rejects = async (path: string, message: RegExp, password = secret) => {
      await assert.rejects(readRegistryCredentials(path, local), (error: unknown) => {
        assert.ok(error instanceof ImageSpecError, String(error));
        assert.match(error.message, message);
        assertNoSecret(inspect(error, { depth: 8, showHidden: true }), "me", password);
        return true;
      });
    };
    const missing = join(tmpdir(), "cachet-no-such-dir", "config.json");
    await rejects(missing, /^ImageSpec option "registryConfig" \(.*config\.json\): cannot read the file: ENOENT/);
    await rejects(dockerConfig(`{"auths": {"127.0.0.1:5000": {"auth": "${authOf("me", secret)}",}}}`), /: not valid JSON \(expected a docker config\.json\)$/);
    await rejects(dockerConfig(`{"auths": {"127.0.0.1:5000": {"password": "${secret}" "username": "me"}}}`), /: not valid JSON/);
    // V8's own message quotes the text around an unexpected token (`..."assword": s3cr3tpass}"...`): not passed on.
    await rejects(dockerConfig(`{"auths": {"127.0.0.1:5000": {"username": "me", "password": s3cr3tpass}}}`), /: not valid JSON/, "s3cr3tpass");
    await rejects(dockerConfig("[]"), /: not a JSON object/);
    await rejects(dockerConfig({ auths: [] as never }), /: "auths" is not an object/);
    await rejects(dockerConfig({ auths: { "127.0.0.1:5000": `me:${secret}` as never } }), /: auths\["127\.0\.0\.1:5000"\] is not an object$/);
    await rejects(dockerConfig({ auths: { "127.0.0.1:5000": { auth: `me:${secret}` } } }), /: auths\["127\.0\.0\.1:5000"\]: "auth" is not the base64 of "user:password"$/);
    await rejects(dockerConfig({ auths: { "127.0.0.1:5000": { auth: Buffer.from(secret).toString("base64") } } }), /"auth" is not the base64/);
    await rejects(dockerConfig({ auths: { "127.0.0.1:5000": { username: "me", password: 42 as never } } }), /"password" is not a string/);
    // Malformed entries for other registries are not this registry's business.
    assert.deepEqual(await read({ auths: { "ghcr.io": { auth: "!!" }, "127.0.0.1:5000": { auth: authOf("me", "pw") } } }), basic("me", "pw"));
    if (process.getuid?.() !== 0) {
      const unreadable = dockerConfig({});
      chmodSync(unreadable, 0o000);
      await rejects(unreadable, /cannot read the file: EACCES/);
    }
  });

  test("the password does not show when the credentials are inspected, logged or serialized", () => {
    const credentials = new RegistryCredentials("me", "hunter2-very-secret");
    for (const shown of [inspect(credentials, { showHidden: true, depth: 8 }), JSON.stringify(credentials), String(credentials), `${Object.values(credentials)}`]) {
      assertNoSecret(shown, "me", "hunter2-very-secret");
    }
    assert.ok(inspect(credentials).includes("me"), "the user name does");
    assert.equal(credentials.basicAuthorization(), `Basic ${authOf("me", "hunter2-very-secret")}`);
  });

  test("exist() rejects with the ImageSpecError, in a process that prints nothing of the secret", async () => {
    const secret = "hunter2-very-secret";
    const { answers, output } = await existInChild([
      { name: "app", registry: "127.0.0.1:9/ns", registryConfig: dockerConfig(`{"auths": {"127.0.0.1:9": {"auth": "${authOf("me", secret)}",}}}`) },
      { name: "app", registry: "127.0.0.1:9/ns", registryConfig: dockerConfig({ auths: { "127.0.0.1:9": { auth: `me:${secret}` } } }) },
    ]);
    assert.equal(answers.length, 2);
    for (const answer of answers) assert.match((answer as { rejected: string }).rejected, /ImageSpecError: ImageSpec option "registryConfig"/);
    assertNoSecret(output, "me", secret);
  });
});

describe("registryConfig credentials on the wire (scripted registry)", () => {
  const servers: Server[] = [];
  after(() => {
    for (const server of servers) {
      server.closeAllConnections();
      server.close();
    }
  });
  async function registry(handle: Parameters<typeof fakeRegistry>[0], host = "127.0.0.1"): Promise<number> {
    let port = 0;
    const server = createServer((request, response) => handle(request, response, port));
    await new Promise<void>((resolve) => server.listen(0, host, resolve));
    port = (server.address() as AddressInfo).port;
    servers.push(server);
    return port;
  }

  test("Basic auth: the first request carries nothing; the challenge is answered with the credentials", async () => {
    const seen: string[] = [];
    const port = await registry((request, response) => {
      seen.push(`${request.method} ${request.headers.authorization ?? "-"}`);
      if (request.headers.authorization !== `Basic ${authOf("me", "pw")}`) {
        response.writeHead(401, { "WWW-Authenticate": 'Basic realm="fake"' }).end();
      } else {
        response.writeHead(request.url!.endsWith(`/manifests/${present.tag}`) ? 200 : 404).end();
      }
    });
    const registryConfig = dockerConfig({ auths: { [`127.0.0.1:${port}`]: { auth: authOf("me", "pw") } } });
    const present = new ImageSpec({ name: "app", registry: `127.0.0.1:${port}`, registryConfig });
    assert.equal(await present.exist(), true);
    assert.deepEqual(seen, ["HEAD -", `HEAD Basic ${authOf("me", "pw")}`]);
    assert.equal(await present.withCommands("x").exist(), false);
  });

  test("Bearer: the credentials go to the token realm only; the registry gets the token", async () => {
    const seen: string[] = [];
    const port = await registry((request, response, self) => {
      const url = new URL(request.url!, `http://127.0.0.1:${self}`);
      seen.push(`${url.pathname.startsWith("/token") ? "token" : "registry"} ${request.headers.authorization ?? "-"}`);
      if (url.pathname === "/token") {
        const ok = request.headers.authorization === `Basic ${authOf("me", "pw")}`;
        response.writeHead(ok ? 200 : 401, { "Content-Type": "application/json" }).end(JSON.stringify(ok ? { token: "private-t0k3n" } : {}));
      } else if (request.headers.authorization === "Bearer private-t0k3n") {
        response.writeHead(200).end();
      } else {
        response
          .writeHead(401, { "WWW-Authenticate": `Basic realm="fake", Bearer realm="http://127.0.0.1:${self}/token",service="fake"` })
          .end();
      }
    });
    const registryConfig = dockerConfig({ auths: { [`127.0.0.1:${port}`]: { username: "me", password: "pw" } } });
    assert.equal(await new ImageSpec({ name: "app", registry: `127.0.0.1:${port}`, registryConfig }).exist(), true);
    assert.deepEqual(seen, ["registry -", `token Basic ${authOf("me", "pw")}`, "registry Bearer private-t0k3n"]);
  });

  test("a redirect to another origin (another port) does not carry the credentials along", async () => {
    const elsewhere: string[] = [];
    const storage = await registry((request, response) => {
      elsewhere.push(request.headers.authorization ?? "-");
      response.writeHead(200).end();
    });
    const port = await registry((request, response) => {
      if (request.headers.authorization !== `Basic ${authOf("me", "pw")}`) response.writeHead(401, { "WWW-Authenticate": 'Basic realm="fake"' }).end();
      else response.writeHead(307, { Location: `http://127.0.0.1:${storage}/elsewhere` }).end();
    });
    const registryConfig = dockerConfig({ auths: { [`127.0.0.1:${port}`]: { auth: authOf("me", "pw") } } });
    assert.equal(await new ImageSpec({ name: "app", registry: `127.0.0.1:${port}`, registryConfig }).exist(), true);
    assert.deepEqual(elsewhere, ["-"]);
  });

  const outward = Object.values(networkInterfaces())
    .flat()
    .find((address) => address?.family === "IPv4" && !address.internal)?.address;
  test(
    "credentials are not sent over plain http to a host that is not this machine's loopback",
    { skip: outward === undefined ? "this machine has no non-loopback IPv4 address to serve a token realm on" : false },
    async () => {
      const tokenRequests: string[] = [];
      const realm = await registry((request, response) => {
        tokenRequests.push(request.headers.authorization ?? "-");
        response.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ token: "anonymous-t0k3n" }));
      }, outward);
      const port = await registry((request, response) => {
        if (request.headers.authorization === "Bearer anonymous-t0k3n") response.writeHead(404).end();
        else response.writeHead(401, { "WWW-Authenticate": `Bearer realm="http://${outward}:${realm}/token",service="fake"` }).end();
      });
      const registryConfig = dockerConfig({ auths: { [`127.0.0.1:${port}`]: { auth: authOf("me", "pw") } } });
      assert.equal(await new ImageSpec({ name: "app", registry: `127.0.0.1:${port}`, registryConfig }).exist(), false);
      assert.deepEqual(tokenRequests, ["-"], "the token was asked anonymously");
    },
  );
});
