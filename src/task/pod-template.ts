import { hashKey, hashValue } from "../hash/index.js";
import { describeValue, PodTemplateError, readStringMap } from "./errors.js";
import { unknownOption } from "./option-names.js";

/** JSON-like data, as a Kubernetes pod spec is written. */
export type PodSpecValue = null | boolean | number | string | readonly PodSpecValue[] | { readonly [key: string]: PodSpecValue };

/** Options of `new PodTemplate(...)`. */
export interface PodTemplateOptions {
  /** A Kubernetes `PodSpec` as plain data (`{ containers: [...], nodeSelector: {...} }`). */
  podSpec?: { readonly [key: string]: unknown };
  /** The name of the container the task runs in. Default `"primary"`; must not be empty. */
  primaryContainerName?: string;
  /** Labels for the pod. */
  labels?: Readonly<Record<string, string>>;
  /** Annotations for the pod. */
  annotations?: Readonly<Record<string, string>>;
}

const OPTION_NAMES = ["podSpec", "primaryContainerName", "labels", "annotations"];

/**
 * A custom pod template for a task (Flyte's `PodTemplate`). Immutable: the pod spec is copied and frozen, with
 * `undefined` properties dropped as JSON would drop them. `versionHash()` is the canonical hash of all four
 * fields, so it does not depend on the order of keys.
 */
export class PodTemplate {
  /** The pod spec, or `undefined`. */
  readonly podSpec: { readonly [key: string]: PodSpecValue } | undefined;
  /** The primary container's name. */
  readonly primaryContainerName: string;
  /** Pod labels (empty when none were given). */
  readonly labels: Readonly<Record<string, string>>;
  /** Pod annotations (empty when none were given). */
  readonly annotations: Readonly<Record<string, string>>;
  readonly #hash: string;

  constructor(options: PodTemplateOptions = {}) {
    if (typeof options !== "object" || options === null || Array.isArray(options)) {
      throw new PodTemplateError(`new PodTemplate(options): options must be an object, got ${describeValue(options)}`);
    }
    for (const key of Object.keys(options)) {
      if (!OPTION_NAMES.includes(key)) {
        throw new PodTemplateError(unknownOption("new PodTemplate(options)", key, OPTION_NAMES));
      }
    }
    const { podSpec, primaryContainerName = "primary", labels, annotations } = options;
    if (typeof primaryContainerName !== "string" || primaryContainerName.trim() === "") {
      throw new PodTemplateError(
        `PodTemplate option "primaryContainerName" must be a non-empty string, got ${describeValue(primaryContainerName)}`,
      );
    }
    if (podSpec !== undefined && !isPlainObject(podSpec)) {
      throw new PodTemplateError(`PodTemplate option "podSpec" must be a plain object, got ${describeValue(podSpec)}`);
    }
    this.podSpec = podSpec === undefined ? undefined : (copyJson(podSpec, "podSpec") as { [key: string]: PodSpecValue });
    this.primaryContainerName = primaryContainerName;
    this.labels = stringMap(labels, "labels");
    this.annotations = stringMap(annotations, "annotations");
    this.#hash = hashValue(
      {
        podSpec: this.podSpec ?? null,
        primaryContainerName: this.primaryContainerName,
        labels: this.labels,
        annotations: this.annotations,
      },
      { label: "PodTemplate" },
    );
    Object.freeze(this);
  }

  /** sha256 hex of the template's canonical encoding; equal templates give equal hashes whatever their key order. */
  versionHash(): string {
    return this.#hash;
  }

  /** Lets a `PodTemplate` be hashed as a task input. */
  [hashKey](): string {
    return this.#hash;
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/** A frozen deep copy of JSON-like data; `undefined` object properties are dropped, anything else non-JSON is refused. */
function copyJson(value: unknown, path: string, seen: Set<unknown> = new Set()): PodSpecValue {
  if (value === null || typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new PodTemplateError(`PodTemplate ${path} must be a finite number, got ${value}`);
    return value;
  }
  if (typeof value === "object" && !seen.has(value)) {
    if (Array.isArray(value)) {
      seen.add(value);
      const items = value.map((item, index) => copyJson(item === undefined ? null : item, `${path}[${index}]`, seen));
      seen.delete(value);
      return Object.freeze(items);
    }
    if (isPlainObject(value)) {
      seen.add(value);
      const out: Record<string, PodSpecValue> = {};
      for (const [key, item] of Object.entries(value)) {
        if (item !== undefined) out[key] = copyJson(item, `${path}.${key}`, seen);
      }
      seen.delete(value);
      return Object.freeze(out);
    }
  }
  const what = typeof value === "object" && seen.has(value) ? "a cycle" : describeValue(value);
  throw new PodTemplateError(`PodTemplate ${path} must be JSON-like data (objects, arrays, strings, numbers, booleans, null), got ${what}`);
}

function stringMap(value: unknown, option: string): Readonly<Record<string, string>> {
  if (value === undefined) return Object.freeze({});
  return readStringMap(value, option, (path, got, what) => new PodTemplateError(`PodTemplate option "${path}" must be ${what}, got ${got}`));
}
