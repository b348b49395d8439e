import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { hashFile, hashTree, hashValue } from "../src/hash/index.js";
import { ImageSpecError } from "../src/task/errors.js";
import { IMAGE_ID_ENV, ImageSpec, SOURCE_SKIP, TAG_HASH_LENGTH, type ImageSpecOptions } from "../src/task/image-spec.js";
import { registryTarget } from "../src/task/image-registry.js";

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "cachet-image-spec-"));
  dirs.push(dir);
  return dir;
}

/** Writes `files` (relative path → content) under a fresh directory and returns it. */
function tree(files: Record<string, string>, parent = tempDir(), name = "src"): string {
  const root = join(parent, name);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(root, path, ".."), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  mkdirSync(root, { recursive: true });
  return root;
}

const base: ImageSpecOptions = { name: "pipeline", registry: "ghcr.io/acme", nodeVersion: "20.11.0", packages: ["sharp@0.33.0"] };
const tagOf = (options: ImageSpecOptions): string => new ImageSpec(options).tag;

describe("ImageSpec tag", () => {
  test("is deterministic, short and docker-tag-safe; imageName is [registry/]name:tag", () => {
    const a = new ImageSpec(base);
    const b = new ImageSpec({ ...base });
    assert.equal(a.tag, b.tag);
    assert.match(a.tag, new RegExp(`^[a-z2-7]{${TAG_HASH_LENGTH}}$`));
    assert.equal(a.imageName(), `ghcr.io/acme/pipeline:${a.tag}`);
    const local = new ImageSpec({ name: "pipeline" });
    assert.equal(local.imageName(), `pipeline:${local.tag}`);
    assert.equal(a.id, a.imageName());
  });

  test("key order of env does not matter; every field that shapes the image does", () => {
    assert.equal(tagOf({ ...base, env: { A: "1", B: "2" } }), tagOf({ ...base, env: { B: "2", A: "1" } }));
    const reference = tagOf(base);
    const changes: ImageSpecOptions[] = [
      { name: "pipeline2" },
      { registry: "ghcr.io/other" },
      { nodeVersion: "22.1.0" },
      { pythonVersion: "3.12" },
      { packages: ["sharp@0.33.1"] },
      { packages: ["sharp@0.33.0", "zod"] },
      { condaPackages: ["numpy"] },
      { condaChannels: ["conda-forge"] },
      { aptPackages: ["git"] },
      { cuda: "12.1" },
      { cudnn: "8" },
      { baseImage: "node:20-slim" },
      { platform: "linux/arm64" },
      { pipIndex: "https://pypi.example" },
      { pipExtraIndexUrl: ["https://extra.example"] },
      { pipExtraArgs: "--no-cache" },
      { entrypoint: ["node"] },
      { commands: ["npm ci"] },
      { pythonExec: "/usr/bin/python3" },
      { env: { MODE: "prod" } },
    ];
    for (const change of changes) assert.notEqual(tagOf({ ...base, ...change }), reference, JSON.stringify(change));
  });

  test("builder, pipSecretMounts, registryConfig and force push do not change it", () => {
    const reference = new ImageSpec(base);
    assert.equal(tagOf({ ...base, builder: "envd" }), reference.tag);
    assert.equal(tagOf({ ...base, pipSecretMounts: [[".netrc", "/root/.netrc"]] }), reference.tag);
    assert.equal(tagOf({ ...base, registryConfig: "/home/me/.docker/config.json" }), reference.tag);
    const forced = reference.forcePush();
    assert.equal(forced.tag, reference.tag);
    assert.equal(forced.isForcePush, true);
    assert.equal(reference.isForcePush, false);
    assert.equal(forced.withPackages("zod").isForcePush, true, "builders keep the force-push flag");
  });

  test("sourceRoot counts by its contents, not its path", () => {
    const files = { "index.ts": "export const a = 1;\n", "lib/util.ts": "export const b = 2;\n" };
    const first = tree(files);
    const second = tree(files, tempDir(), "elsewhere");
    const reference = tagOf({ ...base, sourceRoot: first });
    assert.equal(tagOf({ ...base, sourceRoot: second }), reference);
    assert.notEqual(reference, tagOf(base));
    assert.notEqual(tagOf({ ...base, sourceRoot: tree({ ...files, "lib/util.ts": "export const b = 3;\n" }) }), reference);
    assert.notEqual(tagOf({ ...base, sourceRoot: tree({ ...files, "extra.ts": "" }) }), reference);
    assert.notEqual(tagOf({ ...base, sourceRoot: tree({ "index.ts": files["index.ts"], "lib/helpers.ts": files["lib/util.ts"] }) }), reference);
    assert.notEqual(tagOf({ ...base, sourceRoot: tree({ ...files, "empty/.keep": "" }) }), reference, "an added file");
    const executable = tree(files);
    chmodSync(join(executable, "index.ts"), 0o744);
    assert.notEqual(tagOf({ ...base, sourceRoot: executable }), reference, "the owner-executable bit counts");
    const groupExecutable = tree(files);
    chmodSync(join(groupExecutable, "index.ts"), 0o655);
    assert.equal(tagOf({ ...base, sourceRoot: groupExecutable }), reference, "group and other bits do not (the hash layer's one rule)");
    const withNoise = tree({
      ...files,
      ".git/HEAD": "ref: refs/heads/main\n",
      "node_modules/x/index.js": "1",
      "lib/node_modules/y/index.js": "2",
    });
    assert.equal(tagOf({ ...base, sourceRoot: withNoise }), reference, ".git and node_modules are skipped at any depth");
  });

  test("the sourceRoot digest is the hash layer's tree digest with SOURCE_SKIP, and the tag is pinned", async () => {
    assert.deepEqual(SOURCE_SKIP, [".git", "node_modules"]);
    const root = tree({ "index.ts": "export const a = 1;\n", "bin/run": "#!/bin/sh\n", ".git/HEAD": "ref\n", "node_modules/m/i.js": "" });
    chmodSync(join(root, "bin/run"), 0o755);
    symlinkSync("../index.ts", join(root, "bin/index.ts"));
    const requirements = join(tempDir(), "requirements.txt");
    writeFileSync(requirements, "numpy==1.26.0\n");
    const options: ImageSpecOptions = { ...base, sourceRoot: root, requirements };
    // The documented rule, computed here with the async hash layer: fields, with file contents in place of paths.
    const { sourceRoot: _root, requirements: _requirements, ...fields } = options;
    const description = {
      ...fields,
      platform: "linux/amd64",
      sourceCopyMode: "loaded-modules",
      sourceRoot: { tree: (await hashTree(root, { skip: SOURCE_SKIP })).digest },
      requirements: { file: (await hashFile(requirements)).digest },
    };
    const tag = tagOf(options);
    assert.equal(tag, base32(hashValue(description)).slice(0, TAG_HASH_LENGTH));
    // Pinned: any change to the tree digest, the skip list, the exec rule or the description changes every tag.
    assert.equal(tag, "kzyzgdz6264455lxshfybsidwz");
  });

  test("the tag does not depend on where the tree is, mtimes, owners, group/other bits or a worktree's .git file", () => {
    const files = { "index.ts": "export const a = 1;\n", "lib/util.ts": "export const b = 2;\n", "run.sh": "#!/bin/sh\n" };
    const original = tree(files);
    chmodSync(join(original, "run.sh"), 0o755);
    const reference = tagOf({ ...base, sourceRoot: original });
    const copy = join(tempDir(), "deeper", "checkout");
    cpSync(original, copy, { recursive: true });
    utimesSync(join(copy, "index.ts"), new Date(0), new Date(0));
    utimesSync(join(copy, "lib"), new Date(1e12), new Date(1e12));
    chmodSync(join(copy, "run.sh"), 0o700);
    chmodSync(join(copy, "index.ts"), 0o600);
    chmodSync(join(copy, "lib"), 0o700);
    // A git worktree or submodule has a .git file naming an absolute path on this machine.
    writeFileSync(join(copy, ".git"), `gitdir: ${join(tempDir(), "repo", ".git", "worktrees", "checkout")}\n`);
    writeFileSync(join(copy, "lib", ".git"), `gitdir: /home/someone/repo/.git/modules/lib\n`);
    if (process.getuid?.() === 0) {
      chownSync(join(copy, "index.ts"), 4242, 4242);
      chownSync(join(copy, "lib"), 4243, 4243);
    }
    assert.equal(tagOf({ ...base, sourceRoot: copy }), reference);
  });

  test("a special file in sourceRoot is an ImageSpecError naming the option and the entry, unless it is skipped", { skip: process.platform === "win32" }, () => {
    const root = tree({ "index.ts": "1" });
    const reference = tagOf({ ...base, sourceRoot: root });
    mkdirSync(join(root, "node_modules"));
    execFileSync("mkfifo", [join(root, "node_modules", "pipe")], { timeout: 10_000, killSignal: "SIGKILL" });
    assert.equal(tagOf({ ...base, sourceRoot: root }), reference, "node_modules is not read at all");
    execFileSync("mkfifo", [join(root, "pipe")], { timeout: 10_000, killSignal: "SIGKILL" });
    assert.throws(() => tagOf({ ...base, sourceRoot: root }), (e: unknown) =>
      e instanceof ImageSpecError && e.message === `ImageSpec option "sourceRoot": cannot hash "${join(root, "pipe")}": it is a FIFO (named pipe) (a tree may hold only files, directories and symlinks)`);
    assert.throws(() => tagOf({ ...base, sourceRoot: join(root, "missing") }), (e: unknown) =>
      e instanceof ImageSpecError && /^ImageSpec option "sourceRoot": cannot read .*missing: ENOENT/.test(e.message));
    assert.throws(() => tagOf({ ...base, sourceRoot: join(root, "index.ts") }), (e: unknown) =>
      e instanceof ImageSpecError && /"sourceRoot": cannot hash ".*index\.ts" as a tree: it is a regular file, not a directory/.test(e.message));
  });

  test("sourceCopyMode: defaults to loaded-modules with a sourceRoot; no-copy ignores the contents", () => {
    const root = tree({ "a.ts": "1" });
    assert.equal(new ImageSpec({ ...base, sourceRoot: root }).sourceCopyMode, "loaded-modules");
    const noCopy = tagOf({ ...base, sourceRoot: root, sourceCopyMode: "no-copy" });
    assert.equal(tagOf({ ...base, sourceRoot: tree({ "a.ts": "2" }), sourceCopyMode: "no-copy" }), noCopy);
    assert.notEqual(tagOf({ ...base, sourceRoot: root, sourceCopyMode: "all" }), tagOf({ ...base, sourceRoot: root }));
    assert.throws(() => new ImageSpec({ ...base, sourceCopyMode: "all" }), /needs a "sourceRoot"/);
    assert.throws(() => new ImageSpec({ ...base, sourceCopyMode: "some" as never }), /"sourceCopyMode" must be one of/);
  });

  test("copy entries count by contents and base name, not location", () => {
    const a = tempDir();
    const b = tempDir();
    writeFileSync(join(a, "model.bin"), "weights-v1");
    writeFileSync(join(b, "model.bin"), "weights-v1");
    const reference = tagOf({ ...base, copy: [join(a, "model.bin")] });
    assert.equal(tagOf({ ...base, copy: [join(b, "model.bin")] }), reference);
    writeFileSync(join(b, "model.bin"), "weights-v2");
    assert.notEqual(tagOf({ ...base, copy: [join(b, "model.bin")] }), reference);
    const dirA = tree({ "x.txt": "x", "y/z.txt": "z" }, tempDir(), "assets");
    const dirB = tree({ "x.txt": "x", "y/z.txt": "z" }, tempDir(), "assets");
    assert.equal(tagOf({ ...base, copy: [dirA] }), tagOf({ ...base, copy: [dirB] }));
    const dirC = tree({ "x.txt": "x", "y/z.txt": "zz" }, tempDir(), "assets");
    assert.notEqual(tagOf({ ...base, copy: [dirA] }), tagOf({ ...base, copy: [dirC] }));
    const dirD = tree({ "x.txt": "x", "y/z.txt": "z", ".git/HEAD": "ref", "node_modules/m.js": "" }, tempDir(), "assets");
    assert.equal(tagOf({ ...base, copy: [dirD] }), tagOf({ ...base, copy: [dirA] }), "copied directories skip the same entries");
    assert.notEqual(tagOf({ ...base, copy: [tree({ "x.txt": "x", "y/z.txt": "z" }, tempDir(), "other")] }), tagOf({ ...base, copy: [dirA] }), "the base name counts");
    chmodSync(join(b, "model.bin"), 0o744);
    const executableTag = tagOf({ ...base, copy: [join(b, "model.bin")] });
    chmodSync(join(b, "model.bin"), 0o644);
    assert.notEqual(executableTag, tagOf({ ...base, copy: [join(b, "model.bin")] }), "a copied file's owner-executable bit counts");
    chmodSync(join(b, "model.bin"), 0o611);
    const groupOnly = tagOf({ ...base, copy: [join(b, "model.bin")] });
    chmodSync(join(b, "model.bin"), 0o600);
    assert.equal(groupOnly, tagOf({ ...base, copy: [join(b, "model.bin")] }), "group and other bits do not");
    assert.throws(() => tagOf({ ...base, copy: [join(a, "missing.bin")] }), (e: unknown) =>
      e instanceof ImageSpecError && /"copy": cannot read .*missing\.bin/.test(e.message));
  });

  test("requirements counts by contents, not path", () => {
    const a = join(tempDir(), "requirements.txt");
    const b = join(tempDir(), "deps.txt");
    writeFileSync(a, "numpy==1.26.0\n");
    writeFileSync(b, "numpy==1.26.0\n");
    const reference = tagOf({ ...base, requirements: a });
    assert.equal(tagOf({ ...base, requirements: b }), reference);
    writeFileSync(b, "numpy==2.0.0\n");
    assert.notEqual(tagOf({ ...base, requirements: b }), reference);
    assert.throws(() => tagOf({ ...base, requirements: join(tempDir(), "nope.txt") }), /"requirements": cannot read/);
  });

  test("a baseImage spec counts by its imageName()", () => {
    const parent = new ImageSpec({ name: "base", aptPackages: ["curl"] });
    assert.equal(tagOf({ ...base, baseImage: parent }), tagOf({ ...base, baseImage: parent.imageName() }));
    assert.notEqual(tagOf({ ...base, baseImage: parent }), tagOf({ ...base, baseImage: parent.withAptPackages("git") }));
  });

  test("tagFormat wraps the hash; it must keep the hash and give a valid tag", () => {
    const gpu = new ImageSpec({ ...base, tagFormat: "{spec_hash}-gpu" });
    assert.match(gpu.tag, new RegExp(`^[a-z2-7]{${TAG_HASH_LENGTH}}-gpu$`));
    assert.ok(gpu.imageName().endsWith("-gpu"));
    assert.equal(new ImageSpec({ ...base, tagFormat: "{spec_hash}-gpu" }).tag, gpu.tag);
    assert.throws(() => new ImageSpec({ ...base, tagFormat: "latest" }), /must contain "\{spec_hash\}"/);
    assert.throws(() => new ImageSpec({ ...base, tagFormat: "{spec_hash} gpu" }), /valid docker tag/);
    assert.throws(() => new ImageSpec({ ...base, tagFormat: `{spec_hash}${"x".repeat(120)}` }), /valid docker tag/);
  });
});

