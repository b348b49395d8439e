import { readFileSync } from "node:fs";
import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import { hashValue, UnhashableValueError } from "../hash/index.js";
import type { StoreWarning } from "../store/index.js";
import { cut } from "./cache-failures.js";
import type { TaskFunctionSource } from "./parameters.js";
import { filePathOfUrl, functionClosure, withDebugger, type FunctionClosure } from "./policies/function-location.js";
import { analyzeModule, findFunctionNode, lineOffsets, referencesInRange, type AstNode, type ModuleAnalysis } from "./policies/module-analysis.js";

/**
 * The variables a task function takes from an enclosing function (a factory's parameter, a loop variable), read
 * once when the task is defined. Their values change what the function computes without changing its source,
 * so hashable ones enter the task's version and the others are reported. Module-level names and globals do not
 * count: they are the same for every definition in a process (and `SourceGraphPolicy` follows module code).
 * Nor do variables the function only keeps state in (a counter it increments, a log it appends to): their
 * values at definition say nothing about a call. A variable it both reads and writes (a `cfg` it annotates and
 * reads a factor from) counts, with its value at definition. A function that calls `eval` may read any enclosing
 * variable, so it is reported.
 */
export interface CapturedVariables {
  /** sha256 of each hashable captured value, by variable name, sorted by name. */
  readonly digests: Readonly<Record<string, string>>;
  /** Captured variables that cannot enter the version, each with why (`a function`, `cannot be read …`). */
  readonly unusable: ReadonlyArray<{ readonly name: string; readonly reason: string }>;
  /** False when Node's inspector is not available: no value could be read, and `unusable` names every candidate. */
  readonly inspected: boolean;
}

const NONE: CapturedVariables = Object.freeze({ digests: Object.freeze({}), unusable: Object.freeze([]), inspected: true });

/** Scope kinds whose variables belong to the module or the process, not to an enclosing function. */
const NOT_CAPTURED_SCOPES = new Set(["Module", "Script", "Global"]);

/** The variables `fn` captures from enclosing functions, minus `ignored` names. Never throws. */
export function captureVariables(fn: Function, source: TaskFunctionSource, ignored: ReadonlySet<string>): CapturedVariables {
  const candidates = source.freeNames.filter((name) => !ignored.has(name) && !source.stateNames.includes(name));
  const lexicalThis = source.thisUse === "lexical" && !ignored.has("this");
  const callsEval = source.freeNames.includes("eval") && !ignored.has("eval");
  if (candidates.length === 0 && !lexicalThis) return NONE;
  let closure: FunctionClosure | undefined;
  try {
    closure = functionClosure(fn);
  } catch {
    closure = undefined;
  }
  if (!closure) return { digests: {}, unusable: uninspected(candidates), inspected: false };

  const script = new ScriptView(fn, closure);
  const isModule = closure.scopes.some((scope) => scope.kind === "Module");
  const values = new Map<string, unknown>();
  const unusable: Array<{ name: string; reason: string }> = [];
  for (const name of candidates) {
    try {
      const scope = closure.scopes.find((candidate) => candidate.kind !== "Global" && Object.hasOwn(candidate.variables, name));
      if (!scope || NOT_CAPTURED_SCOPES.has(scope.kind)) continue;
      // Without a Module scope the function may come from a CommonJS module, whose top level is a function scope.
      if (!isModule && scope.kind === "Closure" && script.isModuleLevel(name)) continue;
      const value = (scope.variables as Record<string, unknown>)[name];
      if (value === fn) continue; // the function referring to itself
      values.set(name, value);
    } catch (error) {
      // A `with` object whose property access throws, say.
      unusable.push({ name, reason: `reading it threw: ${String((error as Error)?.message ?? error)}` });
    }
  }

  const digests: Record<string, string> = {};
  for (const name of [...values.keys()].sort()) {
    try {
      digests[name] = hashValue(values.get(name), { label: "captured variable", path: name });
    } catch (error) {
      const reason = error instanceof UnhashableValueError ? refusal(error) : `hashing it threw: ${String((error as Error)?.message ?? error)}`;
      unusable.push({ name, reason });
    }
  }
  unusable.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  if (callsEval && closure.scopes.some((scope) => scope.kind === "Closure")) {
    unusable.push({ name: "eval", reason: "the function calls eval, so which enclosing variables it reads cannot be known" });
  }
  if (lexicalThis && script.arrowThisIsCaptured()) {
    unusable.push({ name: "this", reason: "the `this` of the function that defined it, which cannot be read" });
  }
  return { digests, unusable, inspected: true };
}

