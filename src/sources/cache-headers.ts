/**
 * What `http-cache-semantics` is shown of a response, where its parsing is looser or older than RFC 9111 (the
 * public HTTP caching suite finds each case; docs/http-caching.md lists them). The stored and served headers are
 * always the origin's own; only the policy's view is normalized:
 *
 * - `Cache-Control` directive names are case-insensitive; a directive with spaces around `=` or a non-numeric
 *   `max-age`/`s-maxage` is invalid and ignored; of a directive given twice, the first counts (§4.2.1);
 *   `no-cache="field"` (qualified) does not forbid reuse, it only removes those fields from a reused response
 *   (as does `private="field"` in a shared cache, moot here).
 * - `Expires` must be an HTTP-date (IMF-fixdate, obsolete RFC 850 or asctime); anything else means "already
 *   expired" (RFC 9111 §5.3), and a two-digit RFC 850 year more than 50 years ahead is in the past century.
 * - `Pragma` in a response means nothing (RFC 9111 §5.4 covers requests only).
 * - An `Age` that is not a non-negative integer is ignored.
 * - A status the library does not list is storable when the response has explicit freshness or `public`
 *   (RFC 9111 §3, §4.2.2), so the policy is shown `200` for it.
 */

/** Statuses the library itself stores. */
const UNDERSTOOD = new Set([200, 203, 204, 300, 301, 302, 303, 307, 308, 404, 405, 410, 414, 501]);

/** Headers never stored or served from the cache (hop-by-hop, RFC 9110 §7.6.1). */
export const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"]);