describe("ImageSpec builders", () => {
  test("with* return a new spec with a new tag and leave the original untouched", () => {
    const original = new ImageSpec({ ...base, aptPackages: ["git"], commands: ["echo 1"], copy: [] });
    const tag = original.tag;
    const cases: Array<[ImageSpec, keyof ImageSpec, string[]]> = [
      [original.withPackages("zod"), "packages", ["sharp@0.33.0", "zod"]],
      [original.withPackages(["zod", "ky"]), "packages", ["sharp@0.33.0", "zod", "ky"]],
      [original.withAptPackages("curl"), "aptPackages", ["git", "curl"]],
      [original.withCommands(["npm ci", "npm run build"]), "commands", ["echo 1", "npm ci", "npm run build"]],
    ];
    for (const [spec, field, expected] of cases) {
      assert.notEqual(spec, original);
      assert.deepEqual(spec[field], expected);
      assert.notEqual(spec.tag, tag);
    }
    const file = join(tempDir(), "config.json");
    writeFileSync(file, "{}");
    const copied = original.withCopy(file);
    assert.deepEqual(copied.copy, [file]);
    assert.notEqual(copied.tag, tag);
    assert.deepEqual(original.packages, ["sharp@0.33.0"]);
    assert.deepEqual(original.aptPackages, ["git"]);
    assert.deepEqual(original.commands, ["echo 1"]);
    assert.deepEqual(original.copy, []);
    assert.equal(original.tag, tag);
  });

  test("specs are frozen, lists included", () => {
    const spec = new ImageSpec({ ...base, env: { A: "1" } });
    assert.ok(Object.isFrozen(spec));
    assert.ok(Object.isFrozen(spec.packages));
    assert.ok(Object.isFrozen(spec.env));
    assert.throws(() => (spec.packages as string[]).push("x"), TypeError);
    const input = ["a"];
    const fromInput = new ImageSpec({ packages: input });
    input.push("b");
    assert.deepEqual(fromInput.packages, ["a"], "the spec copies its inputs");
  });
});

