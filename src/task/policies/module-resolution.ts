import { existsSync, readFileSync, statSync } from "node:fs";
import { isBuiltin } from "node:module";
import { dirname, extname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * Where an import specifier leads, for `SourceGraphPolicy`: a Node builtin, a file of the project (relative or
 * absolute specifiers, resolved the way Node and TypeScript loaders do, including `./x.js` → `./x.ts`), or an
 * installed package (a bare specifier, counted by the version in its `package.json`).
 */
export type ImportTarget =
  | { readonly kind: "builtin"; readonly name: string }
  | { readonly kind: "file"; readonly path: string }
  | { readonly kind: "package"; readonly name: string; readonly version: string }
  | { readonly kind: "unresolved"; readonly reason: string };

const TS_FOR_JS: Readonly<Record<string, readonly string[]>> = {
  ".js": [".ts", ".tsx"],
  ".jsx": [".tsx"],
  ".mjs": [".mts"],
  ".cjs": [".cts"],
};

const BARE_EXTENSIONS = [".ts", ".tsx", ".mts", ".cts", ".js", ".mjs", ".cjs", ".jsx", ".json"];

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Resolves a relative or absolute specifier against the importing file; `undefined` when no file matches. */
export function resolveFileSpecifier(specifier: string, fromFile: string): string | undefined {
  const clean = specifier.replace(/[?#].*$/, "");
  const base = clean.startsWith("file:") ? fileURLToPath(clean) : resolve(dirname(fromFile), clean);
  if (isFile(base)) return base;
  const extension = extname(base);
  for (const alternative of TS_FOR_JS[extension] ?? []) {
    const candidate = base.slice(0, -extension.length) + alternative;
    if (isFile(candidate)) return candidate;
  }
  for (const added of BARE_EXTENSIONS) if (isFile(base + added)) return base + added;
  for (const added of BARE_EXTENSIONS) if (isFile(join(base, `index${added}`))) return join(base, `index${added}`);
  return undefined;
}

/** The package name a bare specifier names: `lodash/fp` → `lodash`, `@scope/pkg/sub` → `@scope/pkg`. */
export function packageNameOf(specifier: string): string {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]!;
}

function readPackageJson(path: string): { name?: unknown; version?: unknown } | undefined {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as { name?: unknown; version?: unknown };
  } catch {
    return undefined;
  }
}

/**
 * The installed version of package `name` as seen from directory `fromDir`: the first
 * `node_modules/<name>/package.json` on the way up, else the nearest enclosing package of that name (a package
 * importing itself by name). `undefined` when neither exists.
 */
export function installedPackageVersion(name: string, fromDir: string): string | undefined {
  for (let dir = resolve(fromDir); ; dir = dirname(dir)) {
    const manifest = join(dir, "node_modules", name, "package.json");
    if (existsSync(manifest)) {
      const version = readPackageJson(manifest)?.version;
      return typeof version === "string" ? version : "unknown";
    }
    if (dirname(dir) === dir) break;
  }
  for (let dir = resolve(fromDir); ; dir = dirname(dir)) {
    const manifest = readPackageJson(join(dir, "package.json"));
    if (manifest && manifest.name === name) return typeof manifest.version === "string" ? manifest.version : "unknown";
    if (dirname(dir) === dir) break;
  }
  return undefined;
}

/** The nearest enclosing package (`name@version`) of a directory, for `#internal` imports. */
function enclosingPackage(fromDir: string): { name: string; version: string } | undefined {
  for (let dir = resolve(fromDir); ; dir = dirname(dir)) {
    const manifest = readPackageJson(join(dir, "package.json"));
    if (manifest && typeof manifest.name === "string") {
      return { name: manifest.name, version: typeof manifest.version === "string" ? manifest.version : "unknown" };
    }
    if (dirname(dir) === dir) return undefined;
  }
}

/** Classifies and resolves an import specifier written in file `fromFile`. */
export function resolveImport(specifier: string, fromFile: string): ImportTarget {
  if (specifier.startsWith("node:") || isBuiltin(specifier)) {
    return { kind: "builtin", name: specifier.replace(/^node:/, "") };
  }
  if (specifier.startsWith(".") || specifier.startsWith("/") || specifier.startsWith("file:")) {
    const path = resolveFileSpecifier(specifier, fromFile);
    return path ? { kind: "file", path } : { kind: "unresolved", reason: `no file matches "${specifier}"` };
  }
  if (specifier.startsWith("#")) {
    const owner = enclosingPackage(dirname(fromFile));
    return owner
      ? { kind: "package", name: `${owner.name}${specifier}`, version: owner.version }
      : { kind: "unresolved", reason: `"${specifier}" is a package import but no package.json encloses the file` };
  }
  const name = packageNameOf(specifier);
  const version = installedPackageVersion(name, dirname(fromFile));
  return version !== undefined
    ? { kind: "package", name, version }
    : { kind: "unresolved", reason: `package "${name}" is not installed in any node_modules above the file` };
}
