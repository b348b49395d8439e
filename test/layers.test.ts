// The layer table of docs/architecture.md is the rule for imports: every relative import in src/ stays in its own
// layer or reaches one the table lists for it, so no layer imports one above it.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const src = join(root, "src");

/** The layer table: layer name (`errors`, `config`, `hash`, …) → the layers it may import. */
function layerTable(): Map<string, Set<string>> {
  const doc = readFileSync(join(root, "docs", "architecture.md"), "utf8");
  const section = doc.slice(doc.indexOf("## Layers"), doc.indexOf("\n## ", doc.indexOf("## Layers") + 1));
  const table = new Map<string, Set<string>>();
  for (const line of section.split("\n")) {
    const row = /^\| `src\/([a-z-]+)(?:\.ts|\/)` \|.*\| ([^|]+) \|$/.exec(line);
    if (!row) continue;
    const allowed = row[2]!.trim() === "nothing" ? [] : [...row[2]!.matchAll(/`([a-z-]+)`/g)].map((match) => match[1]!);
    table.set(row[1]!, new Set(allowed));
  }
  return table;
}

/** The layer a file of src/ belongs to: its folder under src/, or its name for a file at the top. */
function layerOf(file: string): string {
  const [first] = relative(src, file).split(sep);
  return first!.replace(/\.[jt]s$/, "");
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

/** Relative module specifiers a file imports or re-exports (static, side-effect and dynamic imports). */
function relativeImports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const found = [...text.matchAll(/(?:\bfrom\s+|\bimport\s*\(?\s*)["'](\.[^"']+)["']/g)].map((match) => match[1]!);
  return [...new Set(found)];
}

describe("layers", () => {
  test("the table names every layer of src/, config just above errors", () => {
    const table = layerTable();
    const layers = new Set(sourceFiles(src).map(layerOf).filter((layer) => layer !== "index"));
    assert.deepEqual([...table.keys()].sort(), [...layers].sort());
    assert.deepEqual([...table.get("config")!], ["errors"]);
    for (const layer of ["store", "task", "sources", "cli"]) assert.ok(table.get(layer)!.has("config"), `${layer} may read settings`);
  });

  test("every relative import stays in its layer or reaches a layer the table allows", () => {
    const table = layerTable();
    const wrong: string[] = [];
    let checked = 0;
    for (const file of sourceFiles(src)) {
      const from = layerOf(file);
      if (from === "index") continue; // the package's entry point re-exports every layer
      for (const specifier of relativeImports(file)) {
        const to = layerOf(resolve(dirname(file), specifier));
        checked++;
        if (to !== from && !table.get(from)!.has(to)) wrong.push(`${relative(root, file)} imports ${specifier} (${to})`);
      }
    }
    assert.ok(checked > 100, `only ${checked} imports found`);
    assert.ok(!table.get("sources")!.has("task") && !table.get("sources")!.has("cli"), "sources never imports task or cli");
    assert.deepEqual(wrong, []);
  });
});