describe("ImageSpec validation and defaults", () => {
  test("defaults: name cachet, platform linux/amd64; name and registry are lower-cased", () => {
    const spec = new ImageSpec();
    assert.equal(spec.name, "cachet");
    assert.equal(spec.platform, "linux/amd64");
    const upper = new ImageSpec({ name: "MyApp", registry: "GHCR.io/Acme" });
    assert.equal(upper.name, "myapp");
    assert.equal(upper.registry, "ghcr.io/acme");
  });

  test("bad options are refused, naming the option", () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ name: "bad name" }, /"name" is not a valid image name/],
      [{ name: 3 }, /"name" must be a string, got a number/],
      [{ registry: "https://ghcr.io/acme" }, /"registry" is not a valid registry.*no scheme/],
      [{ packages: "zod" }, /"packages" must be a list of strings, got a string/],
      [{ packages: ["zod", 1] }, /"packages" must be a list of strings/],
      [{ env: { A: 1 } }, /"env.A" must be a string/],
      [{ pipSecretMounts: [["a"]] }, /"pipSecretMounts" must be a list of \[source, mountPath\]/],
      [{ baseImage: 5 }, /"baseImage" must be an image reference or an ImageSpec/],
      [{ nodeVerison: "20" }, /unknown option "nodeVerison"/],
    ];
    for (const [options, message] of cases) {
      assert.throws(() => new ImageSpec(options as never), (e: unknown) => e instanceof ImageSpecError && message.test(e.message), String(message));
    }
    for (const registry of ["localhost:30000", "ghcr.io/username", "docker.io/username", "username", "127.0.0.1:5000"]) {
      assert.equal(new ImageSpec({ registry }).registry, registry);
    }
  });

  test("isContainer compares CACHET_IMAGE_ID with the spec's id", () => {
    const spec = new ImageSpec(base);
    const saved = process.env[IMAGE_ID_ENV];
    try {
      delete process.env[IMAGE_ID_ENV];
      assert.equal(spec.isContainer(), false);
      process.env[IMAGE_ID_ENV] = spec.imageName();
      assert.equal(spec.isContainer(), true);
      assert.equal(spec.withPackages("x").isContainer(), false);
    } finally {
      if (saved === undefined) delete process.env[IMAGE_ID_ENV];
      else process.env[IMAGE_ID_ENV] = saved;
    }
  });

  test("an ImageSpec can be hashed as a task input (by its image name)", () => {
    assert.equal(hashValue(new ImageSpec(base)), hashValue(new ImageSpec({ ...base })));
    assert.notEqual(hashValue(new ImageSpec(base)), hashValue(new ImageSpec({ ...base, cuda: "12" })));
  });
});

