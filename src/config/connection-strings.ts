import { SettingError } from "./errors.js";

/**
 * A connection URL with its password (and any `password=` query parameter) replaced by `***`, for messages and
 * logs: cachet never prints a secret it was given. A string that is not a URL is shown as `(a connection string)`.
 */
export function redactUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return "(a connection string)";
  }
  if (parsed.password !== "") parsed.password = "***";
  for (const name of [...parsed.searchParams.keys()]) {
    if (/pass|secret|token|key/i.test(name)) parsed.searchParams.set(name, "***");
  }
  return parsed.toString();
}

/** Replaces every occurrence of `secret`'s password (and the URL itself) in `text` by its redacted form. */
export function redactIn(text: string, secret: string): string {
  let out = text.split(secret).join(redactUrl(secret));
  try {
    const password = decodeURIComponent(new URL(secret).password);
    if (password.length >= 3) out = out.split(password).join("***");
    const raw = new URL(secret).password;
    if (raw.length >= 3) out = out.split(raw).join("***");
  } catch {
    // not a URL: nothing more to hide than the whole string
  }
  return out;
}

/** A URL setting with one of the `protocols`; a bad value is a {@link SettingError} showing only its redacted form. */
export function readRemoteUrl(setting: string, raw: string, protocols: readonly string[], accepted: string): string {
  const value = raw.trim();
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw new SettingError(setting, redactUrl(value), accepted);
  }
  if (!protocols.includes(parsed.protocol)) throw new SettingError(setting, redactUrl(value), accepted);
  return value;
}
