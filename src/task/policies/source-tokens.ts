import { createHash } from "node:crypto";

import { parse, type ParserOptions, type ParserPlugin } from "@babel/parser";

import { FunctionSourceError } from "../errors.js";

/** One lexical token as Babel reports it: its type label, its (cooked) value and its offsets in the parsed text. */
export interface SourceToken {
  readonly type: string;
  readonly value: unknown;
  readonly start: number;
  readonly end: number;
}

interface RawToken {
  type: string | { label: string };
  value?: unknown;
  start: number;
  end: number;
}

/** The label of a Babel token type (`"name"`, `"num"`, `"return"`, `"CommentLine"`, …). */
function tokenLabel(token: RawToken): string {
  return typeof token.type === "string" ? token.type : token.type.label;
}

/** Converts Babel's token list, keeping only tokens inside `[from, to)` and shifting their offsets by `-from`. */
export function toSourceTokens(raw: readonly unknown[], from = 0, to = Number.POSITIVE_INFINITY): SourceToken[] {
  const tokens: SourceToken[] = [];
  for (const item of raw as RawToken[]) {
    if (item.start < from || item.end > to) continue;
    tokens.push({ type: tokenLabel(item), value: item.value, start: item.start - from, end: item.end - from });
  }
  return tokens;
}

const CLOSERS = new Set([")", "]", "}"]);

/**
 * The digest of a token sequence, insensitive to everything that is not a token or does not change meaning:
 * whitespace and line breaks, comments, quote style (string tokens carry their cooked value), the spelling of a
 * number (`0x10` = `16`, `1.0` = `1`) and trailing commas before `)`, `]` or `}` (kept after a hole, `[a,,]`).
 * Semicolons count: dropping one can change meaning through automatic semicolon insertion.
 */
export function digestTokens(tokens: readonly SourceToken[]): string {
  const hash = createHash("sha256");
  let previous = "";
  for (let index = 0; index < tokens.length; index++) {
    const token = tokens[index]!;
    const type = token.type;
    if (type === "CommentLine" || type === "CommentBlock" || type === "eof") continue;
    if (type === ",") {
      const next = nextMeaningful(tokens, index + 1);
      if (next && CLOSERS.has(next.type) && previous !== "," && previous !== "[") continue;
    }
    hash.update(`${JSON.stringify([type, encodeValue(token.value)])}\n`);
    previous = type;
  }
  return hash.digest("hex");
}

function nextMeaningful(tokens: readonly SourceToken[], from: number): SourceToken | undefined {
  for (let index = from; index < tokens.length; index++) {
    const token = tokens[index]!;
    if (token.type !== "CommentLine" && token.type !== "CommentBlock") return token;
  }
  return undefined;
}

function encodeValue(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "bigint" || typeof value === "boolean") return String(value);
  return JSON.stringify(value, (_key, inner: unknown) => (typeof inner === "bigint" ? String(inner) : inner));
}

/** Parser options shared by every parse: lenient about where `return`, `await`, `super` and `new.target` appear. */
function parserOptions(sourceType: ParserOptions["sourceType"], plugins: ParserPlugin[], recover: boolean): ParserOptions {
  return {
    sourceType,
    plugins,
    tokens: true,
    errorRecovery: recover,
    allowReturnOutsideFunction: true,
    allowAwaitOutsideFunction: true,
    allowNewTargetOutsideFunction: true,
    allowSuperOutsideMethod: true,
    allowUndeclaredExports: true,
    allowImportExportEverywhere: false,
  };
}

/**
 * The shapes `Function.prototype.toString` can return, and how to make each one parse: function and class
 * expressions and arrow functions as a parenthesised expression; methods, getters, setters and generator methods
 * inside an object literal; private methods (`#m() {}`) inside a class body.
 */
const WRAPPERS: ReadonlyArray<readonly [prefix: string, suffix: string, recover: boolean]> = [
  ["(", "\n)", false],
  ["({", "\n})", false],
  ["(class{", "\n})", true],
];

const PLUGIN_SETS: ReadonlyArray<ParserPlugin[]> = [[], ["typescript"]];

const NATIVE_CODE = /\{\s*\[native code\]\s*\}\s*$/;

const functionTokenCache = new WeakMap<object, readonly SourceToken[]>();

/** The name a function goes by in messages. */
export function functionLabel(fn: { readonly name: string }): string {
  return fn.name ? `"${fn.name}"` : "<anonymous>";
}

/**
 * The tokens of a function's source text (`Function.prototype.toString`), offsets relative to that text. Native
 * and bound functions have no source and are refused with a message that suggests an explicit version.
 */
export function functionTokens(fn: (...args: never[]) => unknown): readonly SourceToken[] {
  const cached = functionTokenCache.get(fn);
  if (cached) return cached;
  const source = Function.prototype.toString.call(fn);
  if (NATIVE_CODE.test(source)) {
    throw new FunctionSourceError(
      `cannot read the source of function ${functionLabel(fn)}: it is a native or bound function; ` +
        `give the task's Cache an explicit version (new Cache({ version: "1" }))`,
    );
  }
  const tokens = tokenizeFunctionSource(source);
  if (!tokens) {
    throw new FunctionSourceError(
      `cannot parse the source of function ${functionLabel(fn)}; give the task's Cache an explicit version ` +
        `(new Cache({ version: "1" }))`,
    );
  }
  functionTokenCache.set(fn, tokens);
  return tokens;
}

/** Tokenizes a function's source text in whichever wrapper makes it parse; `undefined` when none does. */
export function tokenizeFunctionSource(source: string): SourceToken[] | undefined {
  for (const plugins of PLUGIN_SETS) {
    for (const [prefix, suffix, recover] of WRAPPERS) {
      for (const sourceType of ["script", "module"] as const) {
        let file: { tokens?: unknown[] };
        try {
          file = parse(prefix + source + suffix, parserOptions(sourceType, plugins, recover)) as { tokens?: unknown[] };
        } catch {
          continue;
        }
        return toSourceTokens(file.tokens ?? [], prefix.length, prefix.length + source.length);
      }
    }
  }
  return undefined;
}

/** Parses a whole module (or script) with tokens; TypeScript and JSX syntax are enabled by file extension. */
export function parseModuleSource(
  source: string,
  options: { typescript: boolean; jsx: boolean },
): ReturnType<typeof parse> {
  const plugins: ParserPlugin[] = [];
  if (options.typescript) plugins.push("typescript");
  if (options.jsx) plugins.push("jsx");
  return parse(source, parserOptions("unambiguous", plugins, false));
}