describe("ImageSpec.fromEnv", () => {
  const project = tempDir();
  mkdirSync(join(project, "node_modules", "left-pad"), { recursive: true });
  writeFileSync(join(project, "node_modules", "left-pad", "package.json"), JSON.stringify({ name: "left-pad", version: "1.3.0" }));
  mkdirSync(join(project, "node_modules", "@scope", "tool"), { recursive: true });
  writeFileSync(join(project, "node_modules", "@scope", "tool", "package.json"), JSON.stringify({ name: "@scope/tool", version: "2.0.1" }));
  const nested = join(project, "packages", "app");
  mkdirSync(nested, { recursive: true });

  test("pins the running Node version and the installed versions of the named packages", () => {
    const spec = ImageSpec.fromEnv({ name: "app", packages: ["zod"], pinnedPackages: ["left-pad", "@scope/tool"], cwd: nested });
    assert.equal(spec.nodeVersion, process.versions.node);
    assert.deepEqual(spec.packages, ["zod", "left-pad@1.3.0", "@scope/tool@2.0.1"]);
    assert.equal(spec.name, "app");
  });

  test("resolves from the current directory by default", () => {
    const installed = JSON.parse(readFileSync(new URL("../node_modules/typescript/package.json", import.meta.url), "utf8")) as { version: string };
    const spec = ImageSpec.fromEnv({ pinnedPackages: ["typescript"] });
    assert.deepEqual(spec.packages, [`typescript@${installed.version}`]);
  });

  test("a missing package or an explicit nodeVersion is refused", () => {
    assert.throws(() => ImageSpec.fromEnv({ pinnedPackages: ["not-installed-anywhere"], cwd: nested }), (e: unknown) =>
      e instanceof ImageSpecError && /package "not-installed-anywhere" is not installed/.test(e.message));
    assert.throws(() => ImageSpec.fromEnv({ nodeVersion: "18" } as never), /"nodeVersion" cannot be given/);
  });
});

