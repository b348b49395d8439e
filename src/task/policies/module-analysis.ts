import { parseModuleSource, toSourceTokens, type SourceToken } from "./source-tokens.js";

/**
 * Static analysis of one module for `SourceGraphPolicy`: its top-level statements, every identifier reference
 * resolved to the scope that binds it, imports, exports, `require()`/`import()` calls with literal specifiers,
 * and the function-like nodes a function location can point into. Lexical scoping is modelled (function, block,
 * class, catch and `for` scopes, `var` hoisting); type-only TypeScript syntax is skipped.
 */

/** A Babel AST node, loosely typed. */
export type AstNode = { type: string; start: number; end: number; [key: string]: any };

/** A lexical scope. `node` is the AST node whose extent the scope covers. */
export interface Scope {
  readonly node: AstNode;
  readonly parent: Scope | undefined;
  readonly isFunction: boolean;
  readonly bindings: Map<string, Binding>;
}

/** What an import binding refers to: a module specifier and an export name (`"default"`, `"*"` for a namespace). */
export interface ImportRef {
  readonly source: string;
  readonly imported: string;
}

/** A declared name. Module-level bindings know the index of the top-level statement that declares them. */
export interface Binding {
  readonly name: string;
  readonly scope: Scope;
  readonly topIndex: number;
  readonly importRef?: ImportRef;
}

/** One identifier used as a value, and the binding it resolves to (`undefined`: a global). */
export interface Reference {
  readonly name: string;
  readonly start: number;
  readonly end: number;
  readonly scope: Scope;
  binding?: Binding;
}

/** What an export name points at. */
export type ExportTarget =
  | { readonly kind: "local"; readonly name: string }
  | { readonly kind: "statement"; readonly index: number }
  | { readonly kind: "reexport"; readonly source: string; readonly imported: string };

/** A `require("x")` or `import("x")` call with a literal specifier. */
export interface ModuleCall {
  readonly source: string;
  readonly start: number;
  readonly end: number;
}

/** Everything `SourceGraphPolicy` needs to know about one module's source. */
export interface ModuleAnalysis {
  readonly source: string;
  readonly statements: readonly AstNode[];
  readonly tokens: readonly SourceToken[];
  readonly references: readonly Reference[];
  readonly moduleScope: Scope;
  readonly exports: ReadonlyMap<string, ExportTarget>;
  readonly starExports: readonly string[];
  readonly calls: readonly ModuleCall[];
  /** Specifiers of `import "x"` statements (no bindings), by statement index. */
  readonly bareImports: ReadonlyMap<number, string>;
  /** Top-level expression statements that assign to, or call a method of, a module binding: binding → indices. */
  readonly mutations: ReadonlyMap<Binding, readonly number[]>;
  readonly functionNodes: readonly AstNode[];
  /** True when the source uses ESM syntax (`import`/`export`). */
  readonly isModule: boolean;
}

const SKIPPED_KEYS = new Set([
  "type",
  "start",
  "end",
  "loc",
  "range",
  "extra",
  "comments",
  "leadingComments",
  "trailingComments",
  "innerComments",
  "typeAnnotation",
  "returnType",
  "typeParameters",
  "typeArguments",
  "superTypeParameters",
  "superTypeArguments",
  "implements",
  "predicate",
  "decorators",
]);

/** TypeScript nodes that carry runtime code; every other `TS*` node is type-only and skipped. */
const RUNTIME_TS_NODES = new Set([
  "TSAsExpression",
  "TSSatisfiesExpression",
  "TSNonNullExpression",
  "TSTypeAssertion",
  "TSInstantiationExpression",
  "TSEnumDeclaration",
  "TSModuleDeclaration",
  "TSParameterProperty",
  "TSExportAssignment",
  "TSImportEqualsDeclaration",
]);

const FUNCTION_LIKE = new Set([
  "FunctionDeclaration",
  "FunctionExpression",
  "ArrowFunctionExpression",
  "ObjectMethod",
  "ClassMethod",
  "ClassPrivateMethod",
  "ClassDeclaration",
  "ClassExpression",
]);

