import { randomUUID } from "node:crypto";
import { Readable } from "node:stream";
import CachePolicy from "http-cache-semantics";
import { readSettings, refreshes, type RefreshSetting } from "../config/index.js";
import { sha256Hex } from "../hash/index.js";
import { INLINE_LIMIT, type CacheStore, type StoredValue, type WarningHandler } from "../store/index.js";
import { captureBody, drain } from "./body-capture.js";
import { HOP_BY_HOP, parseCacheControl } from "./cache-headers.js";
import { answersStored, conditionalHeaders, endToEnd, keptPolicy, policyOf, policyRequestOf, storedPolicy, type PolicyRequest } from "./response-policy.js";
import { CACHE_STATUS, forwardStatus, hitStatus, type ForwardReason } from "./cache-status.js";
import { OfflineMissError } from "./errors.js";
import {
  HEAD_FORMAT,
  VARY_FORMAT,
  bodyKey,
  decodeHead,
  encodeHead,
  headKey,
  isKeyOfUrl,
  variantOf,
  varyKey,
  varyNames,
  type StoredBody,
  type StoredHead,
} from "./http-entries.js";
import { defaultSourceStore, emitSourceWarning, reportSourceFailure } from "./source-store.js";
import { hostEntryName, requestKeyUrl, splitUrl, type SplitUrl } from "./source-urls.js";

/** The init of a request, with fetch's `cache` mode (Node's types leave it out). */
export type CachedRequestInit = RequestInit & { cache?: CacheMode | undefined };

/** A function with the signature of the global `fetch`. */
export type FetchFunction = (input: string | URL | Request, init?: CachedRequestInit) => Promise<Response>;

/** fetch's cache modes. */
export type CacheMode = "default" | "no-store" | "reload" | "no-cache" | "force-cache" | "only-if-cached";

/** Options of {@link createCachedFetch}. */
export interface CachedFetchOptions {
  /** The store responses live in (any `CacheStore`); default: `openConfiguredStore()` (the local cache, and the shared tier if configured), opened on first use. */
  store?: CacheStore | undefined;
  /** The network: default the global `fetch` as it was when the cached fetch was made. */
  fetch?: FetchFunction | undefined;
  /** Receives the one warning per process a cache that cannot be used gives; default `process.emitWarning`. */
  onWarning?: WarningHandler | undefined;
  /** The environment settings are read from (`CACHET_OFFLINE`, `CACHET_REFRESH`); default `process.env`. */
  env?: NodeJS.ProcessEnv | undefined;
}

const CACHE_MODES = new Set<string>(["default", "no-store", "reload", "no-cache", "force-cache", "only-if-cached"]);
/** Methods that never invalidate (RFC 9110 §9.2.1). */
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS", "TRACE"]);
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const NULL_BODY = new Set([101, 204, 205, 304]);
const MAX_REDIRECTS = 20;
/** Longest wait of a request for an identical one in flight before it goes to the network itself. */
const COALESCE_WAIT_MS = 30_000;
/** Decoded heads kept per cachedFetch. */
const MAX_DECODED = 512;
/** URL strings kept split per cachedFetch. */
const MAX_TARGETS = 512;
const HIT_STATUS = hitStatus();
/** The settings a request reads when neither CACHET_OFFLINE nor CACHET_REFRESH is set. */
const UNSET_SETTINGS: { offline: boolean; refresh: RefreshSetting } = { offline: false, refresh: { all: false, names: new Set<string>() } };
/** A 304 never replaces these in a stored response: the stored body depends on them (RFC 9111 §3.2). */
const KEPT_ON_UPDATE = new Set(["content-length", "content-encoding", "transfer-encoding", "content-range"]);

type HeaderInit = ConstructorParameters<typeof Headers>[0];

/** A stored response found for a request. */
interface Found {
  head: StoredHead;
  inlineBody: Uint8Array | undefined;
  policy: CachePolicy;
  /** The stored headers a hit replays (without Age, Cache-Status and no-cache=… fields), made on the first hit. */
  served?: Headers;
  /** A Date replacing the one in `served` (a 304 that changed nothing else shares the stored head's `served`). */
  servedDate?: string | undefined;
  /** The validators a conditional request of the plain GET of its URL sends, made on its first revalidation. */
  plainValidators?: Record<string, string>;
}

/** A URL string split, with the entry name and the key of its head when it does not vary. */
interface UrlTarget {
  split: SplitUrl;
  name: string;
  keyUrl: string;
  plainKey: string;
}

/** The read of a URL's plain head made by plainHit, for the general path to use instead of reading again. */
interface PlainRead {
  name: string;
  key: string;
  value: StoredValue | undefined;
  /** The head decoded from `value`, when it is one. */
  found: Found | undefined;
  /** The answer of the origin to plainHit's revalidation, when it redirects: the general path follows it. */
  redirect?: Response;
}

/** One GET on one URL (a hop of a redirect chain) and what the cache knows of it. */
interface Hop {
  url: URL;
  keyUrl: string;
  name: string;
  /** Headers sent to the origin. */
  headers: Headers;
  /** The request as the policy sees it: lower-cased headers, secrets as digests (also read for the cache's own checks). */
  policyRequest: PolicyRequest;
  mode: CacheMode;
  init: RequestInit;
  offline: boolean;
  refresh: boolean;
}

