import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { sha256Hex } from "../hash/index.js";
import { GitUrlError } from "./git-errors.js";

/** A repository URL as cachet keys, fetches and names it. */
export interface GitRemote {
  /** What `git fetch` is given: the URL as written (credentials included), or an absolute path for a local one. */
  readonly fetchUrl: string;
  /**
   * The URL without credentials, a trailing slash or a `.git` suffix, scheme and host lower-cased, scp-like
   * `user@host:path` written as `ssh://host/path`, local paths (and `file://` URLs) as the `file://` URL of
   * the absolute path, which keeps its `.git`. One repository database each.
   */
  readonly canonical: string;
  /** The database id: sha256 hex of {@link canonical}. */
  readonly id: string;
  /** The last segment of the path without `.git` (the default entry name). */
  readonly repositoryName: string;
  /** The URL as written with any `user:password@` replaced by `***@`, for messages. */
  readonly display: string;
  /** Secrets the URL carries (user and password), to scrub from git's own messages. */
  readonly secrets: readonly string[];
}

/** Shorter credentials are scrubbed only where they appear as a URL's `user:password@`, not as bare text. */
const MIN_SECRET = 4;
const SCHEME = /^([a-z][a-z0-9+.-]*):\/\//i;
/** `user@host:path` (git's scp-like syntax): a colon before any slash, and not a Windows drive letter. */
const SCP_LIKE = /^(?:([^@/]+)@)?([^/:]+):(?!\/\/)(.*)$/;

/** Parses a repository URL (`https://`, `ssh://`, `git://`, `file://`, scp-like, or a local path). */
export function parseGitRemote(url: string, cwd: string = process.cwd()): GitRemote {
  if (typeof url !== "string" || url.trim() === "") throw new GitUrlError(String(url), "it is empty");
  if (/[\u0000-\u001f\u007f]/.test(url)) throw new GitUrlError(url, "it contains a control character");
  if (url.startsWith("-")) throw new GitUrlError(url, "it starts with '-'");
  const scheme = SCHEME.exec(url);
  if (scheme) return parseSchemeUrl(url, scheme[1]!.toLowerCase());
  const scp = SCP_LIKE.exec(url);
  if (scp && !/^[a-z]$/i.test(scp[2]!)) {
    // The user of an scp-like URL (`git@`) is an ssh login, not a secret; ssh authenticates with keys. A
    // `user:password@` is redacted all the same.
    const [, user, host, path] = scp;
    const canonical = `ssh://${host!.toLowerCase()}/${trimPath(path!.replace(/^\/+/, ""))}`;
    const password = user?.includes(":") ? user.slice(user.indexOf(":") + 1) : "";
    return password === "" ? remote(url, canonical, url, []) : remote(url, canonical, `***@${url.slice(user!.length + 1)}`, [password]);
  }
  return localRemote(isAbsolute(url) ? resolve(url) : resolve(cwd, url), url);
}

/**
 * A repository on this machine. Its path names exactly one directory, so only trailing slashes go: `repo` and
 * `repo.git` beside it are two repositories.
 */
function localRemote(absolute: string, display: string): GitRemote {
  const path = resolve(absolute);
  return remote(path, pathToFileURL(path).href, display, []);
}

function parseSchemeUrl(url: string, scheme: string): GitRemote {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new GitUrlError(redactUrl(url), "it is not a valid URL");
  }
  // Over http(s) a user name alone is often a token (`https://<token>@host/…`); an ssh login is not a secret.
  // A query string on a repository URL is an access token (`?private_token=…`, a signed URL), never a repository.
  const queryValues = [...parsed.searchParams.values()];
  const secrets = [...(scheme === "ssh" ? [parsed.password] : [parsed.username, parsed.password]), ...queryValues]
    .filter((part) => part.length >= MIN_SECRET)
    .flatMap((part) => [part, safeDecode(part), encodeURIComponent(part)]);
  if (scheme === "file") return localRemote(decodeURIComponent(parsed.pathname), url);
  const port = parsed.port === "" ? "" : `:${parsed.port}`;
  const canonical = `${scheme}://${parsed.hostname.toLowerCase()}${port}${trimPath(parsed.pathname)}`;
  return remote(url, canonical, redactUrl(url), secrets);
}

function remote(fetchUrl: string, canonical: string, display: string, secrets: string[]): GitRemote {
  const segments = canonical.split(/[/:]/).filter((segment) => segment !== "");
  const last = safeDecode(segments[segments.length - 1] ?? "").replace(/\.git$/i, "");
  const repositoryName = last === "" || last === "." || last === ".." || /[\u0000-\u001f\\]/.test(last) ? "repository" : last.slice(0, 255);
  return { fetchUrl, canonical, id: sha256Hex(canonical), repositoryName, display, secrets: [...new Set(secrets)] };
}

/** Drops trailing slashes and one `.git` suffix (`/org/repo.git/` → `/org/repo`). */
function trimPath(path: string): string {
  return path.replace(/\/+$/, "").replace(/\.git$/i, "").replace(/\/+$/, "");
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** A URL with any `user:password@` replaced by `***@`, and any query string by `?***` (wherever it appears in `text`). */
export function redactUrl(text: string): string {
  // Up to the last `@` of the authority: a password may hold an unencoded `@` (`user:p@ss@host`).
  return text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#]*@/gi, "$1***@").replace(/\b([a-z][a-z0-9+.-]*:\/\/[^\s?#'"]*)\?[^\s#'"]+/gi, "$1?***");
}

/** `text` (git's own output) with the remote's credentials removed. */
export function redactSecrets(text: string, remote: Pick<GitRemote, "secrets">): string {
  let redacted = redactUrl(text);
  for (const secret of remote.secrets) if (secret.length >= MIN_SECRET) redacted = redacted.split(secret).join("***");
  return redacted;
}
