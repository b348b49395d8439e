// Git repositories and real git servers for the gitSource tests: repositories made with the system git, `git
// daemon` on 127.0.0.1 (the git:// network path, with a request log), and `git http-backend` behind a small
// node HTTP server with Basic auth (credentials in the URL). Not a test file.
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { freePort } from "./registry-servers.js";
import { startProcess, type Child } from "./workers/child.js";

const AUTHOR = ["-c", "user.name=cachet tests", "-c", "user.email=tests@example.invalid", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"];

/** Runs git in `repo` (no user or system config) and returns its trimmed stdout. */
export function git(repo: string, ...args: string[]): string {
  return execFileSync("git", [...AUTHOR, "-C", repo, ...args], {
    encoding: "utf8",
    env: { ...process.env, GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null" },
    timeout: 60_000,
  }).trim();
}

/** A new repository at `path` on branch `main` with one commit of `files`; returns that commit. */
export function makeRepository(path: string, files: Record<string, string>): string {
  mkdirSync(path, { recursive: true });
  git(path, "init", "--quiet", "--initial-branch=main");
  return commitFiles(path, files, "first");
}

/** Writes `files` into the repository and commits them; returns the new commit. */
export function commitFiles(repo: string, files: Record<string, string>, message: string): string {
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(repo, name, ".."), { recursive: true });
    writeFileSync(join(repo, name), text);
  }
  git(repo, "add", "--all");
  git(repo, "commit", "--quiet", "-m", message);
  return git(repo, "rev-parse", "HEAD");
}

/** A running `git daemon` serving every repository under its base path. */
export interface GitDaemon {
  /** `git://127.0.0.1:<port>/` */
  url: string;
  /** How many fetches (upload-pack requests) of `path` (like `/repo.git`) it has served so far. */
  uploadPacks(path: string): number;
  stop(): Promise<void>;
}

/** Starts `git daemon` on a spare port of 127.0.0.1, serving `basePath`; resolves once it accepts connections. */
export async function startGitDaemon(basePath: string): Promise<GitDaemon> {
  const port = await freePort();
  // The daemon program itself: `git daemon` would run it as a child that killing `git` leaves running.
  const program = join(execFileSync("git", ["--exec-path"], { encoding: "utf8" }).trim(), "git-daemon");
  const daemon: Child = startProcess(program, [
    "--reuseaddr",
    "--verbose",
    "--informative-errors",
    "--export-all",
    "--listen=127.0.0.1",
    `--port=${port}`,
    `--base-path=${basePath}`,
    basePath,
  ]);
  await daemon.waitFor(/Ready to rumble/, "stderr");
  return {
    url: `git://127.0.0.1:${port}/`,
    uploadPacks: (path) => daemon.stderr().split("\n").filter((line) => line.includes(`Request upload-pack for '${path}'`)).length,
    stop: async () => {
      await daemon.kill9();
    },
  };
}

/** A node HTTP server running `git http-backend` (smart HTTP) for every request that carries the right Basic credentials. */
export interface GitHttpServer {
  /** `http://<user>:<password>@127.0.0.1:<port>/` */
  url: string;
  /** Requests refused for missing or wrong credentials. */
  refused(): number;
  stop(): Promise<void>;
}

export async function startGitHttpServer(basePath: string, user: string, password: string): Promise<GitHttpServer> {
  const expected = `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
  let refused = 0;
  const server: Server = createServer((request, response) => {
    if (request.headers.authorization !== expected) {
      refused += 1;
      response.writeHead(401, { "WWW-Authenticate": 'Basic realm="git"' }).end();
      return;
    }
    const url = new URL(request.url ?? "/", "http://127.0.0.1");
    const backend = spawn("git", ["http-backend"], {
      env: {
        PATH: process.env.PATH,
        GIT_CONFIG_NOSYSTEM: "1",
        GIT_CONFIG_GLOBAL: "/dev/null",
        GIT_PROJECT_ROOT: basePath,
        GIT_HTTP_EXPORT_ALL: "1",
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.slice(1),
        REQUEST_METHOD: request.method ?? "GET",
        CONTENT_TYPE: request.headers["content-type"] ?? "",
        HTTP_CONTENT_ENCODING: request.headers["content-encoding"] ?? "",
        GIT_PROTOCOL: String(request.headers["git-protocol"] ?? ""),
        REMOTE_USER: user,
        REMOTE_ADDR: "127.0.0.1",
      },
      stdio: ["pipe", "pipe", "ignore"],
    });
    request.pipe(backend.stdin);
    let head = Buffer.alloc(0);
    let headersDone = false;
    backend.stdout.on("data", (chunk: Buffer) => {
      if (headersDone) {
        response.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      headersDone = true;
      let status = 200;
      for (const line of head.subarray(0, end).toString("latin1").split("\r\n")) {
        const colon = line.indexOf(":");
        const field = line.slice(0, colon).trim();
        const value = line.slice(colon + 1).trim();
        if (field.toLowerCase() === "status") status = Number.parseInt(value, 10);
        else response.setHeader(field, value);
      }
      response.writeHead(status);
      response.write(head.subarray(end + 4));
    });
    backend.on("close", () => {
      if (!headersDone) response.writeHead(500);
      response.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://${user}:${password}@127.0.0.1:${port}/`,
    refused: () => refused,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