/**
 * Makes a `fetch` with a private HTTP cache (RFC 9111) in a {@link CacheStore}, shared by every process using
 * that store: what may be stored, freshness, validation, Vary, invalidation, `stale-if-error` and
 * `stale-while-revalidate` follow the headers; `init.cache` follows fetch's modes; every response carries a
 * `Cache-Status` header. A cache that cannot be used turns into network fetches and one warning.
 */
export function createCachedFetch(options: CachedFetchOptions = {}): FetchFunction {
  const cache = new HttpCache(options);
  return (input, init) => cache.fetch(input, init);
}

class HttpCache {
  private readonly network: FetchFunction;
  private readonly onWarning: WarningHandler;
  /** Requests for the network in flight, by entry: identical ones wait for the first and then read the cache. */
  private readonly inflight = new Map<string, Promise<void>>();
  /** Heads this process stored or revalidated: under `CACHET_REFRESH` they count as fresh. */
  private readonly refreshed = new Set<string>();
  /** Heads decoded lately, by entry, with their bytes: a read returning the same bytes skips decoding them. */
  private readonly decoded = new Map<string, { bytes: Buffer; found: Found }>();
  /** URL strings split lately (see targetOf). */
  private readonly targets = new Map<string, UrlTarget>();

  constructor(private readonly options: CachedFetchOptions) {
    const network = options.fetch ?? globalThis.fetch;
    this.network = (input, init) => network(input, init);
    this.onWarning = options.onWarning ?? emitSourceWarning;
  }

  async fetch(input: string | URL | Request, init: CachedRequestInit = {}): Promise<Response> {
    let prefetched: PlainRead | undefined;
    if (typeof input === "string" && isEmpty(init)) {
      const plain = await this.plainHit(input);
      if (plain instanceof Response) return plain;
      prefetched = plain;
    }
    let answered = prefetched?.redirect;
    const { cache, ...rest } = init;
    // As fetch does: an aborted signal rejects at once, even when the answer is stored.
    (rest.signal ?? (input instanceof Request ? input.signal : undefined))?.throwIfAborted();
    const requested: string = cache ?? (input instanceof Request ? (input as { cache?: string }).cache : undefined) ?? "default";
    const mode: CacheMode = CACHE_MODES.has(requested) ? (requested as CacheMode) : "default";
    const split = typeof input === "string" ? this.splitString(input) : splitUrl(input instanceof Request ? input.url : input);
    // A GET given as a URL needs no Request object (constructing one costs more than a whole hit).
    // With a body it takes the Request, which refuses it as fetch does.
    const plainGet = !(input instanceof Request) && (rest.method === undefined || rest.method.toUpperCase() === "GET") && rest.body == null;
    const request = plainGet ? undefined : new Request(input instanceof Request ? input : split.url, rest);
    const headers0 = request ? request.headers : new Headers(rest.headers);
    if (split.authorization !== undefined && !headers0.has("authorization")) headers0.set("authorization", split.authorization);
    // As fetch does (Fetch §4.5): reload and no-store ask caches on the way not to answer; no-cache revalidates.
    if ((mode === "no-store" || mode === "reload") && !headers0.has("cache-control")) {
      if (!headers0.has("pragma")) headers0.set("pragma", "no-cache");
      headers0.set("cache-control", "no-cache");
    }
    if (mode === "no-cache" && !headers0.has("cache-control")) headers0.set("cache-control", "max-age=0");
    const env = this.options.env ?? process.env;
    // Parsing the settings costs more than reading the two variables: unset, they are known.
    const settings = env.CACHET_OFFLINE === undefined && env.CACHET_REFRESH === undefined ? UNSET_SETTINGS : readSettings({ env });
    const method = request ? request.method.toUpperCase() : "GET";
    const redirectMode = request ? request.redirect : (rest.redirect ?? "follow");

    if (request && method !== "GET") {
      if (settings.offline) throw new OfflineMissError(split.url.href);
      const response = await this.network(request, rest.signal === undefined ? {} : { signal: rest.signal });
      if (!SAFE_METHODS.has(method) && response.status < 400) await this.invalidate(split.url, response);
      return withCacheStatus(response, forwardStatus("method", response.status, false));
    }

    const forward: RequestInit = { ...rest, method: "GET", redirect: "manual" };
    if (request) forward.signal = request.signal;
    delete forward.body;
    let url = split.url;
    let headers = headers0;
    for (let redirects = 0; ; redirects++) {
      const name = hostEntryName(url);
      const keyUrl = requestKeyUrl(url);
      const hop: Hop = {
        url,
        keyUrl,
        name,
        headers,
        policyRequest: policyRequestOf(keyUrl, url.host, headers),
        mode,
        init: forward,
        offline: settings.offline,
        refresh: refreshes(settings.refresh, name),
      };
      const response = answered ?? (await this.get(hop, true, prefetched));
      answered = undefined;
      prefetched = undefined;
      const location = REDIRECTS.has(response.status) ? response.headers.get("location") : null;
      if (location === null || redirectMode === "manual") return finish(response, url, redirects > 0);
      await response.arrayBuffer(); // a redirect's body is read (so it is stored), not cancelled
      if (redirectMode === "error") throw new TypeError(`fetch failed: ${url.href} redirects and redirect is "error"`);
      if (redirects + 1 > MAX_REDIRECTS) throw new TypeError(`fetch failed: more than ${MAX_REDIRECTS} redirects from ${split.url.href}`);
      const next = splitUrl(new URL(location, url));
      if (next.url.origin !== url.origin) {
        headers = new Headers(headers as unknown as HeaderInit);
        headers.delete("authorization");
        headers.delete("cookie");
      }
      if (next.authorization !== undefined) headers.set("authorization", next.authorization);
      url = next.url;
    }
  }