/** A parsed Cache-Control: lower-cased directive names, invalid directives dropped, qualified no-cache fields apart. */
export interface CacheControl {
  /** The directives as the policy should read them (`max-age=60, must-revalidate`). */
  normalized: string;
  /** Fields named by `no-cache="…"`, to leave out of a reused response. */
  noCacheFields: string[];
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;

/** Values parsed lately: an origin sends the same few, and a revalidation parses its response's again. */
const parsedCacheControls = new Map<string, CacheControl>();
const MAX_PARSED = 256;
/** Longer values are parsed each time, so what is kept stays small whatever an origin sends. */
const MAX_KEPT_LENGTH = 256;

/** Parses Cache-Control values (as joined by fetch) per RFC 9111 §5.2. */
export function parseCacheControl(value: string | undefined): CacheControl {
  if (value === undefined) return { normalized: "", noCacheFields: [] };
  if (value.length > MAX_KEPT_LENGTH) return parseDirectives(value);
  let parsed = parsedCacheControls.get(value);
  if (parsed === undefined) {
    parsed = parseDirectives(value);
    if (parsedCacheControls.size >= MAX_PARSED) parsedCacheControls.delete(parsedCacheControls.keys().next().value!);
    parsedCacheControls.set(value, parsed);
  }
  return { normalized: parsed.normalized, noCacheFields: [...parsed.noCacheFields] };
}

function parseDirectives(value: string): CacheControl {
  const kept: string[] = [];
  const noCacheFields: string[] = [];
  for (const part of splitDirectives(value)) {
    const match = /^([^=\s]+)(?:=(.*))?$/.exec(part.trim());
    if (!match) continue; // spaces around "=", or none at all
    const name = match[1]!.toLowerCase();
    if (!TOKEN.test(name)) continue;
    const raw = match[2];
    let argument = raw;
    if (argument !== undefined && argument.startsWith('"')) {
      if (argument.length < 2 || !argument.endsWith('"')) continue;
      argument = argument.slice(1, -1);
    }
    if (name === "max-age" || name === "s-maxage" || name === "stale-while-revalidate" || name === "stale-if-error") {
      if (argument === undefined || !/^\d+$/.test(argument)) continue;
      if (kept.some((directive) => directive.startsWith(`${name}=`))) continue; // the first occurrence counts (§4.2.1)
      kept.push(`${name}=${argument}`);
      continue;
    }
    if ((name === "no-cache" || name === "private") && argument !== undefined) {
      if (name === "no-cache") noCacheFields.push(...argument.split(",").map((field) => field.trim().toLowerCase()).filter((field) => field !== ""));
      continue;
    }
    kept.push(raw === undefined ? name : `${name}=${raw}`);
  }
  return { normalized: kept.join(", "), noCacheFields };
}

/** Splits on commas outside quoted strings. */
function splitDirectives(value: string): string[] {
  const parts: string[] = [];
  let current = "";
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const char = value[i]!;
    if (char === '"') quoted = !quoted;
    if (char === "\\" && quoted) {
      current += char + (value[++i] ?? "");
      continue;
    }
    if (char === "," && !quoted) {
      parts.push(current);
      current = "";
    } else current += char;
  }
  parts.push(current);
  return parts.filter((part) => part.trim() !== "");
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const DAYS = "(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)";
const LONG_DAYS = "(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)";
const MONTH = `(${MONTHS.join("|")})`;
const IMF_FIXDATE = new RegExp(`^${DAYS}, (\\d{2}) ${MONTH} (\\d{4}) (\\d{2}):(\\d{2}):(\\d{2}) GMT$`);
const RFC850 = new RegExp(`^${LONG_DAYS}, (\\d{2})-${MONTH}-(\\d{2}) (\\d{2}):(\\d{2}):(\\d{2}) GMT$`);
const ASCTIME = new RegExp(`^${DAYS} ${MONTH} ( \\d|\\d{2}) (\\d{2}):(\\d{2}):(\\d{2}) (\\d{4})$`);

/** An HTTP-date (RFC 9110 §5.6.7) in ms since the epoch, or NaN for anything else. */
export function parseHttpDate(value: string, now = Date.now()): number {
  const text = value.trim();
  let day: string, month: string, year: number, hour: string, minute: string, second: string;
  let match = IMF_FIXDATE.exec(text);
  if (match) {
    [, day, month, , hour, minute, second] = match as unknown as string[] as [string, string, string, string, string, string, string];
    year = Number(match[3]);
  } else if ((match = RFC850.exec(text))) {
    [, day, month, , hour, minute, second] = match as unknown as string[] as [string, string, string, string, string, string, string];
    const thisYear = new Date(now).getUTCFullYear();
    year = Math.floor(thisYear / 100) * 100 + Number(match[3]);
    if (year > thisYear + 50) year -= 100;
  } else if ((match = ASCTIME.exec(text))) {
    month = match[1]!;
    day = match[2]!.trim();
    hour = match[3]!;
    minute = match[4]!;
    second = match[5]!;
    year = Number(match[6]);
  } else return Number.NaN;
  const time = Date.UTC(year, MONTHS.indexOf(month), Number(day), Number(hour), Number(minute), Number(second));
  const check = new Date(time);
  return check.getUTCDate() === Number(day) && Number(hour) < 24 && Number(minute) < 60 && Number(second) < 61 ? time : Number.NaN;
}

/** The response headers as the policy should read them, and the status it should be shown. */
export function policyView(status: number, headers: Readonly<Record<string, string>>): { status: number; headers: Record<string, string>; noCacheFields: string[] } {
  const view: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name === "pragma") continue;
    view[name] = value;
  }
  const cacheControl = parseCacheControl(headers["cache-control"]);
  if (headers["cache-control"] !== undefined) view["cache-control"] = cacheControl.normalized;
  if (headers.expires !== undefined) {
    const expires = parseHttpDate(headers.expires);
    view.expires = Number.isNaN(expires) ? "0" : new Date(expires).toUTCString();
  }
  if (headers.age !== undefined && !/^\s*\d+\s*(?:,|$)/.test(headers.age)) delete view.age;
  let shownStatus = status;
  if (!UNDERSTOOD.has(status) && status >= 200 && status !== 206 && status !== 304) {
    const explicit = /(?:^|, )(?:max-age|s-maxage)=|(?:^|, )public(?:,|$)/.test(cacheControl.normalized) || view.expires !== undefined;
    if (explicit) shownStatus = 200;
  }
  return { status: shownStatus, headers: view, noCacheFields: cacheControl.noCacheFields };
}
