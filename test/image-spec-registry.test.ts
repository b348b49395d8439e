// ImageSpec.exist() against real servers: Debian's docker-registry (distribution v2) on 127.0.0.1 without auth,
// with htpasswd (Basic) auth, and with token auth backed by a token server of the test's own; then protocol
// details no real registry here shows, against a scripted one. exist() answers true, false, or undefined when the
// registry cannot tell (unreachable, needs credentials, server error): a 401 is never "exists" nor "absent".
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { ImageSpec } from "../src/task/image-spec.js";
import { parseChallenge, parseChallenges } from "../src/task/image-registry.js";
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
