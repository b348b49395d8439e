/**
 * Paths to a value inside a value, as error messages print them: `.name` for identifier keys, `[3]` for
 * indexes, `["odd key"]` for other keys, `.get("k")` for Map values with a primitive key, `.keys()[i]` for Map
 * keys, `.values()[i]` for Set members and Map values with an object key, `[hashKey]()` for what a declared hash
 * returned. The encoder records one segment per depth in two parallel arrays (no allocation per node) and only
 * renders them when it refuses something.
 */

/** Segment kind: own key of a plain object (value: the key string). */
export const SEG_KEY = 0;
/** Segment kind: array index (value: the index). */
export const SEG_INDEX = 1;
/** Segment kind: a Map key (value: its position). */
export const SEG_MAP_KEY = 2;
/** Segment kind: a Map value under a primitive key (value: the key). */
export const SEG_MAP_VALUE = 3;
/** Segment kind: a Map value under an object key, or a Set member (value: its position). */
export const SEG_MEMBER = 4;
/** Segment kind: the value a declared hash (`[hashKey]()`) returned (value unused). */
export const SEG_HASHED = 5;

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** Renders one key of a plain object as a path segment: `.name` or `["odd key"]`. */
export function keySegment(key: string): string {
  return IDENTIFIER.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}

function primitiveLiteral(value: unknown): string {
  switch (typeof value) {
    case "string":
      return JSON.stringify(value);
    case "bigint":
      return `${value}n`;
    case "number":
      return Object.is(value, -0) ? "-0" : String(value);
    default:
      return String(value);
  }
}

/** True for the Map keys `.get(…)` can spell (primitives other than symbols). */
export function isLiteralKey(key: unknown): boolean {
  const type = typeof key;
  return key === null || (type !== "object" && type !== "function" && type !== "symbol");
}

/** Renders the first `depth` recorded segments after `prefix` (a leading `.` is dropped when the prefix is empty). */
export function renderPath(prefix: string, kinds: readonly number[], values: readonly unknown[], depth: number): string {
  let path = prefix;
  for (let d = 0; d < depth; d++) {
    const value = values[d];
    switch (kinds[d]) {
      case SEG_KEY:
        path += keySegment(value as string);
        break;
      case SEG_INDEX:
        path += `[${value as number}]`;
        break;
      case SEG_MAP_KEY:
        path += `.keys()[${value as number}]`;
        break;
      case SEG_MAP_VALUE:
        path += `.get(${primitiveLiteral(value)})`;
        break;
      case SEG_MEMBER:
        path += `.values()[${value as number}]`;
        break;
      case SEG_HASHED:
        path += "[hashKey]()";
        break;
    }
  }
  return prefix === "" && path.startsWith(".") ? path.slice(1) : path;
}

/** `label "path": reason`, or `label: reason` for the value itself. */
export function describeAt(label: string, path: string, reason: string): string {
  return path === "" ? `${label}: ${reason}` : `${label} "${path}": ${reason}`;
}
