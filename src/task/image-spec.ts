import { statSync } from "node:fs";
import { basename, resolve } from "node:path";

import { hashFileSync, hashKey, hashTreeSync, hashValue, UnsupportedFileTypeError } from "../hash/index.js";
import { describeValue, ImageSpecError, readStringMap } from "./errors.js";
import { unknownOption } from "./option-names.js";
import {
  manifestExists,
  readRegistryCredentials,
  registryTarget,
  type ManifestQueryOptions,
  type RegistryQueryOptions,
} from "./image-registry.js";
import { installedPackageVersion } from "./policies/module-resolution.js";

/** Which source files go into the image (Flyte's `CopyFileDetection`). */
export type SourceCopyMode = "loaded-modules" | "all" | "no-copy";

/** Options of `new ImageSpec(...)`: Flyte's fields in camelCase, plus `nodeVersion`. */
export interface ImageSpecOptions {
  /** Image name (repository), lower-cased. Default `"cachet"`. */
  name?: string;
  pythonVersion?: string;
  /** The Node.js version to install. */
  nodeVersion?: string;
  /** Which builder builds the image; does not change the tag. */
  builder?: string;
  /** Directory whose files are copied into the image; its contents (not its path) enter the tag. */
  sourceRoot?: string;
  env?: Readonly<Record<string, string>>;
  /** `ghcr.io/org`, `localhost:5000`, `docker.io/user`, `user` (Docker Hub); lower-cased. */
  registry?: string;
  packages?: readonly string[];
  condaPackages?: readonly string[];
  condaChannels?: readonly string[];
  /** A requirements file; its contents (not its path) enter the tag. */
  requirements?: string;
  aptPackages?: readonly string[];
  cuda?: string;
  cudnn?: string;
  /** Base image: a reference, or another spec (which counts by its `imageName()`). */
  baseImage?: string | ImageSpec;
  /** Target platform(s). Default `"linux/amd64"`. */
  platform?: string;
  pipIndex?: string;
  pipExtraIndexUrl?: readonly string[];
  /** `[source, mountPath]` secrets for package installs; do not change the tag. */
  pipSecretMounts?: ReadonlyArray<readonly [string, string]>;
  pipExtraArgs?: string;
  /**
   * Path to a docker `config.json` whose `auths` hold the registry's credentials (used by `exist()`); does not
   * change the tag.
   */
  registryConfig?: string;
  entrypoint?: readonly string[];
  commands?: readonly string[];
  /** Wraps the content hash: `"{spec_hash}-gpu"`. Must contain `{spec_hash}` and give a valid docker tag. */
  tagFormat?: string;
  /** Default `"loaded-modules"` when `sourceRoot` is set. */
  sourceCopyMode?: SourceCopyMode;
  /** Files or directories copied into the image; their contents and base names (not locations) enter the tag. */
  copy?: readonly string[];
  pythonExec?: string;
}

/** Options of `ImageSpec.fromEnv(...)`. */
export interface FromEnvOptions extends Omit<ImageSpecOptions, "nodeVersion"> {
  /** Packages whose installed versions are pinned into `packages` as `name@version`. */
  pinnedPackages?: readonly string[];
  /** Where installed packages are looked up (its `node_modules` and those above). Default `process.cwd()`. */
  cwd?: string;
}

/** The environment variable a container built from a spec carries its id (`imageName()`) in. */
export const IMAGE_ID_ENV = "CACHET_IMAGE_ID";

/** Length of the content hash in a tag: 26 base32 characters (130 bits). */
export const TAG_HASH_LENGTH = 26;

const DEFAULT_NAME = "cachet";
const DEFAULT_PLATFORM = "linux/amd64";
const COPY_MODES: readonly SourceCopyMode[] = ["loaded-modules", "all", "no-copy"];
const STRING_FIELDS = [
  "pythonVersion",
  "nodeVersion",
  "builder",
  "sourceRoot",
  "requirements",
  "cuda",
  "cudnn",
  "pipIndex",
  "pipExtraArgs",
  "registryConfig",
  "pythonExec",
] as const;
const LIST_FIELDS = [
  "packages",
  "condaPackages",
  "condaChannels",
  "aptPackages",
  "pipExtraIndexUrl",
  "entrypoint",
  "commands",
  "copy",
] as const;
const OPTION_NAMES: ReadonlySet<string> = new Set([
  "name",
  "env",
  "registry",
  "baseImage",
  "platform",
  "pipSecretMounts",
  "tagFormat",
  "sourceCopyMode",
  ...STRING_FIELDS,
  ...LIST_FIELDS,
]);
/**
 * Entries left out of `sourceRoot` and of copied directories, by name at any depth (a `.git` file of a worktree
 * or submodule too): version control and installed packages are not source, and hold machine-specific bytes.
 */