function isNode(value: unknown): value is AstNode {
  return typeof value === "object" && value !== null && typeof (value as { type?: unknown }).type === "string";
}

function newScope(node: AstNode, parent: Scope | undefined, isFunction: boolean): Scope {
  return { node, parent, isFunction, bindings: new Map() };
}

class Analyzer {
  readonly references: Reference[] = [];
  readonly functionNodes: AstNode[] = [];
  readonly calls: ModuleCall[] = [];
  readonly exports = new Map<string, ExportTarget>();
  readonly starExports: string[] = [];
  readonly bareImports = new Map<number, string>();
  topIndex = -1;

  constructor(readonly moduleScope: Scope) {}

  declare(scope: Scope, name: string, importRef?: ImportRef): void {
    if (scope.bindings.has(name)) return;
    const binding: Binding = importRef
      ? { name, scope, topIndex: this.topIndex, importRef }
      : { name, scope, topIndex: this.topIndex };
    scope.bindings.set(name, binding);
  }

  varScope(scope: Scope): Scope {
    let current = scope;
    while (!current.isFunction && current.parent) current = current.parent;
    return current;
  }

  reference(node: AstNode, scope: Scope): void {
    this.references.push({ name: node.name as string, start: node.start, end: node.end, scope });
  }

  visitChildren(node: AstNode, scope: Scope): void {
    for (const key of Object.keys(node)) {
      if (SKIPPED_KEYS.has(key)) continue;
      const value = node[key] as unknown;
      if (Array.isArray(value)) {
        for (const item of value) if (isNode(item)) this.visit(item, scope);
      } else if (isNode(value)) {
        this.visit(value, scope);
      }
    }
  }

  visitStatements(statements: readonly AstNode[], scope: Scope): void {
    for (const statement of statements) this.visit(statement, scope);
  }

  declarePattern(node: AstNode | null | undefined, target: Scope, exprScope: Scope): void {
    if (!node) return;
    switch (node.type) {
      case "Identifier":
        this.declare(target, node.name as string);
        return;
      case "ObjectPattern":
        for (const property of node.properties as AstNode[]) {
          if (property.type === "RestElement") {
            this.declarePattern(property.argument as AstNode, target, exprScope);
          } else {
            if (property.computed) this.visit(property.key as AstNode, exprScope);
            this.declarePattern(property.value as AstNode, target, exprScope);
          }
        }
        return;
      case "ArrayPattern":
        for (const element of node.elements as Array<AstNode | null>) this.declarePattern(element, target, exprScope);
        return;
      case "RestElement":
        this.declarePattern(node.argument as AstNode, target, exprScope);
        return;
      case "AssignmentPattern":
        this.declarePattern(node.left as AstNode, target, exprScope);
        this.visit(node.right as AstNode, exprScope);
        return;
      case "TSParameterProperty":
        this.declarePattern(node.parameter as AstNode, target, exprScope);
        return;
      default:
        this.visit(node, exprScope);
    }
  }

  visitFunction(node: AstNode, scope: Scope): void {
    this.functionNodes.push(node);
    const fnScope = newScope(node, scope, true);
    if (node.type === "FunctionExpression" && node.id) this.declare(fnScope, node.id.name as string);
    for (const param of node.params as AstNode[]) this.declarePattern(param, fnScope, fnScope);
    const body = node.body as AstNode | null | undefined;
    if (!body) return;
    if (body.type === "BlockStatement") this.visitStatements(body.body as AstNode[], fnScope);
    else this.visit(body, fnScope);
  }