/** `client.agent: cannot hash an instance of Agent` from the hash layer's message (its advice is about inputs). */
function refusal(error: UnhashableValueError): string {
  const reason = error.message.replace(/^captured variable(?: "[^"]*")?: /, "").replace(/ — .*$/, "");
  return error.path.includes(".") || error.path.includes("[") ? `${error.path}: ${reason}` : reason;
}

/** The source of the script that defines a function, analysed on demand (through the debugger). */
class ScriptView {
  #analysis: { analysis: ModuleAnalysis; node: AstNode } | null | undefined;

  constructor(
    private readonly fn: Function,
    private readonly closure: FunctionClosure,
  ) {}

  /** Whether `name`, as the function refers to it, is declared at the top level of its module (or is a global). */
  isModuleLevel(name: string): boolean {
    const found = this.#load();
    if (!found) return false; // cannot tell: count it, so its value is keyed on or reported
    const { start, end } = found.node;
    const declaredInside = (scope: { node: AstNode }) => scope.node.start >= start && scope.node.end <= end;
    const reference = referencesInRange(found.analysis, start, end).find(
      (ref) => ref.name === name && (ref.binding === undefined || !declaredInside(ref.binding.scope)),
    );
    if (!reference) return false;
    return reference.binding === undefined || reference.binding.scope === found.analysis.moduleScope;
  }

  /** Whether an arrow function's `this` is that of an enclosing function or class (not the module's). */
  arrowThisIsCaptured(): boolean {
    const found = this.#load();
    if (!found) return true;
    const { node, analysis } = found;
    return analysis.functionNodes.some(
      (other) => other !== node && other.type !== "ArrowFunctionExpression" && other.start <= node.start && node.end <= other.end,
    );
  }

  #load(): { analysis: ModuleAnalysis; node: AstNode } | null {
    if (this.#analysis !== undefined) return this.#analysis;
    this.#analysis = null;
    const location = this.closure.location;
    if (!location) return null;
    try {
      const analysis = scriptAnalysis(location.scriptId);
      if (!analysis) return null;
      const offset = (lineOffsets(analysis.source)[location.lineNumber] ?? 0) + location.columnNumber;
      const node = findFunctionNode(this.fn, analysis, offset);
      if (node) this.#analysis = { analysis, node };
    } catch {
      // An unparsable script: every candidate counts.
    }
    return this.#analysis;
  }
}

const scriptAnalyses = new Map<string, ModuleAnalysis | null>();

function scriptAnalysis(scriptId: string): ModuleAnalysis | null {
  const cached = scriptAnalyses.get(scriptId);
  if (cached !== undefined) return cached;
  const source = withDebugger((scripts) => scripts.source(scriptId));
  const analysis = source === undefined ? null : analyzeModule(source, { typescript: false, jsx: false });
  if (scriptAnalyses.size >= 64) scriptAnalyses.delete(scriptAnalyses.keys().next().value!);
  scriptAnalyses.set(scriptId, analysis);
  return analysis;
}

/**
 * Without an inspector no value can be read, and a free name cannot be placed in a scope. The candidates are
 * the free names that are not globals and not declared only at the top level of the module that called
 * `task()` (read from disk); a name that module also declares inside a function is kept.
 */
function uninspected(candidates: readonly string[]): Array<{ name: string; reason: string }> {
  const reason = "its value cannot be read without Node's inspector";
  const notGlobal = candidates.filter((name) => !(name in globalThis));
  const caller = callerModule();
  return notGlobal.filter((name) => !caller || !onlyModuleLevel(caller, name)).sort().map((name) => ({ name, reason }));
}

function onlyModuleLevel(analysis: ModuleAnalysis, name: string): boolean {
  if (!analysis.moduleScope.bindings.has(name)) return false;
  return analysis.references.every((ref) => ref.name !== name || !ref.binding || ref.binding.scope === analysis.moduleScope);
}

const OWN_DIRECTORY = fileURLToPath(new URL(".", import.meta.url));

/** The module (outside this folder) whose code called `task()`, parsed from disk; undefined if unknown. */
function callerModule(): ModuleAnalysis | undefined {
  const file = callerFile();
  if (!file) return undefined;
  try {
    const extension = extname(file);
    const typescript = [".ts", ".tsx", ".mts", ".cts"].includes(extension);
    return analyzeModule(readFileSync(file, "utf8"), { typescript, jsx: extension === ".tsx" || extension === ".jsx" });
  } catch {
    return undefined;
  }
}

function callerFile(): string | undefined {
  const original = Error.prepareStackTrace;
  const limit = Error.stackTraceLimit;
  let files: Array<string | undefined> = [];
  try {
    Error.stackTraceLimit = 30;
    Error.prepareStackTrace = (_error, sites) => sites.map((site) => site.getFileName() ?? undefined);
    files = new Error().stack as unknown as Array<string | undefined>;
  } catch {
    return undefined;
  } finally {
    Error.prepareStackTrace = original;
    Error.stackTraceLimit = limit;
  }
  for (const name of Array.isArray(files) ? files : []) {
    const path = name === undefined ? undefined : filePathOfUrl(name);
    if (path && !path.startsWith(OWN_DIRECTORY)) return path;
  }
  return undefined;
}

const warnedDefinitions = new Set<string>();

/**
 * The warning for captured variables that cannot enter a task's version, once per process per task name and
 * set of variables (a factory that defines the same task many times warns once); undefined when there is none.
 */
export function capturedWarning(taskName: string, captured: CapturedVariables): StoreWarning | undefined {
  if (captured.unusable.length === 0) return undefined;
  const id = `${taskName}\0${captured.unusable.map((item) => item.name).join("\0")}`;
  if (warnedDefinitions.has(id)) return undefined;
  if (warnedDefinitions.size < 10_000) warnedDefinitions.add(id);
  const list = captured.unusable.map(({ name, reason }) => `${cut(name, 60)} (${cut(reason, 120)})`).join(", ");
  const names = captured.unusable.map(({ name }) => JSON.stringify(cut(name, 60)));
  const what = captured.inspected
    ? "uses variables of an enclosing function whose values cannot be part of its key"
    : "may use variables of an enclosing function, and without Node's inspector their values cannot be read into its key";
  return {
    code: "CACHET_CAPTURED_VARIABLES",
    message:
      `cachet: task "${cut(taskName, 80)}" ${what}: ${list}. A hit could return a result computed with other values. ` +
      `Pass ${names.length > 1 ? "them as inputs" : "it as an input"}, give the Cache an explicit version, or list ` +
      `${names.length > 1 ? "them" : "it"} in ignoredInputs (${names.join(", ")}), which also silences this warning`,
  };
}