export const SOURCE_SKIP: readonly string[] = Object.freeze([".git", "node_modules"]);

const PATH_COMPONENT = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
const NAME_PATTERN = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const HOST = "(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*|\\[[0-9a-f:]+\\])(?::[0-9]+)?";
const REGISTRY_PATTERN = new RegExp(`^${HOST}(?:/${PATH_COMPONENT})*$`);
const TAG_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/**
 * A container image described by what goes into it (Flyte's `ImageSpec`). Immutable: the `with…` builders
 * return new specs. Its `tag` is a content hash, so the same description gives the same image name on every
 * machine, and any change to what the image would contain gives a new one.
 */
export class ImageSpec {
  readonly name: string;
  readonly pythonVersion: string | undefined;
  readonly nodeVersion: string | undefined;
  readonly builder: string | undefined;
  readonly sourceRoot: string | undefined;
  readonly env: Readonly<Record<string, string>> | undefined;
  readonly registry: string | undefined;
  readonly packages: readonly string[] | undefined;
  readonly condaPackages: readonly string[] | undefined;
  readonly condaChannels: readonly string[] | undefined;
  readonly requirements: string | undefined;
  readonly aptPackages: readonly string[] | undefined;
  readonly cuda: string | undefined;
  readonly cudnn: string | undefined;
  readonly baseImage: string | ImageSpec | undefined;
  readonly platform: string;
  readonly pipIndex: string | undefined;
  readonly pipExtraIndexUrl: readonly string[] | undefined;
  readonly pipSecretMounts: ReadonlyArray<readonly [string, string]> | undefined;
  readonly pipExtraArgs: string | undefined;
  readonly registryConfig: string | undefined;
  readonly entrypoint: readonly string[] | undefined;
  readonly commands: readonly string[] | undefined;
  readonly tagFormat: string | undefined;
  readonly sourceCopyMode: SourceCopyMode | undefined;
  readonly copy: readonly string[] | undefined;
  readonly pythonExec: string | undefined;
  #forcePush = false;
  #tag: string | undefined;

