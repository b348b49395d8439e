import { parseExpression } from "@babel/parser";
import { TaskDefinitionError } from "./errors.js";
import { freeReferences, type AstNode } from "./policies/module-analysis.js";

/** How a task function takes its inputs, read from its source. */
export type ParameterShape =
  /** Positional parameters, by name (`rest` is the name of a trailing `...rest`). */
  | { kind: "positional"; names: readonly string[]; rest: string | undefined }
  /** One destructured object parameter: its property names are the inputs (`open` when it has `...rest`). */
  | { kind: "object"; names: readonly string[]; open: boolean };

/**
 * How a function uses `this`: `dynamic` for a non-arrow function that refers to `this` or `super` (the value
 * the caller calls it with), `lexical` for an arrow function that refers to `this` (the `this` of the code that
 * defined it), `none` when it does not refer to `this`.
 */
export type ThisUse = "dynamic" | "lexical" | "none";

/** What cachet reads from a task function's source once, at definition. */
export interface TaskFunctionSource {
  readonly shape: ParameterShape;
  readonly thisUse: ThisUse;
  /** Names the function refers to without declaring them (enclosing-scope variables, module names, globals). */
  readonly freeNames: readonly string[];
  /**
   * The free names the function only keeps state in: every reference to them writes (assigns or increments,
   * assigns a property of, changes in place with a mutating method of arrays, Maps and Sets: `push`, `set`,
   * `add`, `delete`, …) or is read only to compute its own new value (`runs = runs + 1`). A counter or a log the
   * function keeps, as opposed to a value it reads to compute its result.
   */
  readonly stateNames: readonly string[];
  readonly arrow: boolean;
}

/**
 * Reads a function's parameter list (arrow, `function`, async, generator, method and class-method forms),
 * its use of `this` and the names it takes from outside. Parameters that are patterns other than one object
 * get positional names `$0`, `$1`, ….
 */
export function readTaskFunction(fn: (...args: any[]) => unknown): TaskFunctionSource {
  const node = parseFunction(Function.prototype.toString.call(fn), fn.name);
  const arrow = node.type === "ArrowFunctionExpression";
  const params = Array.isArray(node.params) ? (node.params as AstNode[]) : [];
  const free = freeReferences(node).filter((reference) => arrow || reference.name !== "arguments");
  const writes = writtenIdentifiers(node);
  const freeNames = [...new Set(free.map((reference) => reference.name))];
  const stateNames = freeNames.filter((name) => free.every((reference) => reference.name !== name || writes.has(reference.start)));
  const thisUse = refersToThis(node) ? (arrow ? "lexical" : "dynamic") : "none";
  return { shape: shapeOf(params), thisUse, freeNames, stateNames, arrow };
}

/** A function's parameter shape (see {@link readTaskFunction}). */
export function parameterShape(fn: (...args: any[]) => unknown): ParameterShape {
  return readTaskFunction(fn).shape;
}

function shapeOf(params: readonly AstNode[]): ParameterShape {
  if (params.length === 1 && params[0]!.type === "ObjectPattern") {
    const pattern = params[0]!;
    const names: string[] = [];
    let open = false;
    for (const property of pattern.properties as AstNode[]) {
      if (property.type === "RestElement") open = true;
      else if (property.key?.type === "Identifier" && !property.computed) names.push(property.key.name);
      else if (property.key?.type === "StringLiteral") names.push(property.key.value);
      else open = true;
    }
    return { kind: "object", names, open };
  }
  const names: string[] = [];
  let rest: string | undefined;
  params.forEach((param, index) => {
    const target = param.type === "AssignmentPattern" ? param.left : param;
    if (target.type === "RestElement") rest = target.argument?.type === "Identifier" ? target.argument.name : `$${index}`;
    else names.push(target.type === "Identifier" ? target.name : `$${index}`);
  });
  return { kind: "positional", names, rest };
}

/** Nodes with a `this` of their own: `this` inside them is not the enclosing function's. */
const OWN_THIS = new Set(["FunctionDeclaration", "FunctionExpression", "ObjectMethod", "ClassMethod", "ClassPrivateMethod", "ClassBody"]);
const NOT_CODE = new Set(["type", "start", "end", "loc", "range", "extra", "comments", "leadingComments", "trailingComments", "innerComments"]);

/** Whether a function's parameters or body refer to `this` or `super` (not counting nested functions of their own). */
function refersToThis(fn: AstNode): boolean {
  const visit = (node: AstNode, top: boolean): boolean => {
    if (node.type === "ThisExpression" || node.type === "Super") return true;
    if (!top && OWN_THIS.has(node.type)) return false;
    for (const key of Object.keys(node)) {
      if (NOT_CODE.has(key)) continue;
      const value = node[key] as unknown;
      if (Array.isArray(value)) {
        for (const item of value) if (isNode(item) && visit(item, false)) return true;
      } else if (isNode(value) && visit(value, false)) return true;
    }
    return false;
  };
  return visit(fn, true);
}

