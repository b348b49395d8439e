import { CachetError } from "../errors.js";

/** A `Cache` option (or a policy's constructor argument) has the wrong type or value. */
export class CacheConfigError extends CachetError {
  readonly code = "CACHET_CACHE_CONFIG";
}

/** A cache policy failed while deriving a task's version. `cause` holds what the policy threw. */
export class CachePolicyError extends CachetError {
  readonly code = "CACHET_CACHE_POLICY";

  constructor(
    message: string,
    /** The failing policy's class name. */
    readonly policyName: string,
    /** The name of the task function whose version was being derived. */
    readonly functionName: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A task defined in a way cachet cannot cache (no name, an ignored input that names no parameter, …). */
export class TaskDefinitionError extends CachetError {
  readonly code = "CACHET_TASK_DEFINITION";
}

/**
 * A `file()`/`dir()` reference that cannot be used: not given a path, or naming nothing, or naming the wrong kind
 * (a directory given to `file()`). The message names the input or result it sits in and says what to do.
 */
export class FileRefError extends CachetError {
  readonly code = "CACHET_FILE_REF";

  constructor(
    message: string,
    /** Where the reference sits in the inputs or the result (`src`, `out.report`); empty for the value itself. */
    readonly path: string,
    /** The file or directory it names, as resolved (empty when it was not given a path). */
    readonly file: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A function's source (or the module around it) cannot be read or parsed, so no version can be derived from it. */
export class FunctionSourceError extends CachetError {
  readonly code = "CACHET_FUNCTION_SOURCE";
}

/** An `ImageSpec` option is invalid, or a file its tag depends on cannot be read. */
export class ImageSpecError extends CachetError {
  readonly code = "CACHET_IMAGE_SPEC";
}

/** A `PodTemplate` option is invalid. */
export class PodTemplateError extends CachetError {
  readonly code = "CACHET_POD_TEMPLATE";
}

/** A short human description of a value for error messages: `a string ("x")`, `a number (3)`, `an array`, `an instance of Foo`. */
export function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "undefined";
  switch (typeof value) {
    case "string": {
      const text = value.length > 40 ? `${value.slice(0, 37)}...` : value;
      return `a string (${JSON.stringify(text)})`;
    }
    case "number":
    case "bigint":
    case "boolean":
      return `a ${typeof value} (${String(value)})`;
    case "symbol":
      return `a symbol (${String(value)})`;
    case "function":
      return value.name ? `a function (${value.name})` : "an anonymous function";
  }
  if (Array.isArray(value)) return "an array";
  const proto = Object.getPrototypeOf(value) as { constructor?: { name?: string } } | null;
  const ctor = proto?.constructor?.name;
  if (proto === null || ctor === "Object") return "a plain object";
  return ctor ? `an instance of ${ctor}` : "an object";
}

/**
 * Reads an option that must be an object of strings into a frozen copy; `fail(path, got)` makes the error
 * of the caller's class (`path` is `option` or `option.key`).
 */
export function readStringMap(value: unknown, option: string, fail: (path: string, got: string, what: string) => Error): Readonly<Record<string, string>> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw fail(option, describeValue(value), "an object of strings");
  const out: Record<string, string> = {};
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== "string") throw fail(`${option}.${key}`, describeValue(item), "a string");
    out[key] = item;
  }
  return Object.freeze(out);
}