  constructor(options: ImageSpecOptions = {}) {
    if (typeof options !== "object" || options === null || Array.isArray(options)) {
      throw new ImageSpecError(`new ImageSpec(options): options must be an object, got ${describeValue(options)}`);
    }
    for (const key of Object.keys(options)) {
      if (!OPTION_NAMES.has(key)) throw new ImageSpecError(unknownOption("new ImageSpec(options)", key, [...OPTION_NAMES]));
    }
    const o = options;
    const strings: Partial<Record<(typeof STRING_FIELDS)[number], string>> = {};
    for (const field of STRING_FIELDS) strings[field] = optionalString(o[field], field);
    const lists: Partial<Record<(typeof LIST_FIELDS)[number], readonly string[]>> = {};
    for (const field of LIST_FIELDS) lists[field] = optionalList(o[field], field);

    const name = optionalString(o.name, "name") ?? DEFAULT_NAME;
    this.name = name.toLowerCase();
    if (!NAME_PATTERN.test(this.name)) {
      throw new ImageSpecError(
        `ImageSpec option "name" is not a valid image name: ${JSON.stringify(name)} (lower-case letters, digits, ".", "_", "-", "/")`,
      );
    }
    const registry = optionalString(o.registry, "registry");
    this.registry = registry?.toLowerCase().replace(/\/+$/, "");
    if (this.registry !== undefined && !REGISTRY_PATTERN.test(this.registry)) {
      throw new ImageSpecError(
        `ImageSpec option "registry" is not a valid registry: ${JSON.stringify(registry)} ` +
          `(expected e.g. "localhost:30000", "ghcr.io/username", "docker.io/username"; no scheme)`,
      );
    }
    this.pythonVersion = strings.pythonVersion;
    this.nodeVersion = strings.nodeVersion;
    this.builder = strings.builder;
    this.sourceRoot = strings.sourceRoot;
    this.env = optionalStringMap(o.env, "env");
    this.packages = lists.packages;
    this.condaPackages = lists.condaPackages;
    this.condaChannels = lists.condaChannels;
    this.requirements = strings.requirements;
    this.aptPackages = lists.aptPackages;
    this.cuda = strings.cuda;
    this.cudnn = strings.cudnn;
    if (o.baseImage !== undefined && typeof o.baseImage !== "string" && !(o.baseImage instanceof ImageSpec)) {
      throw new ImageSpecError(`ImageSpec option "baseImage" must be an image reference or an ImageSpec, got ${describeValue(o.baseImage)}`);
    }
    this.baseImage = o.baseImage === "" ? undefined : o.baseImage;
    this.platform = optionalString(o.platform, "platform") ?? DEFAULT_PLATFORM;
    this.pipIndex = strings.pipIndex;
    this.pipExtraIndexUrl = lists.pipExtraIndexUrl;
    this.pipSecretMounts = optionalMounts(o.pipSecretMounts);
    this.pipExtraArgs = strings.pipExtraArgs;
    this.registryConfig = strings.registryConfig;
    this.entrypoint = lists.entrypoint;
    this.commands = lists.commands;
    this.tagFormat = optionalString(o.tagFormat, "tagFormat");
    if (this.tagFormat !== undefined) checkTagFormat(this.tagFormat);
    if (o.sourceCopyMode !== undefined && !COPY_MODES.includes(o.sourceCopyMode)) {
      throw new ImageSpecError(
        `ImageSpec option "sourceCopyMode" must be one of ${COPY_MODES.map((m) => `"${m}"`).join(", ")}, got ${describeValue(o.sourceCopyMode)}`,
      );
    }
    this.sourceCopyMode = o.sourceCopyMode ?? (this.sourceRoot !== undefined ? "loaded-modules" : undefined);
    if (this.sourceCopyMode !== undefined && this.sourceCopyMode !== "no-copy" && this.sourceRoot === undefined) {
      throw new ImageSpecError(`ImageSpec option "sourceCopyMode" "${this.sourceCopyMode}" needs a "sourceRoot" to copy from`);
    }
    this.copy = lists.copy;
    this.pythonExec = strings.pythonExec;
    Object.freeze(this);
  }

