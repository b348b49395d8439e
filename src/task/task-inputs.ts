import type { StoreWarning } from "../store/index.js";
import type { ParameterShape, TaskFunctionSource } from "./parameters.js";
import { TaskDefinitionError } from "./errors.js";
import { cut } from "./cache-failures.js";

/** The name under which a call's `this` is an input (and can be listed in `ignoredInputs`). */
export const RECEIVER_INPUT = "this";

/**
 * Names a call's arguments: positional parameters by their names (missing ones as `undefined`, so
 * `f("a")` and `f("a", undefined)` are one key), or, for a function taking one object, that object's
 * properties. Ignored inputs are left out; ignoring the one parameter of a one-parameter function leaves out
 * its whole argument.
 */
export function namedInputs(shape: ParameterShape, args: readonly unknown[], ignored: ReadonlySet<string>): Record<string, unknown> {
  const inputs: Record<string, unknown> = {};
  const single = args[0];
  if (isObjectArgument(shape, args, single)) {
    if (shape.kind === "positional" && ignored.has(shape.names[0]!)) return inputs;
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
  return shape.kind === "object" || isSingleParameter(shape);
}

function isSingleParameter(shape: ParameterShape): boolean {
  return shape.kind === "positional" && shape.names.length === 1 && shape.rest === undefined;
}

/**
 * Checks at definition that every ignored input names something: a parameter, `this`, or a variable the function
 * takes from outside. Where inputs are properties of an argument only known at a call (a one-parameter function,
 * a destructured parameter with `...rest`), the names left over are returned, to be checked at the first call;
 * elsewhere a name that matches nothing is a {@link TaskDefinitionError} listing the parameters.
 */
/**
 * The ignored names as the function runs: a name that matches no parameter, where exactly one parameter is that
 * name followed by digits, means that parameter. Transpilers rename a parameter that shadows a module-level name
 * (esbuild, under tsx: `logger` → `logger2`), and the user wrote the name in the source. Both names are kept.
 */
export function ignoredAsRun(source: TaskFunctionSource, ignored: readonly string[]): string[] {
  const parameters = parameterNames(source.shape);
  const names = [...ignored];
  for (const name of ignored) {
    const renamed = parameters.includes(name) ? undefined : renamedParameter(parameters, name);
    if (renamed !== undefined) names.push(renamed);
  }
  return names;
}

/** The one parameter named `name` plus digits, if exactly one is. */
function renamedParameter(parameters: readonly string[], name: string): string | undefined {
  const renamed = parameters.filter((parameter) => parameter.startsWith(name) && /^\d+$/.test(parameter.slice(name.length)));
  return renamed.length === 1 ? renamed[0] : undefined;
}

function parameterNames(shape: ParameterShape): readonly string[] {
  return shape.kind === "object" ? shape.names : shape.rest === undefined ? shape.names : [...shape.names, shape.rest];
}

export function checkIgnoredInputs(taskName: string, source: TaskFunctionSource, ignored: readonly string[]): string[] {
  const { shape } = source;
  const parameters = parameterNames(shape);
  const deferred: string[] = [];
  const byProperties = (shape.kind === "object" && shape.open) || isSingleParameter(shape);
  for (const name of ignored) {
    if (parameters.includes(name) || name === RECEIVER_INPUT || source.freeNames.includes(name)) continue;
    if (renamedParameter(parameters, name) !== undefined) continue;
    if (byProperties) {
      deferred.push(name);
      continue;
    }
    throw new TaskDefinitionError(
      `task "${cut(taskName, 80)}": ignored input "${cut(name, 80)}" matches no parameter (parameters: ${parameters.length ? parameters.join(", ") : "none"})`,
    );
  }
  return deferred;
}

/**
 * At a task's first call, the ignored names that match neither its parameter nor a property of the argument, as
 * one warning (they ignore nothing, so they are most likely misspelt); undefined when all match.
 */
export function unmatchedIgnoredInputs(
  taskName: string,
  shape: ParameterShape,
  deferred: readonly string[],
  args: readonly unknown[],
): StoreWarning | undefined {
  const single = args[0];
  const properties = args.length === 1 && typeof single === "object" && single !== null ? Object.keys(single) : [];
  const unmatched = deferred.filter((name) => !properties.includes(name));
  if (unmatched.length === 0) return undefined;
  const parameter = shape.kind === "positional" ? `the parameter "${shape.names[0]}"` : "the destructured parameter";
  const listed = properties.length ? properties.slice(0, 20).map((p) => cut(p, 40)).join(", ") : "none";
  const names = unmatched.map((name) => `"${cut(name, 80)}"`).join(", ");
  return {
    code: "CACHET_UNKNOWN_IGNORED_INPUT",
    message:
      `cachet: task "${cut(taskName, 80)}": ignored input ${names} matches neither ${parameter} nor a property of ` +
      `the argument of its first call (properties: ${listed}), so it ignores nothing; check the spelling`,
  };
}