  visitClass(node: AstNode, scope: Scope): void {
    this.functionNodes.push(node);
    for (const decorator of (node.decorators as AstNode[] | undefined) ?? []) this.visit(decorator, scope);
    if (node.superClass) this.visit(node.superClass as AstNode, scope);
    const classScope = newScope(node, scope, false);
    if (node.id) this.declare(classScope, node.id.name as string);
    for (const member of (node.body as AstNode).body as AstNode[]) {
      for (const decorator of (member.decorators as AstNode[] | undefined) ?? []) this.visit(decorator, classScope);
      switch (member.type) {
        case "ClassProperty":
        case "ClassPrivateProperty":
        case "ClassAccessorProperty":
          if (member.computed) this.visit(member.key as AstNode, classScope);
          if (member.value) this.visit(member.value as AstNode, newScope(member, classScope, true));
          break;
        case "StaticBlock":
          this.visitStatements(member.body as AstNode[], newScope(member, classScope, true));
          break;
        default:
          this.visit(member, classScope);
      }
    }
  }

  declaredNames(node: AstNode): string[] {
    const names: string[] = [];
    const collect = (pattern: AstNode | null | undefined): void => {
      if (!pattern) return;
      switch (pattern.type) {
        case "Identifier":
          names.push(pattern.name as string);
          break;
        case "ObjectPattern":
          for (const p of pattern.properties as AstNode[]) collect(p.type === "RestElement" ? p.argument : p.value);
          break;
        case "ArrayPattern":
          for (const e of pattern.elements as Array<AstNode | null>) collect(e);
          break;
        case "RestElement":
          collect(pattern.argument as AstNode);
          break;
        case "AssignmentPattern":
          collect(pattern.left as AstNode);
          break;
      }
    };
    if (node.type === "VariableDeclaration") for (const d of node.declarations as AstNode[]) collect(d.id as AstNode);
    else if (node.id) collect(node.id as AstNode);
    return names;
  }

