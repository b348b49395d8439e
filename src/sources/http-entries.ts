import { sha256Hex } from "../hash/index.js";

/**
 * How cachedFetch lays out a URL's stored responses on the store's entries, all named by the URL's host:
 *
 * - `vary <url>`: the request header names the URL's last stored response varies on (JSON), to pick a variant.
 * - `head <url> <variant>`: one per variant: status, every end-to-end header, the freshness policy, and the
 *   body's digest and size, followed by the body itself when it is small (one read serves a hit).
 * - `body <url> <variant> <id>`: a larger body, streamed in first; a new response writes a new id, so a head
 *   never points at a body written for another response.
 *
 * `<variant>` is a digest of the values of the headers Vary names, and of `Authorization` and `Cookie` when the
 * request has them (secrets as digests of their own).
 */

/** Format of a head entry: readers treat any other as a miss. */
export const HEAD_FORMAT = "cachet-http-head/1";
/** Format of a vary entry. */
export const VARY_FORMAT = "cachet-http-vary/1";

export function varyKey(url: string): string {
  return `vary ${url}`;
}

export function headKey(url: string, variant: string): string {
  return `head ${url} ${variant}`;
}

export function bodyKey(url: string, variant: string, id: string): string {
  return `body ${url} ${variant} ${id}`;
}

/** True for keys of any entry of `url` (for invalidation). */
export function isKeyOfUrl(key: string, url: string): boolean {
  return key === varyKey(url) || key.startsWith(`head ${url} `) || key.startsWith(`body ${url} `);
}

/** Header names of a Vary value, lower-cased and sorted; `["*"]` for `Vary: *`. */
export function varyNames(vary: string | null | undefined): string[] {
  if (!vary) return [];
  const names = [...new Set(vary.split(",").map((name) => name.trim().toLowerCase()).filter((name) => name !== ""))].sort();
  return names.includes("*") ? ["*"] : names;
}

/**
 * The variant of a request (its kept headers, lower-cased names) for a response that varies on `names`. A request
 * with `Authorization` or `Cookie` varies on it whatever the response says: what one credential (or none) was
 * given is never a hit for another.
 */
export function variantOf(names: readonly string[], keptHeaders: Readonly<Record<string, string>>): string {
  const implied = CREDENTIALS.filter((name) => keptHeaders[name] !== undefined && !names.includes(name));
  const keyed = implied.length === 0 ? names : [...names, ...implied].sort();
  if (keyed.length === 0) return "-";
  return sha256Hex(JSON.stringify(keyed.map((name) => [name, keptHeaders[name] ?? null]))).slice(0, 32);
}

/** Request headers every stored response varies on when the request has them. */
const CREDENTIALS = ["authorization", "cookie"];

/** Where a head's body is. */
export interface StoredBody {
  digest: string;
  size: number;
  /** The body entry's key; absent when the body follows the head in the same entry. */
  key?: string | undefined;
}

/** A stored response without its body. */
export interface StoredHead {
  status: number;
  statusText: string;
  /** `http-cache-semantics`' policy object (request headers reduced to those Vary names). */
  policy: Record<string, unknown>;
  /** The origin's end-to-end headers, in order, each Set-Cookie line on its own. */
  headers: [string, string][];
  /** `must-revalidate`: never served stale (kept out of the policy, which would never serve it fresh either). */
  mustRevalidate: boolean;
  body: StoredBody;
}

/** The head as stored: its JSON on one line, then the inline body if any. */
export function encodeHead(head: StoredHead, inlineBody: Uint8Array | undefined): Buffer {
  const json = Buffer.from(`${JSON.stringify(head)}\n`, "utf8");
  return inlineBody === undefined ? json : Buffer.concat([json, inlineBody]);
}

/** A stored head and its inline body, or undefined when the bytes are not a head this version reads. */
export function decodeHead(data: Uint8Array): { head: StoredHead; inlineBody: Uint8Array | undefined } | undefined {
  const newline = data.indexOf(0x0a);
  if (newline < 0) return undefined;
  let head: StoredHead;
  try {
    head = JSON.parse(Buffer.from(data.buffer, data.byteOffset, newline).toString("utf8")) as StoredHead;
  } catch {
    return undefined;
  }
  if (typeof head?.status !== "number" || typeof head.body?.digest !== "string" || typeof head.policy !== "object" || !Array.isArray(head.headers)) return undefined;
  if (head.body.key !== undefined) return { head, inlineBody: undefined };
  const inlineBody = data.subarray(newline + 1);
  // The store checks a value's bytes (row checksums); the size guards against a head of another shape.
  if (inlineBody.byteLength !== head.body.size) return undefined;
  return { head, inlineBody };
}
