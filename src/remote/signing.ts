import { createHmac, timingSafeEqual } from "node:crypto";

/** What an entry's signature covers: who it is for, what it holds and how it is to be read. */
export interface SignedFields {
  name: string;
  key: string;
  storage: string;
  digest: string;
  size: number;
  origin: string;
  format: string | undefined;
  components: unknown;
}

/** HMAC-SHA256 of an entry's name, key, content digest and metadata under `signingKey`. */
export function signEntry(signingKey: string, fields: SignedFields): Buffer {
  const message = JSON.stringify([
    "cachet-remote-entry/1",
    fields.name,
    fields.key,
    fields.storage,
    fields.digest,
    fields.size,
    fields.origin,
    fields.format ?? null,
    canonicalJson(fields.components ?? null),
  ]);
  return createHmac("sha256", signingKey).update(message).digest();
}

/** Why `signature` does not vouch for `fields` (`unsigned`, `wrongly signed`), or undefined when it does. */
export function signatureProblem(signingKey: string, fields: SignedFields, signature: Buffer | null): string | undefined {
  if (signature === null || signature.byteLength === 0) return "unsigned";
  const expected = signEntry(signingKey, fields);
  if (signature.byteLength !== expected.byteLength || !timingSafeEqual(signature, expected)) return "wrongly signed";
  return undefined;
}

/**
 * JSON with object keys sorted, so the same components sign alike whichever way they were stored (PostgreSQL's
 * `jsonb` reorders keys and drops whitespace).
 */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, item]) => item !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([name, item]) => `${JSON.stringify(name)}:${canonicalJson(item)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}