  visit(node: AstNode, scope: Scope): void {
    const type = node.type;
    if (type.startsWith("TS") && !RUNTIME_TS_NODES.has(type)) return;
    switch (type) {
      case "Identifier":
        this.reference(node, scope);
        return;
      case "Program":
        (node.body as AstNode[]).forEach((statement, index) => {
          this.topIndex = index;
          this.visit(statement, scope);
        });
        return;
      case "VariableDeclaration": {
        if (node.declare) return;
        const target = node.kind === "var" ? this.varScope(scope) : scope;
        for (const declarator of node.declarations as AstNode[]) {
          this.declarePattern(declarator.id as AstNode, target, scope);
          if (declarator.init) this.visit(declarator.init as AstNode, scope);
        }
        return;
      }
      case "FunctionDeclaration":
        if (node.declare) return;
        if (node.id) this.declare(scope, node.id.name as string);
        this.visitFunction(node, scope);
        return;
      case "FunctionExpression":
      case "ArrowFunctionExpression":
        this.visitFunction(node, scope);
        return;
      case "ObjectMethod":
      case "ClassMethod":
      case "ClassPrivateMethod":
        if (node.computed) this.visit(node.key as AstNode, scope);
        this.visitFunction(node, scope);
        return;
      case "ClassDeclaration":
        if (node.declare) return;
        if (node.id) this.declare(scope, node.id.name as string);
        this.visitClass(node, scope);
        return;
      case "ClassExpression":
        this.visitClass(node, scope);
        return;
      case "BlockStatement":
        this.visitStatements(node.body as AstNode[], newScope(node, scope, false));
        return;
      case "ForStatement":
      case "ForInStatement":
      case "ForOfStatement":
      case "SwitchStatement":
        this.visitChildren(node, newScope(node, scope, false));
        return;
      case "CatchClause": {
        const catchScope = newScope(node, scope, false);
        if (node.param) this.declarePattern(node.param as AstNode, catchScope, catchScope);
        this.visit(node.body as AstNode, catchScope);
        return;
      }
      case "ImportDeclaration": {
        if (node.importKind === "type" || node.importKind === "typeof") return;
        const source = (node.source as AstNode).value as string;
        const specifiers = node.specifiers as AstNode[];
        if (specifiers.length === 0) this.bareImports.set(this.topIndex, source);
        for (const specifier of specifiers) {
          if (specifier.importKind === "type" || specifier.importKind === "typeof") continue;
          const local = (specifier.local as AstNode).name as string;
          let imported = "*";
          if (specifier.type === "ImportDefaultSpecifier") imported = "default";
          else if (specifier.type === "ImportSpecifier") imported = exportName(specifier.imported as AstNode);
          this.declare(this.moduleScope, local, { source, imported });
        }
        return;
      }
      case "ExportNamedDeclaration": {
        if (node.exportKind === "type") return;
        const declaration = node.declaration as AstNode | null;
        if (declaration) {
          this.visit(declaration, scope);
          if (declaration.type === "TSEnumDeclaration" || declaration.type === "TSModuleDeclaration") {
            if (declaration.id?.type === "Identifier") this.exportLocal(declaration.id.name as string);
          } else {
            for (const name of this.declaredNames(declaration)) this.exportLocal(name);
          }
          return;
        }
        const source = node.source ? ((node.source as AstNode).value as string) : undefined;
        for (const specifier of node.specifiers as AstNode[]) {
          if (specifier.exportKind === "type") continue;
          const exported = exportName(specifier.exported as AstNode);
          if (specifier.type === "ExportNamespaceSpecifier") {
            if (source !== undefined) this.exports.set(exported, { kind: "reexport", source, imported: "*" });
          } else if (specifier.type === "ExportDefaultSpecifier") {
            if (source !== undefined) this.exports.set(exported, { kind: "reexport", source, imported: "default" });
          } else if (source !== undefined) {
            this.exports.set(exported, { kind: "reexport", source, imported: exportName(specifier.local as AstNode) });
          } else {
            const local = specifier.local as AstNode;
            this.reference(local, scope);
            this.exports.set(exported, { kind: "local", name: local.name as string });
          }
        }
        return;
      }
      case "ExportDefaultDeclaration": {
        const declaration = node.declaration as AstNode;
        if (declaration.type.startsWith("TS") && !RUNTIME_TS_NODES.has(declaration.type)) return;
        this.visit(declaration, scope);
        this.exports.set("default", { kind: "statement", index: this.topIndex });
        return;
      }
      case "ExportAllDeclaration": {
        if (node.exportKind === "type") return;
        const source = (node.source as AstNode).value as string;
        if (node.exported) this.exports.set(exportName(node.exported as AstNode), { kind: "reexport", source, imported: "*" });
        else this.starExports.push(source);
        return;
      }
      case "TSExportAssignment":
        this.visit(node.expression as AstNode, scope);
        this.exports.set("default", { kind: "statement", index: this.topIndex });
        return;
      case "TSImportEqualsDeclaration": {
        if (node.importKind === "type") return;
        const reference = node.moduleReference as AstNode;
        const local = (node.id as AstNode).name as string;
        if (reference.type === "TSExternalModuleReference") {
          this.declare(scope, local, { source: (reference.expression as AstNode).value as string, imported: "*" });
        } else {
          this.declare(scope, local);
          this.visitChildren(reference, scope);
        }
        return;
      }
      case "TSEnumDeclaration":
        if (node.declare) return;
        this.declare(scope, (node.id as AstNode).name as string);
        for (const member of node.members as AstNode[]) if (member.initializer) this.visit(member.initializer as AstNode, scope);
        return;
      case "TSModuleDeclaration":
        if (node.declare) return;
        if (node.id?.type === "Identifier") this.declare(scope, node.id.name as string);
        if (node.body) this.visitChildren(node.body as AstNode, newScope(node, scope, true));
        return;
      case "MemberExpression":
      case "OptionalMemberExpression":
        this.visit(node.object as AstNode, scope);
        if (node.computed) this.visit(node.property as AstNode, scope);
        return;
      case "ObjectProperty":
        if (node.computed) this.visit(node.key as AstNode, scope);
        this.visit(node.value as AstNode, scope);
        return;
      case "LabeledStatement":
        this.visit(node.body as AstNode, scope);
        return;
      case "BreakStatement":
      case "ContinueStatement":
      case "MetaProperty":
      case "PrivateName":
      case "JSXClosingElement":
        return;
      case "CallExpression":
      case "OptionalCallExpression": {
        const callee = node.callee as AstNode;
        const first = (node.arguments as AstNode[])[0];
        const literal = first && first.type === "StringLiteral" ? (first.value as string) : undefined;
        if (literal !== undefined && (callee.type === "Import" || (callee.type === "Identifier" && callee.name === "require"))) {
          this.calls.push({ source: literal, start: node.start, end: node.end });
        }
        this.visitChildren(node, scope);
        return;
      }
      case "ImportExpression": {
        const source = node.source as AstNode;
        if (source.type === "StringLiteral") this.calls.push({ source: source.value as string, start: node.start, end: node.end });
        this.visitChildren(node, scope);
        return;
      }
      case "JSXOpeningElement":
        this.visitJsxName(node.name as AstNode, scope);
        for (const attribute of node.attributes as AstNode[]) {
          if (attribute.type === "JSXSpreadAttribute") this.visit(attribute.argument as AstNode, scope);
          else if (attribute.value) this.visit(attribute.value as AstNode, scope);
        }
        return;
      default:
        this.visitChildren(node, scope);
    }
  }