  /**
   * A GET of a URL string without init, answered from a fresh stored response with an inline body that does
   * not vary or redirect: what the general path would answer, without building its request headers and hop.
   * Anything else (settings set, a miss, a stale or other response, a store that failed) is left to the
   * general path, with the head read here when there was one.
   */
  private async plainHit(input: string): Promise<Response | PlainRead | undefined> {
    const target = this.targetOf(input);
    if (target === undefined) return undefined;
    const env = this.options.env ?? process.env;
    if (env.CACHET_OFFLINE !== undefined || env.CACHET_REFRESH !== undefined) return undefined;
    const store = this.options.store ?? (await this.store());
    if (store === undefined) return undefined;
    let value: StoredValue | undefined;
    try {
      value = await store.getValue(target.name, target.plainKey);
    } catch {
      return undefined; // the general path reads again, and reports the failure
    }
    const found = value !== undefined && value.format === HEAD_FORMAT ? this.decode(target.name, target.plainKey, value.data) : undefined;
    const read: PlainRead = { name: target.name, key: target.plainKey, value, found };
    if (found === undefined || found.head.body.key !== undefined || REDIRECTS.has(found.head.status) || found.head.headers.some(([name]) => name === "vary")) return read;
    if (found.policy.stale()) {
      if (found.head.status !== 200) return read;
      const revalidation = this.revalidatePlain(store, target, found);
      if (revalidation === undefined) return read;
      const response = await revalidation;
      if (REDIRECTS.has(response.status) && response.headers.has("location")) return { ...read, redirect: response };
      return finish(response, target.split.url, false);
    }
    return finish(storedResponse(found, inlineBodyOf(found), HIT_STATUS), target.split.url, false);
  }

  /**
   * The revalidation of a stale stored response by a plain GET of its URL string, as the general path makes it
   * (same conditional request, same coalescing, and `forward` handles every answer), without building the
   * request's headers and hop from scratch. Undefined when the general path would not revalidate at once
   * (stale-while-revalidate, a stale response still usable) or an identical request is in flight.
   */
  private revalidatePlain(store: CacheStore, target: UrlTarget, found: Found): Promise<Response> | undefined {
    const id = `${target.name}\0${target.plainKey}`;
    if (this.inflight.has(id)) return undefined;
    // What policyRequestOf makes of a request without headers.
    const policyRequest: PolicyRequest = { url: target.keyUrl, method: "GET", headers: { host: target.split.url.host } };
    const evaluation = found.policy.evaluateRequest(policyRequest);
    const usable = evaluation.response !== undefined && !found.head.mustRevalidate;
    if (usable && !evaluation.revalidation?.synchronous) return undefined;
    const hop: Hop = {
      url: target.split.url,
      keyUrl: target.keyUrl,
      name: target.name,
      headers: new Headers(),
      policyRequest,
      mode: "default",
      init: { redirect: "manual" },
      offline: false,
      refresh: false,
    };
    found.plainValidators ??= Object.fromEntries(conditionalHeaders(found.policy, policyRequest, hop.headers));
    const finish = this.claimInflight(id);
    // A record, not a Headers: fetch converts it for less; a copy, as the network may keep what it is given.
    const response = this.forward(store, hop, found, true, [], true, "stale", id, finish, { ...found.plainValidators });
    response.catch(finish);
    return response;
  }

  /**
   * A URL string split as splitUrl does, with the entry name and plain head key it maps to; kept for the next
   * call with the same string when it has no credentials (the URL object is shared: it is only read, and the
   * network is given its string). Undefined for a string with credentials.
   */
  private targetOf(input: string): UrlTarget | undefined {
    const known = this.targets.get(input);
    if (known !== undefined) return known;
    const split = splitUrl(input);
    if (split.authorization !== undefined) return undefined;
    const name = hostEntryName(split.url);
    const keyUrl = requestKeyUrl(split.url);
    const target: UrlTarget = { split, name, keyUrl, plainKey: headKey(keyUrl, variantOf([], {})) };
    if (this.targets.size >= MAX_TARGETS) this.targets.delete(this.targets.keys().next().value!);
    this.targets.set(input, target);
    return target;
  }

  private splitString(input: string): SplitUrl {
    return this.targetOf(input)?.split ?? splitUrl(input);
  }

  /** The store, or undefined (with one warning) when it cannot be used. */
  private async store(): Promise<CacheStore | undefined> {
    if (this.options.store) return this.options.store;
    try {
      return await defaultSourceStore(this.onWarning);
    } catch (error) {
      reportSourceFailure("open", error, (error as { root?: string }).root, this.onWarning);
      return undefined;
    }
  }

