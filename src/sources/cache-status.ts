/**
 * `Cache-Status` (RFC 9211) values cachedFetch puts on every response, so callers and logs see what happened:
 * `cachet; hit`, `cachet; fwd=uri-miss; stored`, `cachet; fwd=stale; fwd-status=304`, …
 */

/** Why a request went to the origin (RFC 9211 §2.2). */
export type ForwardReason = "bypass" | "method" | "uri-miss" | "vary-miss" | "miss" | "request" | "stale";

/** The header's name. */
export const CACHE_STATUS = "cache-status";

/** The cache's identifier in the header. */
const CACHE_ID = "cachet";

/** A hit: served from the store without contacting the origin; `detail` says why a stale one was allowed. */
export function hitStatus(detail?: string): string {
  return detail === undefined ? `${CACHE_ID}; hit` : `${CACHE_ID}; hit; detail=${detail}`;
}

/** A forwarded request with the origin's status, whether the response was stored, and an optional detail. */
export function forwardStatus(reason: ForwardReason, fwdStatus: number | undefined, stored: boolean, detail?: string): string {
  let value = `${CACHE_ID}; fwd=${reason}`;
  if (fwdStatus !== undefined) value += `; fwd-status=${fwdStatus}`;
  if (stored) value += "; stored";
  if (detail !== undefined) value += `; detail=${detail}`;
  return value;
}