  visitJsxName(name: AstNode, scope: Scope): void {
    if (name.type === "JSXIdentifier") {
      if (/^[A-Z_$]/.test(name.name as string)) this.references.push({ name: name.name as string, start: name.start, end: name.end, scope });
    } else if (name.type === "JSXMemberExpression") {
      this.visitJsxName(name.object as AstNode, scope);
    }
  }

  exportLocal(name: string): void {
    this.exports.set(name, { kind: "local", name });
  }
}

function exportName(node: AstNode): string {
  return node.type === "StringLiteral" ? (node.value as string) : (node.name as string);
}

/** The root identifier of `a.b.c` (→ `a`), or `undefined`. */
function rootIdentifier(node: AstNode | undefined): AstNode | undefined {
  let current = node;
  while (current && (current.type === "MemberExpression" || current.type === "OptionalMemberExpression")) {
    current = current.object as AstNode;
  }
  return current?.type === "Identifier" ? current : undefined;
}

/** The identifiers a top-level expression statement mutates: assignment and update targets, method-call receivers. */
function mutatedRoots(expression: AstNode): AstNode[] {
  switch (expression.type) {
    case "SequenceExpression":
      return (expression.expressions as AstNode[]).flatMap(mutatedRoots);
    case "AssignmentExpression": {
      const root = rootIdentifier(expression.left as AstNode);
      return root ? [root] : [];
    }
    case "UpdateExpression":
    case "UnaryExpression": {
      if (expression.type === "UnaryExpression" && expression.operator !== "delete") return [];
      const root = rootIdentifier(expression.argument as AstNode);
      return root ? [root] : [];
    }
    case "CallExpression":
    case "OptionalCallExpression": {
      const callee = expression.callee as AstNode;
      if (callee.type !== "MemberExpression" && callee.type !== "OptionalMemberExpression") return [];
      const root = rootIdentifier(callee);
      return root ? [root] : [];
    }
    default:
      return [];
  }
}

/** Points each reference at the binding it resolves to, innermost scope first (none: a global). */
function resolveReferences(references: readonly Reference[]): void {
  for (const reference of references) {
    for (let scope: Scope | undefined = reference.scope; scope; scope = scope.parent) {
      const binding = scope.bindings.get(reference.name);
      if (binding) {
        reference.binding = binding;
        break;
      }
    }
  }
}

/**
 * The references in a function (or any node) to names it does not declare, in source order: what it takes from
 * enclosing scopes, its module or the globals. The scoping rules are the module analysis's own.
 */
export function freeReferences(node: AstNode): Reference[] {
  const root = newScope(node, undefined, true);
  const analyzer = new Analyzer(root);
  analyzer.visit(node, root);
  resolveReferences(analyzer.references);
  return analyzer.references.filter((reference) => !reference.binding);
}

