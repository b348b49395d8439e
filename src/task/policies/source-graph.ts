import { readFileSync, statSync } from "node:fs";
import { dirname, extname, relative, sep } from "node:path";
import { sha256Hex } from "../../hash/index.js";

import type { CachePolicy } from "../cache-policy.js";
import { CacheConfigError, describeValue, FunctionSourceError } from "../errors.js";
import { taskDefinition } from "../task.js";
import type { VersionParameters } from "../version-parameters.js";
import { filePathOfUrl, toFileUrl, withDebugger, type ScriptAccess } from "./function-location.js";
import {
  analyzeModule,
  findFunctionNode,
  lineOffsets,
  referencesInRange,
  statementIndexAt,
  tokensInRange,
  type Binding,
  type ModuleAnalysis,
} from "./module-analysis.js";
import { resolveImport } from "./module-resolution.js";
import { digestTokens, functionLabel } from "./source-tokens.js";

/** Options of `new SourceGraphPolicy(...)`. */
export interface SourceGraphPolicyOptions {
  /**
   * The module that defines the task function (`import.meta.url`, a `file:` URL or a path). Not needed where
   * Node's inspector is available (the default): the function's module is then found from the function itself.
   */
  module?: string | URL;
}

/** One thing a task's version depends on, as `SourceGraphPolicy.dependencies()` lists it. */
export type SourceGraphEntry =
  | { readonly kind: "function"; readonly digest: string }
  | { readonly kind: "code"; readonly module: string; readonly digest: string }
  | { readonly kind: "data"; readonly module: string; readonly digest: string }
  | { readonly kind: "package"; readonly name: string; readonly version: string }
  | { readonly kind: "builtin"; readonly name: string };

/**
 * Versions a task by its function and everything in the project it reaches: the top-level declarations of its
 * own module that it references (functions, classes, variables, enums), transitively; through imports, the
 * declarations behind the exports it uses in the project's other modules, transitively; installed packages by
 * `name@version`; Node builtins by name. Declarations are hashed like `FunctionBodyPolicy` hashes a function
 * (tokens, so comments and formatting do not count), and a top-level statement that assigns to or calls a
 * method of a reached declaration (`table.x = 1`, `registry.add(...)`) counts with it. Editing a helper the
 * task calls changes the version; editing an unrelated function in the same file does not. Globals do not count.
 *
 * The code read is the code that runs: a module Node has loaded is read from V8 (for TypeScript run through a
 * loader, the compiled JavaScript), others from disk. The result is computed once per function and process.
 */
export class SourceGraphPolicy implements CachePolicy {
  /** The defining module, when given. */
  readonly module: string | undefined;

  constructor(options: SourceGraphPolicyOptions = {}) {
    if (typeof options !== "object" || options === null) {
      throw new CacheConfigError(`new SourceGraphPolicy(options): options must be an object, got ${describeValue(options)}`);
    }
    const module = options.module;
    if (module !== undefined && typeof module !== "string" && !(module instanceof URL)) {
      throw new CacheConfigError(
        `SourceGraphPolicy option "module" must be import.meta.url, a file URL or a path, got ${describeValue(module)}`,
      );
    }
    this.module = module === undefined ? undefined : toFileUrl(String(module));
    Object.freeze(this);
  }

  getVersion(salt: string, params: VersionParameters): string {
    const digest = graphDigest(checkFunction(params.func), this.module);
    return sha256Hex(JSON.stringify(["source-graph", salt, digest]));
  }

  /**
   * What the function's version depends on, sorted; module names are relative to the function's module. `func`
   * may be a cached task (what `task()` returned): the function it wraps is looked at.
   */
  dependencies(func: VersionParameters["func"]): readonly SourceGraphEntry[] {
    return graphOf(checkFunction(func), this.module).entries;
  }
}

/** The function to look at: `fn`, or for a cached task the function it wraps (not cachet's own wrapper). */
function checkFunction(fn: unknown): (...args: never[]) => unknown {
  if (typeof fn !== "function") {
    throw new TypeError(`SourceGraphPolicy needs params.func to be a function, got ${describeValue(fn)}`);
  }
  return taskDefinition(fn)?.func ?? (fn as (...args: never[]) => unknown);
}

interface Graph {
  readonly entries: readonly SourceGraphEntry[];
  readonly digest: string;
}

const graphCache = new WeakMap<object, Map<string, Graph>>();

function graphDigest(fn: (...args: never[]) => unknown, module: string | undefined): string {
  return graphOf(fn, module).digest;
}

function graphOf(fn: (...args: never[]) => unknown, module: string | undefined): Graph {
  let perModule = graphCache.get(fn);
  const cached = perModule?.get(module ?? "");
  if (cached) return cached;
  let graph = withDebugger((scripts) => buildGraph(fn, module, scripts));
  if (graph === undefined) {
    if (module === undefined) {
      throw new FunctionSourceError(
        `SourceGraphPolicy cannot find where function ${functionLabel(fn)} is defined: Node's inspector is not ` +
          `available in this process; pass new SourceGraphPolicy({ module: import.meta.url }) or give the Cache a version`,
      );
    }
    graph = buildGraph(fn, module, undefined);
  }
  if (!perModule) graphCache.set(fn, (perModule = new Map()));
  perModule.set(module ?? "", graph);
  return graph;
}

