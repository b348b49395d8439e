import CachePolicy from "http-cache-semantics";
import { sha256Hex } from "../hash/index.js";
import { HOP_BY_HOP, policyView } from "./cache-headers.js";

/** The request as the policy library sees it: lower-cased headers (secrets as digests) and the host. */
export type PolicyRequest = { url: string; method: string; headers: Record<string, string> };

/** Policies are private (a per-user cache), with the library's heuristic for Last-Modified (10 %). */
const POLICY_OPTIONS = { shared: false } as const;

/** Request headers whose values never reach the disk: a Vary on them stores their digest. */
const SECRET_HEADERS = new Set(["authorization", "cookie", "proxy-authorization"]);

/** A request header's value as the cache keeps it: the value, or `sha256:<hex>` of it for a secret. */
export function keptHeaderValue(name: string, value: string): string {
  return SECRET_HEADERS.has(name) ? `sha256:${sha256Hex(value)}` : value;
}

/** The request as the policy keeps it: lower-cased headers (secrets as digests) and the host. */
export function policyRequestOf(keyUrl: string, host: string, headers: Headers): PolicyRequest {
  const kept: Record<string, string> = { host };
  for (const [name, value] of headers) kept[name] = keptHeaderValue(name, value);
  return { url: keyUrl, method: "GET", headers: kept };
}

/** The policy as stored: request headers reduced to those Vary names (the only ones it reads back). */
export function keptPolicy(policy: CachePolicy, names: string[]): Record<string, unknown> {
  const object = policy.toObject() as unknown as Record<string, unknown>;
  const reqh = object.reqh as Record<string, string> | null;
  if (reqh) object.reqh = Object.fromEntries(names.filter((name) => name in reqh).map((name) => [name, reqh[name]]));
  return object;
}

/** A policy read back from a stored head. */
export function storedPolicy(object: Record<string, unknown>): CachePolicy {
  return CachePolicy.fromObject(object as unknown as ReturnType<CachePolicy["toObject"]>);
}

/** The validators a conditional request for the stored response sends (`If-None-Match`, `If-Modified-Since`). */
export function conditionalHeaders(policy: CachePolicy, request: PolicyRequest, headers: Headers): Headers {
  // The policy sees secrets as digests, so only its validators are taken; the rest is the caller's request.
  const validators = policy.revalidationHeaders(request);
  const out = new Headers(headers as unknown as ConstructorParameters<typeof Headers>[0]);
  for (const name of ["if-none-match", "if-modified-since"]) {
    const value = validators[name];
    if (typeof value === "string") out.set(name, value);
    else out.delete(name);
  }
  return out;
}

/**
 * Whether a 304 answers for the stored response (RFC 9111 §4.3.4): its validator matches the stored one; with
 * none, it answers the conditional request the cache made for this one stored response (the library asks for a
 * validator in the 304, which servers often leave out), unless the caller sent validators of their own.
 */
export function answersStored(storedHeaders: [string, string][], response: Response, request: Headers): boolean {
  const stored = (name: string) => storedHeaders.findLast((pair) => pair[0] === name)?.[1];
  const etag = response.headers.get("etag");
  const bare = (tag: string) => tag.trim().replace(/^W\//, "");
  if (etag !== null) {
    const storedEtag = stored("etag");
    return storedEtag !== undefined && bare(storedEtag) === bare(etag);
  }
  const modified = response.headers.get("last-modified");
  const storedModified = stored("last-modified");
  if (modified !== null && storedModified !== undefined) return storedModified === modified;
  return !request.has("if-none-match") && !request.has("if-modified-since");
}

/**
 * A response's end-to-end headers, in order, each Set-Cookie on its own line. Set-Cookie is stored as RFC 9111
 * §3.1 requires (every field but hop-by-hop ones); a request with Cookie or Authorization is its own variant, so
 * a hit replays it only to a request with the same credentials (see variantOf).
 */
export function endToEnd(headers: Headers): [string, string][] {
  const named = new Set((headers.get("connection") ?? "").split(",").map((token) => token.trim().toLowerCase()));
  const pairs: [string, string][] = [];
  for (const [name, value] of headers) if (!HOP_BY_HOP.has(name) && !named.has(name) && name !== "set-cookie") pairs.push([name, value]);
  for (const cookie of headers.getSetCookie()) pairs.push(["set-cookie", cookie]);
  return pairs;
}


/** The freshness policy of a response with `headers`, as the policy library should see them (see cache-headers.ts). */
export function policyOf(request: PolicyRequest, status: number, headers: [string, string][]): { policy: CachePolicy; mustRevalidate: boolean } {
  const record: Record<string, string> = {};
  for (const [name, value] of headers) if (name !== "set-cookie") record[name] = name in record ? `${record[name]}, ${value}` : value;
  const view = policyView(status, record);
  // RFC 9111 §4.2.3: the initial age is at least the apparent age (response time − Date); the library ignores Date.
  const date = view.headers.date === undefined ? Number.NaN : Date.parse(view.headers.date);
  const apparent = Math.floor((Date.now() - date) / 1000);
  const stated = view.headers.age === undefined ? 0 : Number.parseInt(view.headers.age, 10);
  if (Number.isFinite(apparent) && apparent > stated) view.headers.age = String(apparent);
  const directives = view.headers["cache-control"]?.split(", ") ?? [];
  const mustRevalidate = directives.includes("must-revalidate") || directives.includes("proxy-revalidate");
  if (mustRevalidate) view.headers["cache-control"] = directives.filter((directive) => directive !== "must-revalidate" && directive !== "proxy-revalidate").join(", ");
  return { policy: new CachePolicy(request, { status: view.status, headers: view.headers }, POLICY_OPTIONS), mustRevalidate };
}