  private async get(hop: Hop, coalesce: boolean, prefetched?: PlainRead): Promise<Response> {
    const store = this.options.store ?? (await this.store());
    // The request's fields are read from the policy's record of them: Headers' own methods cost more than a hit's lookup.
    const fields = hop.policyRequest.headers;
    const cacheControl = fields["cache-control"];
    const bypass = hop.mode === "no-store" || fields.range !== undefined || (cacheControl !== undefined && /(?:^|,)\s*no-store\s*(?:,|$)/i.test(cacheControl));
    if (store === undefined || bypass) {
      if (hop.offline) throw new OfflineMissError(hop.keyUrl);
      const response = await this.network(hop.url.href, { ...hop.init, headers: hop.headers });
      return withCacheStatus(response, forwardStatus("bypass", response.status, false, store === undefined ? "cache-unavailable" : undefined));
    }

    if (cacheControl !== undefined && /(?:^|,)\s*only-if-cached\s*(?:,|$)/i.test(cacheControl)) hop = { ...hop, mode: "only-if-cached" };
    const { found, names, known } = await this.lookup(store, hop, prefetched);
    const variant = variantOf(names, hop.policyRequest.headers);
    const id = `${hop.name}\0${headKey(hop.keyUrl, variant)}`;

    if (found && (hop.offline || hop.mode === "only-if-cached" || hop.mode === "force-cache")) {
      return this.serve(store, hop, found, hitStatus(hop.offline ? "offline" : undefined));
    }
    // only-if-cached never connects, so it answers a miss with its 504 offline too.
    if (hop.mode === "only-if-cached") {
      return new Response(null, { status: 504, statusText: "Gateway Timeout", headers: { [CACHE_STATUS]: forwardStatus("miss", undefined, false, "only-if-cached") } });
    }
    if (hop.offline) throw new OfflineMissError(hop.keyUrl);

    let reason: ForwardReason = known ? "vary-miss" : "uri-miss";
    let conditional = false;
    if (hop.mode === "reload") {
      reason = "request";
    } else if (found) {
      if (hop.mode === "no-cache") {
        reason = "request";
        conditional = true;
      } else if (hop.refresh && !this.refreshed.has(id)) {
        reason = "request";
        conditional = true;
      } else {
        const stale = found.policy.stale();
        // Fresh, and the request has no directives of its own: what evaluateRequest would say, without its work.
        if (!stale && cacheControl === undefined && fields.pragma === undefined) return this.serveFresh(store, hop, found);
        // RFC 8246: a fresh immutable response is used even when the request asks to revalidate (a reload).
        if (!stale && isImmutable(found.policy) && /(?:no-cache|max-age=0)/i.test(cacheControl ?? "")) return this.serveFresh(store, hop, found);
        const evaluation = found.policy.evaluateRequest(hop.policyRequest);
        // must-revalidate: a stale response is never used, not even under max-stale or stale-while-revalidate.
        const usable = evaluation.response !== undefined && !(stale && found.head.mustRevalidate);
        if (usable && !evaluation.revalidation) return this.serveFresh(store, hop, found);
        if (usable && evaluation.revalidation && !evaluation.revalidation.synchronous) {
          this.revalidateInBackground(store, hop, found, names, id);
          return this.serve(store, hop, found, hitStatus("stale-while-revalidate"));
        }
        reason = stale ? "stale" : "request";
        conditional = true;
      }
    }

    if (coalesce && hop.mode !== "reload" && hop.mode !== "no-cache") {
      const pending = this.inflight.get(id);
      if (pending) {
        // The first request settles once its body is stored, which takes its caller reading the body: a caller
        // that never reads it would hold the others forever, so they wait a bounded time, then fetch themselves.
        let timer: NodeJS.Timeout | undefined;
        const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, COALESCE_WAIT_MS).unref()));
        try {
          await untilAborted(Promise.race([pending, bound]), hop.init.signal);
        } finally {
          clearTimeout(timer);
        }
        return this.get(hop, false);
      }
    }
    const finish = this.claimInflight(id);
    try {
      const response = await this.forward(store, hop, found, conditional, names, known, reason, id, finish);
      return response;
    } catch (error) {
      finish();
      throw error;
    }
  }

  /** Reads the stored response for the request, if any, with the Vary names its URL keeps. */
  private async lookup(store: CacheStore, hop: Hop, prefetched: PlainRead | undefined): Promise<{ found: Found | undefined; names: string[]; known: boolean }> {
    try {
      // Most URLs do not vary: their one head is read first, without the vary entry.
      const plainKey = headKey(hop.keyUrl, variantOf([], hop.policyRequest.headers));
      const read = prefetched !== undefined && prefetched.name === hop.name && prefetched.key === plainKey ? prefetched : undefined;
      const plain = read ? read.value : await store.getValue(hop.name, plainKey);
      if (plain !== undefined && plain.format === HEAD_FORMAT) {
        const found = read ? read.found : this.decode(hop.name, plainKey, plain.data);
        if (found && !found.head.headers.some(([name]) => name === "vary")) return { found, names: [], known: true };
      }
      const vary = await store.getValue(hop.name, varyKey(hop.keyUrl));
      if (vary === undefined || vary.format !== VARY_FORMAT) return { found: undefined, names: [], known: false };
      const names = parseNames(vary.data);
      if (names === undefined || names[0] === "*") return { found: undefined, names: [], known: false };
      const key = headKey(hop.keyUrl, variantOf(names, hop.policyRequest.headers));
      const stored = await store.getValue(hop.name, key);
      if (stored === undefined || stored.format !== HEAD_FORMAT) return { found: undefined, names, known: true };
      return { found: this.decode(hop.name, key, stored.data), names, known: true };
    } catch (error) {
      reportSourceFailure("read", error, store.root, this.onWarning);
      return { found: undefined, names: [], known: false };
    }
  }

  /** A stored head decoded, or the one decoded before from the very same bytes. */
  private decode(name: string, key: string, data: Uint8Array): Found | undefined {
    const id = `${name}\0${key}`;
    const known = this.decoded.get(id);
    if (known && known.bytes.equals(data)) return known.found;
    const decoded = decodeHead(data);
    if (decoded === undefined) return undefined;
    const bytes = Buffer.from(data); // a copy: the found entry's inline body points into it
    const found: Found = { head: decoded.head, inlineBody: decoded.inlineBody && bytes.subarray(bytes.length - decoded.inlineBody.byteLength), policy: storedPolicy(decoded.head.policy) };
    if (this.decoded.size >= MAX_DECODED) this.decoded.delete(this.decoded.keys().next().value!);
    this.decoded.set(id, { bytes, found });
    return found;
  }

  /** A fresh stored response; a 304 when the caller's own validators match it. */
  private serveFresh(store: CacheStore, hop: Hop, found: Found): Response | Promise<Response> {
    const conditional = hop.policyRequest.headers["if-none-match"] !== undefined || hop.policyRequest.headers["if-modified-since"] !== undefined;
    const headers = conditional ? Object.fromEntries(found.head.headers) : {};
    if (conditional && found.head.status === 200 && notModified(hop.headers, headers)) {
      const kept = new Headers();
      for (const name of ["cache-control", "content-location", "date", "etag", "expires", "vary", "last-modified"]) {
        if (headers[name] !== undefined) kept.set(name, headers[name]);
      }
      kept.set("age", String(Math.floor(found.policy.age())));
      kept.set(CACHE_STATUS, hitStatus());
      return new Response(null, { status: 304, statusText: "Not Modified", headers: kept });
    }
    return this.serve(store, hop, found, hitStatus());
  }

  /** The stored response with its current headers (Age updated) and `status` as its Cache-Status. */
  private serve(store: CacheStore, hop: Hop, found: Found, status: string): Response | Promise<Response> {
    // An inline body needs no read: the response is made without an async hop.
    if (found.head.body.key === undefined) return this.respond(hop, found, inlineBodyOf(found), status);
    return this.serveFromEntry(store, hop, found, status);
  }

  private async serveFromEntry(store: CacheStore, hop: Hop, found: Found, status: string): Promise<Response> {
    const body = await this.storedBody(store, hop, found.head.body, found.inlineBody);
    if (body === undefined) {
      // The head outlived its body (replaced or pruned meanwhile): ask the origin, never serve another body.
      if (hop.offline) throw new OfflineMissError(hop.keyUrl);
      return this.forward(store, hop, undefined, false, [], true, "miss", "", () => {});
    }
    return this.respond(hop, found, body, status);
  }

  private respond(hop: Hop, found: Found, body: Uint8Array | ReadableStream<Uint8Array> | null, status: string): Response {
    const response = storedResponse(found, body, status);
    const signal = hop.init.signal;
    return signal && response.body ? followSignal(response, response.body, signal) : response;
  }

  /** The stored body, checked against the digest the head names, or undefined when it is gone or another. */
  private async storedBody(store: CacheStore, hop: Hop, body: StoredBody, inline: Uint8Array | undefined): Promise<Uint8Array | ReadableStream<Uint8Array> | null | undefined> {
    if (body.key === undefined) return inline === undefined || inline.byteLength === 0 ? null : inline;
    try {
      let info = store.info(hop.name, body.key);
      let stream: Readable | undefined;
      if (info === undefined && store.local !== undefined) {
        // Only the shared tier behind the store holds the body: reading it brings it into the local cache.
        stream = await store.getStream(hop.name, body.key);
        info = store.info(hop.name, body.key);
      }
      if (info === undefined || info.digest !== body.digest || info.size !== body.size) {
        stream?.destroy();
        return undefined;
      }
      stream ??= await store.getStream(hop.name, body.key);
      return stream === undefined ? undefined : (Readable.toWeb(stream) as ReadableStream<Uint8Array>);
    } catch (error) {
      reportSourceFailure("read", error, store.root, this.onWarning);
      return undefined;
    }
  }

  /** Marks the request `id` as going to the network (identical ones wait for it); the returned call ends that. */
  private claimInflight(id: string): () => void {
    let settle!: () => void;
    const done = new Promise<void>((resolve) => (settle = resolve));
    this.inflight.set(id, done);
    return () => {
      if (this.inflight.get(id) === done) this.inflight.delete(id);
      settle();
    };
  }

  /**
   * Asks the origin (conditionally when `found` is given), stores what may be stored, and answers: the stored
   * response after a 304, a stale one when the origin fails and `stale-if-error` allows it, else the origin's.
   */
  private async forward(
    store: CacheStore,
    hop: Hop,
    stored: Found | undefined,
    conditional: boolean,
    names: string[],
    known: boolean,
    reason: ForwardReason,
    id: string,
    settle: () => void,
    /** The conditional request's headers, when the caller made them already. */
    validators?: Record<string, string>,
  ): Promise<Response> {
    const found = conditional ? stored : undefined;
    let headers: Headers | Record<string, string> = hop.headers;
    if (found) {
      headers = validators ?? conditionalHeaders(found.policy, hop.policyRequest, hop.headers);
    }
    let response: Response;
    try {
      response = await this.network(hop.url.href, { ...hop.init, headers });
    } catch (error) {
      settle();
      if (found && staleIfError(found, hop.policyRequest)) return this.serve(store, hop, found, forwardStatus(reason, undefined, false, "stale-if-error"));
      throw error;
    }
    if (found && response.status >= 500 && staleIfError(found, hop.policyRequest)) {
      settle();
      await response.body?.cancel();
      return this.serve(store, hop, found, forwardStatus(reason, response.status, false, "stale-if-error"));
    }
    if (found && response.status === 304) {
      const updated = await this.update(store, hop, found, response, names, id);
      settle();
      if (updated) return this.serve(store, hop, updated, forwardStatus(reason, 304, true));
    }
    return this.keep(store, hop, response, known ? names : undefined, stored, reason, settle);
  }

  /** After a 304 that matches the stored response: its headers merged into the stored ones, the head rewritten. */
  private async update(store: CacheStore, hop: Hop, found: Found, response: Response, names: string[], id: string): Promise<Found | undefined> {
    if (!answersStored(found.head.headers, response, hop.headers)) return undefined;
    const headers = updatedHeaders(found.head.headers, response.headers);
    const { policy, mustRevalidate } = policyOf(hop.policyRequest, found.head.status, headers);
    // A 304 that changes no header but Date, for a response stale at once (max-age=0, no-cache), would store a head
    // the next request revalidates all the same: it is used for this answer and not written.
    if (policy.timeToLive() === 0 && sameButDate(headers, found.head.headers)) {
      this.refreshed.add(id);
      found.served ??= servedHeaders(found.head.headers);
      const servedDate = found.served.has("date") ? headers.find(([name]) => name === "date")?.[1] : undefined;
      return { head: { ...found.head, headers, mustRevalidate }, inlineBody: found.inlineBody, policy, served: found.served, servedDate };
    }
    const head: StoredHead = { ...found.head, headers, mustRevalidate, policy: keptPolicy(policy, names) };
    try {
      await store.put(hop.name, headKey(hop.keyUrl, variantOf(names, hop.policyRequest.headers)), encodeHead(head, found.inlineBody), {
        origin: "downloaded",
        format: HEAD_FORMAT,
      });
      this.refreshed.add(id);
    } catch (error) {
      reportSourceFailure("write", error, store.root, this.onWarning);
    }
    return { head, inlineBody: found.inlineBody, policy };
  }

  /**
   * Returns the origin's response, its body streamed through to the store when it may be stored: body first,
   * then the URL's Vary names, then the head, so a reader sees all of it or none.
   */
  private keep(
    store: CacheStore,
    hop: Hop,
    response: Response,
    knownNames: string[] | undefined,
    previous: Found | undefined,
    reason: ForwardReason,
    settle: () => void,
  ): Response {
    const headers = endToEnd(response.headers);
    const { policy, mustRevalidate } = policyOf(hop.policyRequest, response.status, headers);
    const names = varyNames(response.headers.get("vary"));
    const storable = hop.mode !== "no-store" && policy.storable() && names[0] !== "*" && response.status !== 206 && response.status !== 304;
    if (!storable) {
      settle();
      return withCacheStatus(response, forwardStatus(reason, response.status, false));
    }
    const variant = variantOf(names, hop.policyRequest.headers);
    const head = { status: response.status, statusText: response.statusText, headers, mustRevalidate, policy: keptPolicy(policy, names) };
    const save = async (chunks: AsyncIterable<Uint8Array>): Promise<void> => {
      const { body, inline } = await this.saveBody(store, hop, variant, chunks);
      if (knownNames === undefined || knownNames.join(",") !== names.join(",")) {
        await store.put(hop.name, varyKey(hop.keyUrl), JSON.stringify(names), { origin: "downloaded", format: VARY_FORMAT });
        // A head stored before the URL started to vary would be read first and match any request: it goes.
        if (names.length > 0) await store.delete(hop.name, headKey(hop.keyUrl, variantOf([], hop.policyRequest.headers)));
      }
      await store.put(hop.name, headKey(hop.keyUrl, variant), encodeHead({ ...head, body }, inline), { origin: "downloaded", format: HEAD_FORMAT });
      this.refreshed.add(`${hop.name}\0${headKey(hop.keyUrl, variant)}`);
      const old = previous?.head.body.key;
      if (old !== undefined && old !== body.key) await store.delete(hop.name, old);
    };
    const onError = (error: unknown) => reportSourceFailure("write", error, store.root, this.onWarning);
    const stored = forwardStatus(reason, response.status, true);
    if (response.body === null) {
      void save((async function* () {})()).catch(onError).finally(settle);
      return withCacheStatus(response, stored);
    }
    const encoded = response.headers.has("content-encoding");
    const length = Number(response.headers.get("content-length") ?? Number.NaN);
    const { stream, settled } = captureBody(response.body, save, !encoded && Number.isSafeInteger(length) ? length : undefined, onError);
    void settled.finally(settle);
    return rebuild(response, stream, stored);
  }

  /** Writes a body: inline in the head when it is small, else streamed into its own entry. */
  private async saveBody(store: CacheStore, hop: Hop, variant: string, chunks: AsyncIterable<Uint8Array>): Promise<{ body: StoredBody; inline: Uint8Array | undefined }> {
    const iterator = chunks[Symbol.asyncIterator]();
    const first: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      const next = await iterator.next();
      if (next.done) {
        const inline = Buffer.concat(first);
        return { body: { digest: sha256Hex(inline), size: inline.byteLength }, inline };
      }
      first.push(next.value);
      size += next.value.byteLength;
      if (size > INLINE_LIMIT) break;
    }
    const key = bodyKey(hop.keyUrl, variant, randomUUID());
    async function* rest(): AsyncIterable<Uint8Array> {
      try {
        yield* first;
        for (;;) {
          const next = await iterator.next();
          if (next.done) return;
          yield next.value;
        }
      } finally {
        await iterator.return?.();
      }
    }
    const info = await store.putStream(hop.name, key, rest(), { origin: "downloaded" });
    return { body: { digest: info.digest, size: info.size, key }, inline: undefined };
  }

  /** Stale-while-revalidate: the stored response was served; this refreshes it and never reaches the caller. */
  private revalidateInBackground(store: CacheStore, hop: Hop, found: Found, names: string[], id: string): void {
    if (this.inflight.has(id)) return;
    const finish = this.claimInflight(id);
    const background: Hop = { ...hop, init: { ...hop.init, signal: null } };
    void this.forward(store, background, found, true, names, true, "stale", id, finish)
      .then((response) => (response.body ? drain(response.body) : undefined))
      .catch(() => finish());
  }

  /** After an unsafe method succeeded: every stored response of its URL, Location and Content-Location goes (§4.4). */
  private async invalidate(url: URL, response: Response): Promise<void> {
    const store = await this.store();
    if (store === undefined) return;
    const targets = [url];
    for (const header of ["location", "content-location"]) {
      const value = response.headers.get(header);
      if (value === null) continue;
      try {
        const target = new URL(value, url);
        if (target.origin === url.origin) targets.push(target);
      } catch {
        // not a URL: nothing to invalidate
      }
    }
    try {
      for (const target of targets) {
        const name = hostEntryName(target);
        const keyUrl = requestKeyUrl(target);
        const doomed: string[] = [];
        for await (const entry of store.list(name)) if (isKeyOfUrl(entry.key, keyUrl)) doomed.push(entry.key);
        for (const key of doomed) await store.delete(name, key);
        for (const key of doomed) this.refreshed.delete(`${name}\0${key}`);
      }
    } catch (error) {
      reportSourceFailure("write", error, store.root, this.onWarning);
    }
  }
}