/** A module being walked: its file, its analysis and a key unique to this source. */
interface ModuleRecord {
  readonly path: string;
  readonly key: string;
  readonly analysis: ModuleAnalysis;
}

const analysisCache = new Map<string, ModuleAnalysis>();

function analyze(key: string, path: string, source: string, fromDisk: boolean): ModuleAnalysis {
  const cached = analysisCache.get(key);
  if (cached) return cached;
  const extension = extname(path);
  const typescript = fromDisk && [".ts", ".tsx", ".mts", ".cts"].includes(extension);
  const jsx = fromDisk && [".tsx", ".jsx"].includes(extension);
  let analysis: ModuleAnalysis;
  try {
    analysis = analyzeModule(source, { typescript, jsx });
  } catch (cause) {
    throw new FunctionSourceError(
      `SourceGraphPolicy cannot parse ${path}: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  }
  analysisCache.set(key, analysis);
  return analysis;
}

/** Loads a module's source: the script V8 runs if it is loaded (optionally a given script), else the file on disk. */
function loadModule(path: string, scripts: ScriptAccess | undefined, scriptId?: string): ModuleRecord {
  const loaded = scriptId !== undefined ? { scriptId } : scripts?.scriptForFile(path);
  if (loaded && scripts) {
    const key = `script:${loaded.scriptId}`;
    const cached = analysisCache.get(key);
    const analysis = cached ?? analyze(key, path, scripts.source(loaded.scriptId), false);
    return { path, key, analysis };
  }
  let source: string;
  let key: string;
  try {
    const stats = statSync(path);
    key = `file:${path}:${stats.mtimeMs}:${stats.size}`;
    const cached = analysisCache.get(key);
    if (cached) return { path, key, analysis: cached };
    source = readFileSync(path, "utf8");
  } catch (cause) {
    throw new FunctionSourceError(`SourceGraphPolicy cannot read ${path}: ${(cause as Error).message}`, { cause });
  }
  return { path, key, analysis: analyze(key, path, source, true) };
}

function buildGraph(fn: (...args: never[]) => unknown, module: string | undefined, scripts: ScriptAccess | undefined): Graph {
  const location = scripts?.locate(fn);
  let rootPath: string | undefined;
  let scriptId: string | undefined;
  if (module !== undefined) {
    rootPath = filePathOfUrl(module);
    if (location && filePathOfUrl(location.url) === rootPath) scriptId = location.scriptId;
  } else if (location) {
    rootPath = filePathOfUrl(location.url);
    scriptId = location.scriptId;
  }
  if (rootPath === undefined) {
    const where = module ?? location?.url;
    throw new FunctionSourceError(
      `SourceGraphPolicy cannot find the module that defines function ${functionLabel(fn)}` +
        (where ? ` (${where} is not a file)` : " (native, bound, or created by eval or new Function)") +
        `; give the Cache an explicit version`,
    );
  }
  const root = loadModule(rootPath, scripts, scriptId);
  let offset: number | undefined;
  if (location && scriptId !== undefined) {
    offset = (lineOffsets(root.analysis.source)[location.lineNumber] ?? 0) + location.columnNumber;
  }
  const range = findFunctionNode(fn, root.analysis, offset);
  if (!range) {
    throw new FunctionSourceError(
      `SourceGraphPolicy cannot find function ${functionLabel(fn)} in ${rootPath}; give the Cache an explicit version`,
    );
  }
  const walk = new GraphWalk(dirname(rootPath), scripts);
  walk.add({ kind: "function", digest: digestTokens(tokensInRange(root.analysis, range.start, range.end)) });
  walk.addRange(root, range.start, range.end);
  const entries = walk.sortedEntries();
  const digest = sha256Hex(JSON.stringify(entries));
  return { entries, digest };
}

/** The transitive walk from a function over declarations, modules and packages. */
class GraphWalk {
  readonly #entries = new Map<string, SourceGraphEntry>();
  readonly #visited = new Set<string>();
  readonly #modules = new Map<string, ModuleRecord>();

  constructor(
    readonly rootDir: string,
    readonly scripts: ScriptAccess | undefined,
  ) {}

  add(entry: SourceGraphEntry): void {
    this.#entries.set(JSON.stringify(entry), entry);
  }

  sortedEntries(): SourceGraphEntry[] {
    return [...this.#entries.keys()].sort().map((key) => this.#entries.get(key)!);
  }

  #once(key: string): boolean {
    if (this.#visited.has(key)) return false;
    this.#visited.add(key);
    return true;
  }

  #name(record: ModuleRecord): string {
    const name = relative(this.rootDir, record.path).split(sep).join("/");
    return name.startsWith(".") ? name : `./${name}`;
  }

  #module(path: string): ModuleRecord {
    let record = this.#modules.get(path);
    if (!record) {
      record = loadModule(path, this.scripts);
      this.#modules.set(path, record);
    }
    return record;
  }

  /** Everything the code in `[start, end)` of a module refers to outside that range. */
  addRange(record: ModuleRecord, start: number, end: number): void {
    const { analysis } = record;
    for (const reference of referencesInRange(analysis, start, end)) {
      const binding = reference.binding;
      if (!binding) continue;
      if (binding.scope === analysis.moduleScope) {
        this.addBinding(record, binding);
      } else if (binding.scope.node.start < start || binding.scope.node.end > end) {
        // A variable of an enclosing function: its value depends on the whole top-level statement around it.
        this.addStatement(record, statementIndexAt(analysis, start));
      }
    }
    for (const call of analysis.calls) {
      if (call.start >= start && call.end <= end) this.addSpecifier(record, call.source, "*");
    }
  }

  addBinding(record: ModuleRecord, binding: Binding): void {
    if (!this.#once(`${record.key}#binding:${binding.name}`)) return;
    if (binding.importRef) this.addSpecifier(record, binding.importRef.source, binding.importRef.imported);
    else this.addStatement(record, binding.topIndex);
    for (const index of record.analysis.mutations.get(binding) ?? []) this.addStatement(record, index);
  }

  addStatement(record: ModuleRecord, index: number): void {
    const statement = record.analysis.statements[index];
    if (!statement || !this.#once(`${record.key}#statement:${index}`)) return;
    const digest = digestTokens(tokensInRange(record.analysis, statement.start, statement.end));
    this.add({ kind: "code", module: this.#name(record), digest });
    this.addRange(record, statement.start, statement.end);
  }

  addSpecifier(record: ModuleRecord, specifier: string, imported: string): void {
    const target = resolveImport(specifier, record.path);
    switch (target.kind) {
      case "builtin":
        this.add({ kind: "builtin", name: target.name });
        return;
      case "package":
        this.add({ kind: "package", name: target.name, version: target.version });
        return;
      case "unresolved":
        throw new FunctionSourceError(
          `SourceGraphPolicy cannot resolve import "${specifier}" in ${record.path}: ${target.reason}; ` +
            `give the Cache an explicit version`,
        );
      case "file":
        if (extname(target.path) === ".json" || extname(target.path) === ".node") {
          this.#addData(record, target.path);
          return;
        }
        this.addExport(this.#module(target.path), imported);
    }
  }

  #addData(from: ModuleRecord, path: string): void {
    if (!this.#once(`data:${path}`)) return;
    const digest = sha256Hex(readFileSync(path));
    this.add({ kind: "data", module: this.#name({ path, key: "", analysis: from.analysis }), digest });
  }

  addExport(record: ModuleRecord, name: string): void {
    if (!this.#once(`${record.key}#export:${name}`)) return;
    const { analysis } = record;
    if (!analysis.isModule) {
      this.addWholeModule(record);
      return;
    }
    if (name === "*") {
      for (const exported of analysis.exports.keys()) this.addExport(record, exported);
      for (const source of analysis.starExports) this.addSpecifier(record, source, "*");
      return;
    }
    const target = analysis.exports.get(name);
    if (target) {
      if (target.kind === "statement") this.addStatement(record, target.index);
      else if (target.kind === "reexport") this.addSpecifier(record, target.source, target.imported);
      else {
        const binding = analysis.moduleScope.bindings.get(target.name);
        if (binding) this.addBinding(record, binding);
      }
      return;
    }
    for (const source of analysis.starExports) {
      const resolved = resolveImport(source, record.path);
      if (resolved.kind !== "file") continue;
      if (this.#exportsName(this.#module(resolved.path), name, new Set())) {
        this.addSpecifier(record, source, name);
        return;
      }
    }
    // The name is not found statically (e.g. `export =`): count the whole module.
    this.addWholeModule(record);
  }

  #exportsName(record: ModuleRecord, name: string, seen: Set<string>): boolean {
    if (seen.has(record.path)) return false;
    seen.add(record.path);
    if (record.analysis.exports.has(name)) return true;
    return record.analysis.starExports.some((source) => {
      const resolved = resolveImport(source, record.path);
      return resolved.kind === "file" && this.#exportsName(this.#module(resolved.path), name, seen);
    });
  }

  addWholeModule(record: ModuleRecord): void {
    if (!this.#once(`${record.key}#whole`)) return;
    const { analysis } = record;
    analysis.statements.forEach((_statement, index) => this.addStatement(record, index));
    for (const binding of analysis.moduleScope.bindings.values()) if (binding.importRef) this.addBinding(record, binding);
    for (const source of analysis.bareImports.values()) this.addSpecifier(record, source, "*");
  }
}
