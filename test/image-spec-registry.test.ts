import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createNetServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";

import { ImageSpec } from "../src/task/image-spec.js";
import { parseChallenge } from "../src/task/image-registry.js";

/** A TCP port nothing listens on right now. */
async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const sha256 = (data: Uint8Array | string): string => `sha256:${createHash("sha256").update(data).digest("hex")}`;

/** Uploads a blob through the OCI distribution API (POST an upload, PUT its bytes with the digest). */
async function pushBlob(base: string, repository: string, data: Uint8Array): Promise<string> {
  const digest = sha256(data);
  const started = await fetch(`${base}/v2/${repository}/blobs/uploads/`, { method: "POST" });
  assert.equal(started.status, 202, `blob upload start: ${started.status}`);
  const location = new URL(started.headers.get("location")!, base);
  location.searchParams.set("digest", digest);
  const put = await fetch(location, { method: "PUT", body: data, headers: { "Content-Type": "application/octet-stream" } });
  assert.equal(put.status, 201, `blob upload: ${put.status} ${await put.text()}`);
  return digest;
}

/** Pushes a tiny OCI image (config blob, one layer blob, manifest) under `repository:tag`. */
async function pushImage(base: string, repository: string, tag: string): Promise<void> {
  const layer = new TextEncoder().encode("not really a tarball, the registry does not look inside");
  const layerDigest = await pushBlob(base, repository, layer);
  const config = new TextEncoder().encode(
    JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [layerDigest] } }),
  );
  const configDigest = await pushBlob(base, repository, config);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: configDigest, size: config.byteLength },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: layerDigest, size: layer.byteLength }],
  });
  const put = await fetch(`${base}/v2/${repository}/manifests/${tag}`, {
    method: "PUT",
    body: manifest,
    headers: { "Content-Type": "application/vnd.oci.image.manifest.v1+json" },
  });
  assert.equal(put.status, 201, `manifest upload: ${put.status} ${await put.text()}`);
}

/** The first executable `name` on PATH, or "". */
function findOnPath(name: string): string {
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

const registryBinary = findOnPath("docker-registry");
const skipReason = registryBinary
  ? false
  : "docker-registry is not installed (apt-get install -y docker-registry), so ImageSpec.exist() is not tested against a real registry";

describe("ImageSpec.exist() against a real registry (docker-registry on 127.0.0.1)", { skip: skipReason }, () => {
  let child: ChildProcess | undefined;
  let dir = "";
  let port = 0;
  let output = "";

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "cachet-registry-"));
    port = await freePort();
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
        `    rootdirectory: ${join(dir, "data")}`,
        "http:",
        `  addr: 127.0.0.1:${port}`,
        "",
      ].join("\n"),
    );
    child = spawn(registryBinary, ["serve", config], { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const deadline = Date.now() + 15_000;
    for (;;) {
      try {
        const response = await fetch(`http://127.0.0.1:${port}/v2/`);
        if (response.status === 200) break;
      } catch {
        // not up yet
      }
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`docker-registry did not start:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  });

  after(() => {
    if (child && child.exitCode === null) child.kill("SIGTERM");
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("true for a pushed image, false for another tag or repository", async () => {
    const spec = new ImageSpec({ name: "cachet-test/pipeline", registry: `127.0.0.1:${port}`, packages: ["sharp"] });
    assert.equal(await spec.exist(), false, "before the push");
    await pushImage(`http://127.0.0.1:${port}`, "cachet-test/pipeline", spec.tag);
    assert.equal(await spec.exist(), true);
    assert.equal(await spec.withPackages("zod").exist(), false, "another tag of the same repository");
    assert.equal(await new ImageSpec({ name: "cachet-test/never-pushed", registry: `127.0.0.1:${port}` }).exist(), false);
  });

  test("undefined when nothing listens on the registry's port", async () => {
    const closed = await freePort();
    const spec = new ImageSpec({ name: "app", registry: `127.0.0.1:${closed}` });
    assert.equal(await spec.exist({ timeoutMs: 3000 }), undefined);
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

  test("undefined when the token does not help, for Basic auth, 403, 5xx and timeouts", async () => {
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
    const silent = await registry(() => {
      // never answers
    });
    const started = Date.now();
    assert.equal(await new ImageSpec({ name: "app", registry: `127.0.0.1:${silent}` }).exist({ timeoutMs: 300 }), undefined);
    assert.ok(Date.now() - started < 5000);
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

  test("WWW-Authenticate parsing", () => {
    assert.deepEqual(parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull"'), {
      scheme: "bearer",
      params: { realm: "https://auth.docker.io/token", service: "registry.docker.io", scope: "repository:library/ubuntu:pull" },
    });
    assert.deepEqual(parseChallenge("Basic realm=x"), { scheme: "basic", params: { realm: "x" } });
    assert.equal(parseChallenge(null), undefined);
  });
});
