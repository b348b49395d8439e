import { parseExpression } from "@babel/parser";
import { TaskDefinitionError } from "./errors.js";

/** How a task function takes its inputs, read from its source. */
export type ParameterShape =
  /** Positional parameters, by name (`rest` is the name of a trailing `...rest`). */
  | { kind: "positional"; names: readonly string[]; rest: string | undefined }
  /** One destructured object parameter: its property names are the inputs (`open` when it has `...rest`). */
  | { kind: "object"; names: readonly string[]; open: boolean };

type Node = { type: string; [key: string]: any };

/**
 * Reads a function's parameter list from its source (arrow, `function`, async, generator, method and
 * class-method forms). Parameters that are patterns other than one object get positional names `$0`, `$1`, ….
 */
export function parameterShape(fn: (...args: any[]) => unknown): ParameterShape {
  const params = parseParams(Function.prototype.toString.call(fn), fn.name);
  if (params.length === 1 && params[0]!.type === "ObjectPattern") {
    const pattern = params[0]!;
    const names: string[] = [];
    let open = false;
    for (const property of pattern.properties as Node[]) {
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

function parseParams(source: string, name: string): Node[] {
  if (source.includes("[native code]")) {
    throw new TaskDefinitionError(`task function "${name}" is native or bound; wrap it in a function of your own`);
  }
  const attempts = [`(${source})`, `({${source}})`];
  for (const text of attempts) {
    let node: Node;
    try {
      node = parseExpression(text, { plugins: ["typescript"], errorRecovery: false }) as Node;
    } catch {
      continue;
    }
    if (node.type === "ObjectExpression") node = node.properties[0] as Node;
    if (node && Array.isArray(node.params)) return node.params as Node[];
    if (node?.type === "ClassExpression") return [];
  }
  throw new TaskDefinitionError(`cannot read the parameters of task function "${name || "<anonymous>"}" from its source`);
}