/** Methods that change an array, Map or Set in place. */
const MUTATORS = new Set(["push", "pop", "shift", "unshift", "splice", "sort", "reverse", "fill", "copyWithin", "set", "add", "delete", "clear"]);

/**
 * Start offsets of the identifiers that are written in `fn`: assignment, update and mutating-call targets (roots
 * of member chains), and the reads of an assignment's own target on its right side (`n = n + 1`,
 * `cfg.calls = (cfg.calls ?? 0) + 1`), which only compute its new value.
 */
function writtenIdentifiers(fn: AstNode): Set<number> {
  const starts = new Set<number>();
  const mark = (target: AstNode | null | undefined): void => {
    if (!target) return;
    switch (target.type) {
      case "Identifier":
        starts.add(target.start);
        return;
      case "MemberExpression":
      case "OptionalMemberExpression":
      case "TSNonNullExpression":
      case "TSAsExpression":
      case "ParenthesizedExpression":
        mark((target.object ?? target.expression) as AstNode);
        return;
      case "ObjectPattern":
        for (const property of target.properties as AstNode[]) mark(property.type === "RestElement" ? property.argument : property.value);
        return;
      case "ArrayPattern":
        for (const element of target.elements as Array<AstNode | null>) mark(element);
        return;
      case "RestElement":
        mark(target.argument as AstNode);
        return;
      case "AssignmentPattern":
        mark(target.left as AstNode);
        return;
    }
  };
  const markSameName = (node: AstNode, name: string): void => {
    if (node.type === "Identifier" && node.name === name) starts.add(node.start);
    for (const key of Object.keys(node)) {
      if (NOT_CODE.has(key)) continue;
      const value = node[key] as unknown;
      if (Array.isArray(value)) {
        for (const item of value) if (isNode(item)) markSameName(item, name);
      } else if (isNode(value)) markSameName(value, name);
    }
  };
  const visit = (node: AstNode): void => {
    switch (node.type) {
      case "AssignmentExpression": {
        mark(node.left as AstNode);
        const target = rootName(node.left as AstNode);
        if (target !== undefined) markSameName(node.right as AstNode, target);
        break;
      }
      case "UpdateExpression":
        mark(node.argument as AstNode);
        break;
      case "UnaryExpression":
        if (node.operator === "delete") mark(node.argument as AstNode);
        break;
      case "ForInStatement":
      case "ForOfStatement":
        if ((node.left as AstNode).type !== "VariableDeclaration") mark(node.left as AstNode);
        break;
      case "CallExpression":
      case "OptionalCallExpression": {
        const callee = node.callee as AstNode;
        const property = callee.property as AstNode | undefined;
        const isMember = callee.type === "MemberExpression" || callee.type === "OptionalMemberExpression";
        if (isMember && !callee.computed && property?.type === "Identifier" && MUTATORS.has(property.name as string)) mark(callee.object as AstNode);
        break;
      }
    }
    for (const key of Object.keys(node)) {
      if (NOT_CODE.has(key)) continue;
      const value = node[key] as unknown;
      if (Array.isArray(value)) {
        for (const item of value) if (isNode(item)) visit(item);
      } else if (isNode(value)) visit(value);
    }
  };
  visit(fn);
  return starts;
}

/** The variable at the root of an assignment target (`a` of `a`, `a.b.c`, `a[i]`), if it is one. */
function rootName(target: AstNode): string | undefined {
  let node: AstNode | undefined = target;
  while (node && (node.type === "MemberExpression" || node.type === "OptionalMemberExpression")) node = node.object as AstNode;
  return node?.type === "Identifier" ? (node.name as string) : undefined;
}

function isNode(value: unknown): value is AstNode {
  return typeof value === "object" && value !== null && typeof (value as { type?: unknown }).type === "string";
}

function parseFunction(source: string, name: string): AstNode {
  if (source.includes("[native code]")) {
    throw new TaskDefinitionError(`task function "${name}" is native or bound; wrap it in a function of your own`);
  }
  const attempts = [`(${source})`, `({${source}})`];
  for (const text of attempts) {
    let node: AstNode;
    try {
      node = parseExpression(text, { plugins: ["typescript"], errorRecovery: false }) as unknown as AstNode;
    } catch {
      continue;
    }
    if (node.type === "ObjectExpression") node = node.properties[0] as AstNode;
    if (node && (Array.isArray(node.params) || node.type === "ClassExpression")) return node;
  }
  throw new TaskDefinitionError(`cannot read the parameters of task function "${name || "<anonymous>"}" from its source`);
}