/** The body of a stored response kept inline in its head: null when empty. */
function inlineBodyOf(found: Found): Uint8Array | null {
  return found.inlineBody === undefined || found.inlineBody.byteLength === 0 ? null : found.inlineBody;
}

/** An init that asks for nothing (`{}`): the request is a plain GET of its URL. */
function isEmpty(init: CachedRequestInit): boolean {
  if (init === null) return false; // refused by the general path, as before
  for (const _key in init) return false;
  return true;
}

/**
 * The stored headers updated by a 304's (RFC 9111 §3.2): each field of the 304 replaces the stored one or is
 * added, except those the stored body depends on and hop-by-hop ones; a field the 304's Connection names (but
 * Set-Cookie) removes the stored one and is not added, as endToEnd leaves it out. One pass over the 304's headers.
 */
function updatedHeaders(stored: [string, string][], fresh: Headers): [string, string][] {
  const connection = fresh.get("connection");
  const named = connection === null ? undefined : new Set(connection.split(",").map((token) => token.trim().toLowerCase()));
  const replaced = new Set<string>();
  const added: [string, string][] = [];
  for (const pair of fresh) {
    const name = pair[0];
    if (KEPT_ON_UPDATE.has(name) || HOP_BY_HOP.has(name)) continue;
    replaced.add(name);
    if (name !== "set-cookie" && !named?.has(name)) added.push(pair);
  }
  const headers = stored.filter(([name]) => !replaced.has(name));
  for (const pair of added) headers.push(pair);
  if (replaced.has("set-cookie")) for (const cookie of fresh.getSetCookie()) headers.push(["set-cookie", cookie]);
  return headers;
}