  /**
   * The image tag: a 26-character base32 content hash of the spec (see docs/policies.md), wrapped by
   * `tagFormat` if given. `builder`, `pipSecretMounts`, `registryConfig` and the force-push flag do not count;
   * the contents of `sourceRoot`, `copy` and `requirements` count instead of their paths; a `baseImage` spec
   * counts by its `imageName()`. Computed synchronously on first use (files are read then) and kept.
   */
  get tag(): string {
    if (this.#tag === undefined) {
      const hash = base32(hashValue(this.#tagDescription(), { label: "ImageSpec" })).slice(0, TAG_HASH_LENGTH);
      this.#tag = this.tagFormat === undefined ? hash : this.tagFormat.replaceAll("{spec_hash}", hash);
    }
    return this.#tag;
  }

  /** The spec's identity inside a container (`CACHET_IMAGE_ID`): its `imageName()`. */
  get id(): string {
    return this.imageName();
  }

  /** True after `forcePush()`: a builder should push the image even when it exists. */
  get isForcePush(): boolean {
    return this.#forcePush;
  }

  /** The full image reference: `[registry/]name:tag`. */
  imageName(): string {
    const image = `${this.name}:${this.tag}`;
    return this.registry ? `${this.registry}/${image}` : image;
  }

  /** True when this process runs in a container built from this spec (`CACHET_IMAGE_ID` equals its `id`). */
  isContainer(): boolean {
    return process.env[IMAGE_ID_ENV] === this.id;
  }

  /**
   * Asks the registry (OCI distribution API) whether the image exists: `true`, `false`, or `undefined` when it
   * cannot tell (unreachable, timed out, needs credentials it was not given or refuses them, server error).
   * Loopback registries use http. Credentials come from `registryConfig` (a docker `config.json`'s `auths`);
   * that file not readable, not JSON, or with a malformed entry for the registry rejects with an ImageSpecError.
   */
  async exist(options: RegistryQueryOptions = {}): Promise<boolean | undefined> {
    const target = registryTarget(this.registry, this.name);
    const credentials = this.registryConfig === undefined ? undefined : await readRegistryCredentials(this.registryConfig, target);
    const query: ManifestQueryOptions = { ...options };
    if (credentials) query.credentials = credentials;
    return manifestExists(target, this.tag, query);
  }

  /** A new spec with more packages to install. */
  withPackages(packages: string | readonly string[]): ImageSpec {
    return this.#extended("packages", packages);
  }

  /** A new spec with more apt packages to install. */
  withAptPackages(aptPackages: string | readonly string[]): ImageSpec {
    return this.#extended("aptPackages", aptPackages);
  }

  /** A new spec with more commands to run while building. */
  withCommands(commands: string | readonly string[]): ImageSpec {
    return this.#extended("commands", commands);
  }

  /** A new spec with more files or directories copied into the image. */
  withCopy(src: string | readonly string[]): ImageSpec {
    return this.#extended("copy", src);
  }

  /** A new spec that asks builders to push even an existing image. Same tag: pushing does not change the image. */
  forcePush(): ImageSpec {
    const copy = new ImageSpec(this.toOptions());
    copy.#forcePush = true;
    copy.#tag = this.#tag;
    return copy;
  }

  /** The spec's options, as a fresh object that `new ImageSpec(...)` accepts. */
  toOptions(): ImageSpecOptions {
    const options: Record<string, unknown> = {};
    for (const key of OPTION_NAMES) {
      const value = (this as unknown as Record<string, unknown>)[key];
      if (value === undefined) continue;
      if (key === "pipSecretMounts") options[key] = (value as ReadonlyArray<readonly [string, string]>).map(([a, b]) => [a, b]);
      else if (Array.isArray(value)) options[key] = [...(value as string[])];
      else if (key === "env") options[key] = { ...(value as Record<string, string>) };
      else options[key] = value;
    }
    return options as ImageSpecOptions;
  }

  /**
   * A spec for the running environment: `nodeVersion` is this Node's version, and each of `pinnedPackages` is
   * added to `packages` as `name@<installed version>` (looked up from `cwd`'s `node_modules`).
   */
  static fromEnv(options: FromEnvOptions = {}): ImageSpec {
    const { pinnedPackages, cwd, ...rest } = options;
    if ("nodeVersion" in rest) {
      throw new ImageSpecError(`ImageSpec.fromEnv: "nodeVersion" cannot be given, it is this Node's version`);
    }
    const pins = optionalList(pinnedPackages, "pinnedPackages") ?? [];
    const from = cwd ?? process.cwd();
    const pinned = pins.map((name) => {
      const version = installedPackageVersion(name, from);
      if (version === undefined) {
        throw new ImageSpecError(
          `ImageSpec.fromEnv: package "${name}" is not installed (no node_modules/${name}/package.json in ${resolve(from)} or above)`,
        );
      }
      return `${name}@${version}`;
    });
    const packages = [...(optionalList(rest.packages, "packages") ?? []), ...pinned];
    return new ImageSpec({
      ...rest,
      nodeVersion: process.versions.node,
      ...(packages.length > 0 ? { packages } : {}),
    });
  }

  /** Lets an `ImageSpec` be hashed as a task input: by its full image name. */
  [hashKey](): string {
    return this.imageName();
  }

  #extended(field: "packages" | "aptPackages" | "commands" | "copy", values: string | readonly string[]): ImageSpec {
    const added = typeof values === "string" ? [values] : optionalList(values, field);
    if (added === undefined) throw new ImageSpecError(`ImageSpec: ${field} to add must be a string or a list of strings`);
    const options = this.toOptions();
    options[field] = [...(this[field] ?? []), ...added];
    const next = new ImageSpec(options);
    next.#forcePush = this.#forcePush;
    return next;
  }

  /** What the tag hashes: every field that shapes the image, with file contents in place of paths. */
  #tagDescription(): Record<string, unknown> {
    const description: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(this.toOptions())) {
      if (key === "builder" || key === "pipSecretMounts" || key === "registryConfig") continue;
      description[key] = value;
    }
    if (this.baseImage instanceof ImageSpec) description.baseImage = this.baseImage.imageName();
    if (this.sourceRoot !== undefined) {
      if (this.sourceCopyMode === "no-copy") delete description.sourceRoot;
      else description.sourceRoot = { tree: treeDigest(this.sourceRoot, "sourceRoot") };
    }
    if (this.requirements !== undefined) {
      description.requirements = { file: fileDigest(this.requirements, "requirements") };
    }
    if (this.copy !== undefined) {
      description.copy = this.copy.map((path) => copyEntryDigest(path));
    }
    return description;
  }
}