describe("registry addressing", () => {
  test("Docker Hub, registries with hosts, loopback over http", () => {
    assert.deepEqual(registryTarget(undefined, "ubuntu"), { baseUrl: "https://registry-1.docker.io", repository: "library/ubuntu" });
    assert.deepEqual(registryTarget("docker.io/acme", "app"), { baseUrl: "https://registry-1.docker.io", repository: "acme/app" });
    assert.deepEqual(registryTarget("acme", "app"), { baseUrl: "https://registry-1.docker.io", repository: "acme/app" });
    assert.deepEqual(registryTarget("ghcr.io/acme/team", "app"), { baseUrl: "https://ghcr.io", repository: "acme/team/app" });
    assert.deepEqual(registryTarget("localhost:5000", "app"), { baseUrl: "http://localhost:5000", repository: "app" });
    assert.deepEqual(registryTarget("127.0.0.1:5000/ns", "app"), { baseUrl: "http://127.0.0.1:5000", repository: "ns/app" });
    assert.deepEqual(registryTarget("registry.example.com:8443", "app"), { baseUrl: "https://registry.example.com:8443", repository: "app" });
  });
});

const BASE32 = "abcdefghijklmnopqrstuvwxyz234567";

/** RFC 4648 base32, lower case, no padding (the tag's alphabet), written out here to check the tag independently. */
function base32(hex: string): string {
  const bits = [...Buffer.from(hex, "hex")].map((byte) => byte.toString(2).padStart(8, "0")).join("");
  let out = "";
  for (let at = 0; at < bits.length; at += 5) out += BASE32[Number.parseInt(bits.slice(at, at + 5).padEnd(5, "0"), 2)];
  return out;
}