/** The two header lists are the same, field for field in order, but for Date. */
function sameButDate(a: [string, string][], b: [string, string][]): boolean {
  let i = 0;
  let j = 0;
  for (;;) {
    while (i < a.length && a[i]![0] === "date") i++;
    while (j < b.length && b[j]![0] === "date") j++;
    if (i === a.length || j === b.length) return i === a.length && j === b.length;
    if (a[i]![0] !== b[j]![0] || a[i]![1] !== b[j]![1]) return false;
    i++;
    j++;
  }
}

function plainHeaders(headers: Headers): Record<string, string> {
  const record: Record<string, string> = {};
  for (const [name, value] of headers) if (name !== "set-cookie") record[name] = value;
  return record;
}


/** `promise`, or the signal's reason as soon as it aborts (a waiter's abort leaves the request it waits for alone). */
function untilAborted(promise: Promise<void>, signal: AbortSignal | null | undefined): Promise<void> {
  if (!signal) return promise;
  let onAbort!: () => void;
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
  });
  return Promise.race([promise, aborted]).finally(() => signal.removeEventListener("abort", onAbort));
}

function parseNames(data: Uint8Array): string[] | undefined {
  try {
    const names = JSON.parse(Buffer.from(data).toString("utf8")) as unknown;
    return Array.isArray(names) && names.every((name) => typeof name === "string") ? names : undefined;
  } catch {
    return undefined;
  }
}