function optionalString(value: unknown, field: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw new ImageSpecError(`ImageSpec option "${field}" must be a string, got ${describeValue(value)}`);
  return value;
}

function optionalList(value: unknown, field: string): readonly string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || !value.every((item) => typeof item === "string")) {
    throw new ImageSpecError(`ImageSpec option "${field}" must be a list of strings, got ${describeValue(value)}`);
  }
  return Object.freeze([...(value as string[])]);
}

function optionalStringMap(value: unknown, field: string): Readonly<Record<string, string>> | undefined {
  if (value === undefined) return undefined;
  return readStringMap(value, field, (path, got, what) => new ImageSpecError(`ImageSpec option "${path}" must be ${what}, got ${got}`));
}

function optionalMounts(value: unknown): ReadonlyArray<readonly [string, string]> | undefined {
  if (value === undefined) return undefined;
  const valid =
    Array.isArray(value) &&
    value.every((item) => Array.isArray(item) && item.length === 2 && item.every((part) => typeof part === "string"));
  if (!valid) {
    throw new ImageSpecError(`ImageSpec option "pipSecretMounts" must be a list of [source, mountPath] string pairs, got ${describeValue(value)}`);
  }
  return Object.freeze((value as Array<[string, string]>).map(([a, b]) => Object.freeze([a, b] as const)));
}

function checkTagFormat(format: string): void {
  if (!format.includes("{spec_hash}")) {
    throw new ImageSpecError(`ImageSpec option "tagFormat" must contain "{spec_hash}", got ${JSON.stringify(format)}`);
  }
  const sample = format.replaceAll("{spec_hash}", "a".repeat(TAG_HASH_LENGTH));
  if (!TAG_PATTERN.test(sample)) {
    throw new ImageSpecError(
      `ImageSpec option "tagFormat" ${JSON.stringify(format)} does not give a valid docker tag ` +
        `(letters, digits, "_", ".", "-", at most 128 characters, not starting with "." or "-")`,
    );
  }
}

const BASE32 = "abcdefghijklmnopqrstuvwxyz234567";

/** Lower-case RFC 4648 base32 (no padding) of a hex string's bytes. */
function base32(hex: string): string {
  let bits = 0;
  let value = 0;
  let out = "";
  for (let index = 0; index < hex.length; index += 2) {
    value = (value << 8) | Number.parseInt(hex.slice(index, index + 2), 16);
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/**
 * Runs one digest of a file option, turning a failure into an ImageSpecError that names the option and the path
 * (an unsupported entry inside a tree names that entry).
 */
function digestOf<T>(field: string, path: string, digest: () => T): T {
  try {
    return digest();
  } catch (cause) {
    const detail = cause instanceof UnsupportedFileTypeError ? cause.message : `cannot read ${path}: ${(cause as Error).message}`;
    throw new ImageSpecError(`ImageSpec option "${field}": ${detail}`, { cause });
  }
}

/** sha256 hex of a file's bytes (`hashFileSync`). */
function fileDigest(path: string, field: string): string {
  return digestOf(field, path, () => hashFileSync(path).digest);
}

/** The tree digest of a directory's contents (`hashTreeSync`), `SOURCE_SKIP` left out; its location does not count. */
function treeDigest(root: string, field: string): string {
  return digestOf(field, root, () => hashTreeSync(root, { skip: SOURCE_SKIP }).digest);
}

/** A `copy` entry: its base name (the name it gets in the image) and the digest of its contents. */
function copyEntryDigest(path: string): Record<string, unknown> {
  const stats = digestOf("copy", path, () => statSync(path));
  const name = basename(resolve(path));
  if (stats.isDirectory()) return { name, tree: treeDigest(path, "copy") };
  const file = digestOf("copy", path, () => hashFileSync(path));
  return { name, file: file.digest, executable: file.executable };
}
