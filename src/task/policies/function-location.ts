import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";

/**
 * Finding where a function was defined, and the exact source V8 executed, through an in-process inspector
 * session (`node:inspector`). In-process sessions answer synchronously, so versions can be derived without
 * `await`. The debugger is enabled only for the duration of one lookup.
 */

/** Where a function's definition starts in its script (0-based line and column, as V8 reports them). */
export interface FunctionLocation {
  readonly scriptId: string;
  readonly url: string;
  readonly lineNumber: number;
  readonly columnNumber: number;
}

interface InspectorSession {
  connect(): void;
  post(method: string, params: object, callback: (error: Error | null, result?: unknown) => void): void;
  on(event: string, listener: (message: { params: Record<string, unknown> }) => void): void;
}

type SessionConstructor = new () => InspectorSession;

let session: InspectorSession | null | undefined;
const scriptUrls = new Map<string, string>();
let debuggerDepth = 0;

function getSession(): InspectorSession | null {
  if (session !== undefined) return session;
  try {
    const require = createRequire(import.meta.url);
    const { Session } = require("node:inspector") as { Session: SessionConstructor };
    const created = new Session();
    created.connect();
    created.on("Debugger.scriptParsed", (message) => {
      const { scriptId, url } = message.params as { scriptId: string; url: string };
      if (url) scriptUrls.set(scriptId, url);
    });
    session = created;
  } catch {
    session = null;
  }
  return session;
}

function post<T>(active: InspectorSession, method: string, params: object = {}): T {
  let settled = false;
  let failure: Error | null = null;
  let value: unknown;
  active.post(method, params, (error, result) => {
    settled = true;
    failure = error;
    value = result;
  });
  if (!settled) throw new Error(`inspector call ${method} did not answer synchronously`);
  if (failure) throw failure;
  return value as T;
}

/** One scope of a function's scope chain, innermost first, as V8 reports it in `[[Scopes]]`. */
export interface FunctionScope {
  /** `Closure`, `Block`, `Catch`, `With`, `Eval`, `Local`, `Script`, `Module` or `Global`. */
  readonly kind: string;
  /** For a closure, the enclosing function's name when it has one. */
  readonly functionName: string | undefined;
  /** The scope's variables as properties (a copy for closure and block scopes; `globalThis` for `Global`). */
  readonly variables: object;
}

/** What V8 knows of a function's definition: where it starts and the scopes it closes over. */
export interface FunctionClosure {
  readonly location: { scriptId: string; lineNumber: number; columnNumber: number } | undefined;
  readonly scopes: readonly FunctionScope[];
}

/**
 * The scope chain a function closes over, read through the in-process inspector (no debugger needed), or
 * `undefined` when Node's inspector is not available. Only variables some closure in a scope refers to are in
 * it (V8 allocates the others on the stack).
 */
export function functionClosure(fn: Function): FunctionClosure | undefined {
  const active = getSession();
  if (!active) return undefined;
  const group = "cachet-captured";
  const key = `__cachetScopes_${process.pid}_${Math.random().toString(36).slice(2)}`;
  const slot = globalThis as unknown as Record<string, unknown>;
  try {
    const internal = internalPropertiesOf(active, fn, group);
    if (!internal) return undefined;
    const where = internal.find((p) => p.name === "[[FunctionLocation]]")?.value?.value as FunctionClosure["location"];
    const scopeList = internal.find((p) => p.name === "[[Scopes]]")?.value?.objectId;
    if (!scopeList) return { location: where, scopes: [] };
    post(active, "Runtime.callFunctionOn", {
      objectId: scopeList,
      functionDeclaration: `function () { globalThis[${JSON.stringify(key)}] = this; }`,
      silent: true,
    });
    const raw = slot[key] as ArrayLike<{ description: string; object: object }> | undefined;
    const scopes: FunctionScope[] = [];
    for (let index = 0; index < (raw?.length ?? 0); index++) {
      const { description, object } = raw![index]!;
      const match = /^(\w+)(?: \((.*)\))?$/.exec(description);
      scopes.push({ kind: match?.[1] ?? description, functionName: match?.[2], variables: object });
    }
    return { location: where, scopes };
  } catch {
    return undefined;
  } finally {
    delete slot[key];
    try {
      post(active, "Runtime.releaseObjectGroup", { objectGroup: group });
    } catch {
      // Nothing to release.
    }
  }
}

interface InternalProperty {
  name: string;
  value?: { objectId?: string; value?: unknown };
}

