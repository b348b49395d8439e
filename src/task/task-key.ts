import { createHash } from "node:crypto";
import { encodeCanonical, hashValue } from "../hash/index.js";

/** Identifies the key scheme; bump to change every task key at once. */
const KEY_SCHEME = "cachet-task-key/1";

/** What a task key is made of, kept with each entry so `explain` can say which part changed. */
export interface KeyComponents {
  task: string;
  version: string;
  /** Whether the version was given explicitly or derived from policies. */
  versionSource: "explicit" | "policies";
  salt: string;
  policies: string[];
  ignoredInputs: string[];
  /** Digest per input path (`text`, `config.model`, `items[2]`), leaves of plain data up to a few levels. */
  inputs: Record<string, string>;
  /** Digest of each variable the function captured from an enclosing function, by name, when any entered the version. */
  captured?: Record<string, string>;
  /** The version the `Cache` gave (explicit or from policies) before captured variables were mixed in. */
  policyVersion?: string;
  /** Digest of the `this` the task was called with, when it is an input. */
  receiver?: string;
}

/**
 * The key components recorded with an entry, if they have the shape this build writes; anything else (an entry
 * of another build, a damaged value: the components are not part of the row checksum) counts as none recorded.
 */
export function asKeyComponents(value: unknown): KeyComponents | undefined {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return undefined;
  const c = value as Record<string, unknown>;
  const isString = (v: unknown): v is string => typeof v === "string";
  const isStringList = (v: unknown): boolean => Array.isArray(v) && v.every(isString);
  const isDigestMap = (v: unknown): boolean =>
    v !== null && typeof v === "object" && !Array.isArray(v) && Object.values(v as object).every(isString);
  const valid =
    isString(c.task) &&
    isString(c.version) &&
    (c.versionSource === "explicit" || c.versionSource === "policies") &&
    isString(c.salt) &&
    isStringList(c.policies) &&
    isStringList(c.ignoredInputs) &&
    isDigestMap(c.inputs) &&
    (c.captured === undefined || isDigestMap(c.captured)) &&
    (c.policyVersion === undefined || isString(c.policyVersion)) &&
    (c.receiver === undefined || isString(c.receiver));
  return valid ? (value as KeyComponents) : undefined;
}

/** Precomputes the part of the key that is fixed per task, so a call hashes only its inputs. */
export function keyPrefix(task: string, version: string): Buffer {
  return Buffer.from(`${KEY_SCHEME}\0${task.length}:${task}\0${version.length}:${version}\0`, "utf8");
}

/** Separates the inputs from the receiver in a key (the canonical encoding is self-delimiting, so this is unambiguous). */
const RECEIVER_MARK = Buffer.from("\0this\0", "utf8");

/**
 * `sha256(scheme, name, version, canonical inputs[, receiver])` as hex. `receiver` is the `this` of a call when
 * it is an input (absent otherwise, so keys without one are unchanged). Throws `UnhashableValueError` naming the
 * input (`this` for the receiver).
 */
export function taskKey(prefix: Buffer, inputs: Record<string, unknown>, receiver: { value: unknown } | undefined = undefined): string {
  const encoded = encodeCanonical(inputs, { label: "input" });
  const hash = createHash("sha256").update(prefix).update(encoded);
  if (receiver) hash.update(RECEIVER_MARK).update(encodeCanonical(receiver.value, { label: "input", path: "this" }));
  return hash.digest("hex");
}

const MAX_INPUT_PATHS = 256;
const MAX_DEPTH = 4;

/** Digests of each input and of the leaves of plain objects and arrays inside it, by readable path. */
export function inputDigests(inputs: Record<string, unknown>): Record<string, string> {
  const digests: Record<string, string> = {};
  let count = 0;
  const visit = (value: unknown, path: string, depth: number): void => {
    if (count >= MAX_INPUT_PATHS) return;
    const children = plainChildren(value);
    if (children === undefined || depth >= MAX_DEPTH || children.length === 0) {
      digests[path] = hashValue(value, { label: "input", path });
      count++;
      return;
    }
    for (const [key, child] of children) visit(child, typeof key === "number" ? `${path}[${key}]` : `${path}.${key}`, depth + 1);
  };
  for (const name of Object.keys(inputs).sort()) {
    digests[name] = hashValue(inputs[name], { label: "input", path: name });
    const children = plainChildren(inputs[name]);
    if (children && children.length > 0) {
      for (const [key, child] of children) visit(child, typeof key === "number" ? `${name}[${key}]` : `${name}.${key}`, 1);
    }
  }
  return digests;
}

function plainChildren(value: unknown): Array<[string | number, unknown]> | undefined {
  if (value === null || typeof value !== "object") return undefined;
  if (Array.isArray(value)) return value.map((item, index) => [index, item]);
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return undefined;
  return Object.keys(value)
    .sort()
    .map((key) => [key, (value as Record<string, unknown>)[key]]);
}