function isImmutable(policy: CachePolicy): boolean {
  return (policy.toObject() as unknown as { rescc: Record<string, unknown> }).rescc.immutable === true;
}

/** `stale-if-error` (RFC 5861) of the response or the request still covers the stored response's age. */
function staleIfError(found: Found, request: PolicyRequest): boolean {
  if (found.head.mustRevalidate) return false;
  const policy = found.policy;
  const object = policy.toObject() as unknown as { rescc: Record<string, string | boolean> };
  const requestCc = /(?:^|,)\s*stale-if-error\s*=\s*"?(\d+)/i.exec(request.headers["cache-control"] ?? "");
  const allowed = Math.max(seconds(object.rescc["stale-if-error"]), requestCc ? Number(requestCc[1]) : 0);
  return allowed > 0 && policy.maxAge() + allowed > policy.age();
}

function seconds(value: string | boolean | undefined): number {
  const parsed = typeof value === "string" ? Number.parseInt(value, 10) : 0;
  return Number.isFinite(parsed) && parsed > 0 ? parsed : 0;
}

/** The caller's own If-None-Match / If-Modified-Since match the stored response (RFC 9110 §13.2.2). */
function notModified(request: Headers, stored: Record<string, string>): boolean {
  const noneMatch = request.get("if-none-match");
  if (noneMatch !== null) {
    const etag = stored.etag;
    if (etag === undefined) return false;
    const weak = (tag: string) => tag.trim().replace(/^W\//, "");
    return noneMatch.trim() === "*" || noneMatch.split(",").some((tag) => weak(tag) === weak(etag));
  }
  const since = request.get("if-modified-since");
  const modified = stored["last-modified"];
  if (since === null || modified === undefined) return false;
  const sinceTime = Date.parse(since);
  const modifiedTime = Date.parse(modified);
  return Number.isFinite(sinceTime) && Number.isFinite(modifiedTime) && modifiedTime <= sinceTime;
}

function storedResponse(found: Found, body: Uint8Array | ReadableStream<Uint8Array> | null, status: string): Response {
  found.served ??= servedHeaders(found.head.headers);
  const nullBody = NULL_BODY.has(found.head.status);
  const response = new Response(nullBody || body === null ? null : body instanceof Uint8Array ? bytesStream(body) : body, {
    status: found.head.status,
    statusText: found.head.statusText,
    headers: found.served,
  });
  response.headers.append("age", String(Math.floor(found.policy.age())));
  response.headers.append(CACHE_STATUS, status);
  if (found.servedDate !== undefined) response.headers.set("date", found.servedDate);
  return response;
}

/**
 * A byte stream of a copy of `bytes` (the caller may write into what it reads), queued at once: cheaper than
 * the stream `new Response(bytes)` makes, which waits for a pull and closes a microtask later.
 */
function bytesStream(bytes: Uint8Array): ReadableStream<Uint8Array> {
  const copy = new Uint8Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  return new ReadableStream({
    type: "bytes",
    start(controller) {
      controller.enqueue(copy);
      controller.close();
    },
  });
}

/**
 * The stored headers a hit replays: all but Age, Cache-Status and the fields `no-cache=…` names. A Headers
 * object, which Response copies without the conversion a list of pairs goes through.
 */
function servedHeaders(headers: [string, string][]): Headers {
  const cacheControl = headers.find(([name]) => name === "cache-control")?.[1];
  const omitted = new Set(cacheControl !== undefined && /no-cache\s*=/i.test(cacheControl) ? parseCacheControl(cacheControl).noCacheFields : []);
  return new Headers(headers.filter(([name]) => name !== "age" && name !== CACHE_STATUS && !omitted.has(name)));
}

/** The response with a body that errors with the signal's reason when it aborts before the body is read (as fetch's). */
function followSignal(response: Response, body: ReadableStream<Uint8Array>, signal: AbortSignal): Response {
  const reader = body.getReader();
  let onAbort: () => void = () => {};
  const followed = new ReadableStream<Uint8Array>({
    start(controller) {
      onAbort = () => {
        controller.error(signal.reason);
        reader.cancel(signal.reason).catch(() => {});
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
    },
    async pull(controller) {
      const next = await reader.read();
      if (signal.aborted) return;
      if (next.done) {
        signal.removeEventListener("abort", onAbort);
        controller.close();
      } else controller.enqueue(next.value);
    },
    cancel(reason) {
      signal.removeEventListener("abort", onAbort);
      return reader.cancel(reason);
    },
  });
  return new Response(followed, { status: response.status, statusText: response.statusText, headers: response.headers });
}

function withCacheStatus(response: Response, status: string): Response {
  return rebuild(response, response.body, status);
}

function rebuild(response: Response, body: ReadableStream<Uint8Array> | null, status: string): Response {
  const headers = new Headers(response.headers as unknown as HeaderInit);
  headers.set(CACHE_STATUS, status);
  const rebuilt = new Response(NULL_BODY.has(response.status) ? null : body, { status: response.status, statusText: response.statusText, headers });
  if (response.url !== "") Object.defineProperty(rebuilt, "url", { value: response.url });
  return rebuilt;
}

/** The response as fetch would give it: the final URL, and whether redirects were followed. */
function finish(response: Response, url: URL, redirected: boolean): Response {
  Object.defineProperty(response, "url", { value: url.href });
  if (redirected) Object.defineProperty(response, "redirected", { value: true });
  return response;
}

/** The default cached fetch: the shared `openConfiguredStore()` cache and the global `fetch`. See {@link createCachedFetch}. */
export const cachedFetch: FetchFunction = createCachedFetch();
