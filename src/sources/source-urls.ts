import { SourceUrlError } from "./errors.js";

/**
 * The URL rules of sources. Credentials (`user:pass@`) never enter a key, an entry name, a message or anything
 * on disk: they are taken out of the URL here, once, and sent only as an `Authorization` header.
 */

/** A URL split into what identifies the resource and the credentials it carried. */
export interface SplitUrl {
  /** The URL without credentials and fragment. */
  url: URL;
  /** `Basic …` for the credentials the URL carried, or undefined. */
  authorization: string | undefined;
}

/** Parses `input` as an http(s) URL and takes its credentials and fragment out. */
export function splitUrl(input: string | URL): SplitUrl {
  let url: URL;
  try {
    url = new URL(String(input));
  } catch {
    throw new SourceUrlError(redactText(String(input)), "it is not a valid URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new SourceUrlError(withoutCredentials(url).href, `only http and https are supported, not ${url.protocol}`);
  }
  let authorization: string | undefined;
  if (url.username !== "" || url.password !== "") {
    const user = decodeURIComponent(url.username);
    const password = decodeURIComponent(url.password);
    authorization = `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
  }
  if (authorization === undefined && url.hash === "") return { url, authorization };
  const clean = withoutCredentials(url);
  clean.hash = "";
  return { url: clean, authorization };
}

/** The URL a cachedFetch entry is keyed by: no credentials, no fragment (a trailing slash is kept: it is another resource). */
export function requestKeyUrl(url: URL): string {
  if (url.username === "" && url.password === "" && url.hash === "") return url.href;
  const clean = withoutCredentials(url);
  clean.hash = "";
  return clean.href;
}

/**
 * The canonical URL of a download (`fetchArtifact`): no credentials, no fragment, no trailing slash, so
 * `https://u:p@host/a.tgz/#x` and `https://host/a.tgz` are one download.
 */
export function canonicalArtifactUrl(input: string | URL): string {
  const { url } = splitUrl(input);
  const href = url.href;
  if (url.search === "" && url.pathname.length > 1 && url.pathname.endsWith("/")) return href.replace(/\/+$/, "");
  return href;
}

/** The entry name of cachedFetch entries: the URL's host (with its port when it is not the default one). */
export function hostEntryName(url: URL): string {
  return url.host;
}

/** The default name of a download: the URL's last non-empty path segment, else its host. */
export function artifactNameOf(canonicalUrl: string): string {
  const url = new URL(canonicalUrl);
  const segments = url.pathname.split("/").filter((segment) => segment !== "");
  const last = segments.at(-1);
  if (last === undefined) return url.host;
  let name: string;
  try {
    name = decodeURIComponent(last);
  } catch {
    name = last;
  }
  // A decoded segment may hold a separator or control character no entry name may have.
  // eslint-disable-next-line no-control-regex
  name = name.replace(/[/\\\u0000-\u001f\u007f]/g, "_");
  return name === "." || name === ".." || name === "" ? url.host : lastBytes(name, 255);
}

/**
 * The end of `name` within `limit` UTF-8 bytes (a file name's limit; the store's is 255 characters): the front
 * goes, so the extension that picks an archive format stays. A character is never cut in half.
 */
function lastBytes(name: string, limit: number): string {
  if (Buffer.byteLength(name) <= limit) return name;
  const characters = [...name];
  let bytes = 0;
  let start = characters.length;
  while (start > 0 && bytes + Buffer.byteLength(characters[start - 1]!) <= limit) bytes += Buffer.byteLength(characters[--start]!);
  return characters.slice(start).join("");
}

function withoutCredentials(url: URL): URL {
  const copy = new URL(url.href);
  copy.username = "";
  copy.password = "";
  return copy;
}

/** A string that failed to parse as a URL, with anything that looks like `user:pass@` taken out. */
function redactText(text: string): string {
  return text.replace(/\/\/[^/@\s]*@/, "//");
}