/** Parses and analyses a module's source. `typescript`/`jsx` enable those syntaxes (files read from disk). */
export function analyzeModule(source: string, options: { typescript: boolean; jsx: boolean }): ModuleAnalysis {
  const file = parseModuleSource(source, options) as unknown as { program: AstNode; tokens?: unknown[] };
  const program = file.program;
  const moduleScope = newScope(program, undefined, true);
  const analyzer = new Analyzer(moduleScope);
  analyzer.visit(program, moduleScope);

  resolveReferences(analyzer.references);
  analyzer.references.sort((a, b) => a.start - b.start);

  const statements = program.body as AstNode[];
  const mutations = new Map<Binding, number[]>();
  statements.forEach((statement, index) => {
    if (statement.type !== "ExpressionStatement") return;
    for (const root of mutatedRoots(statement.expression as AstNode)) {
      const binding = moduleScope.bindings.get(root.name as string);
      if (!binding) continue;
      const list = mutations.get(binding) ?? [];
      if (!list.includes(index)) list.push(index);
      mutations.set(binding, list);
    }
  });

  return {
    source,
    statements,
    tokens: toSourceTokens(file.tokens ?? []),
    references: analyzer.references,
    moduleScope,
    exports: analyzer.exports,
    starExports: analyzer.starExports,
    calls: analyzer.calls,
    bareImports: analyzer.bareImports,
    mutations,
    functionNodes: analyzer.functionNodes.filter((node) => FUNCTION_LIKE.has(node.type)),
    isModule: program.sourceType === "module",
  };
}

/** The tokens of `analysis.source` that lie within `[start, end)`. */
export function tokensInRange(analysis: ModuleAnalysis, start: number, end: number): SourceToken[] {
  const tokens = analysis.tokens;
  let low = 0;
  let high = tokens.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (tokens[mid]!.start < start) low = mid + 1;
    else high = mid;
  }
  const out: SourceToken[] = [];
  for (let index = low; index < tokens.length && tokens[index]!.end <= end; index++) out.push(tokens[index]!);
  return out;
}

/** The references whose identifier lies within `[start, end)`. */
export function referencesInRange(analysis: ModuleAnalysis, start: number, end: number): Reference[] {
  return analysis.references.filter((reference) => reference.start >= start && reference.end <= end);
}

/** The index of the top-level statement that contains `offset`, or -1. */
export function statementIndexAt(analysis: ModuleAnalysis, offset: number): number {
  return analysis.statements.findIndex((statement) => statement.start <= offset && offset < statement.end);
}

/** The offset at which each line of `source` starts (line terminators as ECMAScript defines them). */
export function lineOffsets(source: string): number[] {
  const offsets = [0];
  const pattern = /\r\n|\r|\n|\u2028|\u2029/g;
  for (let match = pattern.exec(source); match; match = pattern.exec(source)) offsets.push(match.index + match[0].length);
  return offsets;
}

function sliceMatches(source: string, node: AstNode, fnSource: string): boolean {
  const text = source.slice(node.start, node.end);
  return text === fnSource || text.endsWith(fnSource);
}

/** The function's node in its module: by V8's location (verified against its text), else by text, else by name. */
export function findFunctionNode(
  fn: Function,
  analysis: ModuleAnalysis,
  offset: number | undefined,
): AstNode | undefined {
  const fnSource = Function.prototype.toString.call(fn);
  const { source, functionNodes } = analysis;
  if (offset !== undefined) {
    let innermost: AstNode | undefined;
    for (const node of functionNodes) {
      if (node.start <= offset && offset < node.end && (!innermost || node.end - node.start < innermost.end - innermost.start)) {
        innermost = node;
      }
    }
    if (innermost && sliceMatches(source, innermost, fnSource)) return innermost;
  }
  const matches = functionNodes.filter((node) => sliceMatches(source, node, fnSource));
  if (matches.length > 0) {
    const distance = (node: AstNode): number => (offset === undefined ? 0 : Math.abs(node.start - offset));
    return matches.reduce((best, node) => (distance(node) < distance(best) ? node : best));
  }
  const name = fn.name;
  if (name) {
    const binding = analysis.moduleScope.bindings.get(name);
    if (binding && !binding.importRef && binding.topIndex >= 0) return analysis.statements[binding.topIndex];
  }
  return undefined;
}
