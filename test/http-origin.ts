// A local HTTP origin for the sources tests: routes answer with the headers a test chooses, and every request is
// recorded (path, method, headers) so tests count what reached the network. Not a test file.
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { createCachedFetch, openStore, type CacheStore, type FetchFunction } from "../src/index.js";
import { tempDir } from "./helpers.js";

/** Answers one request; `n` counts the requests to this path so far, this one included. */
export type Route = (request: IncomingMessage, response: ServerResponse, n: number) => void | Promise<void>;

export interface SeenRequest {
  path: string;
  method: string;
  headers: IncomingHttpHeaders;
}

export interface Origin {
  /** `http://127.0.0.1:<port><path>`. */
  url(path: string): string;
  /** Requests to `path` (every method) so far. */
  count(path: string): number;
  readonly seen: SeenRequest[];
  route(path: string, route: Route): void;
  /** Stops the server and ends open connections. */
  close(): Promise<void>;
}

/** Starts an origin on 127.0.0.1 on a spare port. Unknown paths answer 404. */
export async function startOrigin(routes: Record<string, Route> = {}): Promise<Origin> {
  const table = new Map(Object.entries(routes));
  const seen: SeenRequest[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((request, response) => {
    const path = new URL(request.url ?? "/", "http://origin").pathname;
    seen.push({ path, method: request.method ?? "GET", headers: request.headers });
    const route = table.get(path);
    request.resume();
    if (!route) {
      response.writeHead(404).end("no route");
      return;
    }
    const n = seen.filter((entry) => entry.path === path).length;
    void Promise.resolve(route(request, response, n)).catch((error: unknown) => response.destroy(error as Error));
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    count: (path) => seen.filter((entry) => entry.path === path).length,
    seen,
    route: (path, route) => void table.set(path, route),
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A route answering 200 with `body` and `headers` (and the request number in `x-n`). */
export function answer(body: string | ((n: number) => string), headers: Record<string, string> = {}): Route {
  return (_request, response, n) => {
    response.writeHead(200, { "content-type": "text/plain", "x-n": String(n), ...headers });
    response.end(typeof body === "function" ? body(n) : body);
  };
}

/** What a describe block of cachedFetch tests works on: a scratch cache root, a store on it, an origin, the client. */
export interface FetchSetup {
  dir: ReturnType<typeof tempDir>;
  store: CacheStore;
  origin: Origin;
  cachedFetch: FetchFunction;
}

/** Opens a {@link FetchSetup} (a `tempDir` labelled `label`); end it with {@link closeFetchSetup}. */
export async function openFetchSetup(label: string): Promise<FetchSetup> {
  const dir = tempDir(label);
  const store = await openStore({ cacheDir: dir.path });
  const origin = await startOrigin();
  return { dir, store, origin, cachedFetch: createCachedFetch({ store }) };
}

/** Closes the store and the origin and removes the scratch root (the store given may have been reopened since). */
export async function closeFetchSetup(setup: Omit<FetchSetup, "cachedFetch">): Promise<void> {
  await setup.store.close();
  await setup.origin.close();
  setup.dir.cleanup();
}