/**
 * A function's internal properties (`[[FunctionLocation]]`, `[[Scopes]]`, …) as the inspector reports them,
 * their remote objects held in `group` until the caller releases it; undefined when V8 gives no handle.
 */
function internalPropertiesOf(active: InspectorSession, fn: Function, group: string): InternalProperty[] | undefined {
  const key = `__cachetFunction_${process.pid}_${Math.random().toString(36).slice(2)}`;
  const slot = globalThis as unknown as Record<string, unknown>;
  slot[key] = fn;
  try {
    const evaluated = post<{ result: { objectId?: string } }>(active, "Runtime.evaluate", {
      expression: `globalThis[${JSON.stringify(key)}]`,
      objectGroup: group,
      silent: true,
    });
    const objectId = evaluated.result.objectId;
    if (!objectId) return undefined;
    return post<{ internalProperties?: InternalProperty[] }>(active, "Runtime.getProperties", { objectId, ownProperties: true })
      .internalProperties ?? [];
  } finally {
    delete slot[key];
  }
}

/**
 * Runs `body` with the debugger domain enabled on the in-process session (nested calls share one enable), so
 * script URLs and sources can be read. Returns `undefined` when there is no inspector.
 */
export function withDebugger<T>(body: (scripts: ScriptAccess) => T): T | undefined {
  const active = getSession();
  if (!active) return undefined;
  if (debuggerDepth === 0) {
    scriptUrls.clear();
    try {
      post(active, "Debugger.enable");
    } catch {
      return undefined;
    }
  }
  debuggerDepth++;
  try {
    return body(new ScriptAccess(active));
  } finally {
    debuggerDepth--;
    if (debuggerDepth === 0) {
      try {
        post(active, "Debugger.disable");
      } catch {
        // Nothing to undo: the session stays usable for the next lookup.
      }
    }
  }
}

/** Reading function locations and script sources while the debugger is enabled. */
export class ScriptAccess {
  readonly #session: InspectorSession;

  constructor(active: InspectorSession) {
    this.#session = active;
  }

  /** Where `fn` was defined, or `undefined` for functions V8 has no location for (native, bound). */
  locate(fn: (...args: never[]) => unknown): FunctionLocation | undefined {
    const group = "cachet-source-graph";
    try {
      const internal = internalPropertiesOf(this.#session, fn, group);
      const where = internal?.find((p) => p.name === "[[FunctionLocation]]")?.value?.value as
        | { scriptId: string; lineNumber: number; columnNumber: number }
        | undefined;
      if (!where) return undefined;
      const url = scriptUrls.get(where.scriptId);
      if (!url) return undefined;
      return { scriptId: where.scriptId, url, lineNumber: where.lineNumber, columnNumber: where.columnNumber };
    } finally {
      post(this.#session, "Runtime.releaseObjectGroup", { objectGroup: group });
    }
  }

  /** The source V8 executed for a script. */
  source(scriptId: string): string {
    return post<{ scriptSource: string }>(this.#session, "Debugger.getScriptSource", { scriptId }).scriptSource;
  }

  /**
   * The loaded script for a file, matched by path (a script's URL may be a `file:` URL, with or without a
   * query, or a plain path). When a file was loaded several times, the most recently parsed script wins,
   * preferring one whose URL has no query.
   */
  scriptForFile(path: string): { scriptId: string; url: string } | undefined {
    let best: { scriptId: string; url: string; exact: boolean } | undefined;
    for (const [scriptId, url] of scriptUrls) {
      const file = filePathOfUrl(url);
      if (file !== path) continue;
      const exact = !url.includes("?");
      if (!best || (exact && !best.exact) || (exact === best.exact && Number(scriptId) > Number(best.scriptId))) {
        best = { scriptId, url, exact };
      }
    }
    return best && { scriptId: best.scriptId, url: best.url };
  }
}

/** The file path a script URL or path names (query and hash dropped), or `undefined` when it is not a file. */
export function filePathOfUrl(url: string): string | undefined {
  if (url.startsWith("file:")) {
    try {
      const parsed = new URL(url);
      parsed.search = "";
      parsed.hash = "";
      return fileURLToPath(parsed);
    } catch {
      return undefined;
    }
  }
  if (url.startsWith("/") || /^[A-Za-z]:[\\/]/.test(url)) return url.replace(/[?#].*$/, "");
  return undefined;
}

/** A file path or `file:` URL as a `file:` URL string. */
export function toFileUrl(pathOrUrl: string): string {
  return pathOrUrl.startsWith("file:") ? pathOrUrl : pathToFileURL(pathOrUrl).href;
}
