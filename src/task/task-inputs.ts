import type { ParameterShape } from "./parameters.js";
import { TaskDefinitionError } from "./errors.js";

/**
 * Names a call's arguments: positional parameters by their names (missing ones as `undefined`, so
 * `f("a")` and `f("a", undefined)` are one key), or, for a function taking one object, that object's
 * properties. Ignored inputs are left out.
 */
export function namedInputs(shape: ParameterShape, args: readonly unknown[], ignored: ReadonlySet<string>): Record<string, unknown> {
  const inputs: Record<string, unknown> = {};
  const single = args[0];
  if (isObjectArgument(shape, args, single)) {
    for (const key of Object.keys(single as object)) {
      if (!ignored.has(key)) inputs[key] = (single as Record<string, unknown>)[key];
    }
    return inputs;
  }
  if (shape.kind === "object") {
    // Called with something other than one plain object: key on the arguments as they are.
    args.forEach((value, index) => (inputs[`$${index}`] = value));
    return inputs;
  }
  const names = shape.names;
  for (let index = 0; index < names.length; index++) {
    const name = names[index]!;
    if (!ignored.has(name)) inputs[name] = args[index];
  }
  if (args.length > names.length) {
    const extra = args.slice(names.length);
    const restName = shape.rest ?? "$rest";
    if (!ignored.has(restName)) inputs[restName] = extra;
  }
  return inputs;
}

function isObjectArgument(shape: ParameterShape, args: readonly unknown[], single: unknown): boolean {
  if (args.length !== 1 || single === null || typeof single !== "object") return false;
  const proto = Object.getPrototypeOf(single);
  if (proto !== Object.prototype && proto !== null) return false;
  return shape.kind === "object" || (shape.kind === "positional" && shape.names.length === 1 && shape.rest === undefined);
}

/**
 * Checks at definition time that every ignored input names a parameter (or, for a function taking one
 * object, one of its destructured properties). A single plain parameter may name properties of its object.
 */
export function checkIgnoredInputs(taskName: string, shape: ParameterShape, ignored: readonly string[]): void {
  const known =
    shape.kind === "object" ? shape.names : shape.rest === undefined ? shape.names : [...shape.names, shape.rest];
  const lenient = (shape.kind === "object" && shape.open) || (shape.kind === "positional" && shape.names.length === 1 && shape.rest === undefined);
  for (const name of ignored) {
    if (known.includes(name) || lenient) continue;
    throw new TaskDefinitionError(
      `task "${taskName}": ignored input "${name}" matches no parameter (parameters: ${known.length ? known.join(", ") : "none"})`,
    );
  }
}
