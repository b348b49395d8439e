// Suite "run-restore": a `cachet run` hit restoring a 10 000-file output (110 directories, ~40 MiB) — the whole
// command, start-up included — against Turborepo 2 restoring the same output of the same task from its local
// cache, and against `cp -r` and GNU tar extracting the same tree, all in the same run on one filesystem:
// - outputs deleted, default mode (clone, else a parallel copy) and CACHET_LINK_MODE=hardlink;
// - outputs intact (both tools leave them alone; what is left is start-up and checking), with Turborepo also
//   run with --no-daemon (info: the bench starts no daemon, and `turbo run` 2.11 checks its outputs with an lstat
//   each either way), and `node -e 0` (info: the start-up of the Node.js process alone, cachet's floor).
// Turbo's Linux binary runs offline with TURBO_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1, in a throwaway workspace.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { arch, platform } from "node:os";
import { dirname, join } from "node:path";
import { median, now, scratchDir, type BenchContext } from "./measure.js";
import { fmt, info, judged, type Figure } from "./report.js";
import { writeTree } from "./trees.js";

const SUITE = "run-restore";
// BENCH_CACHET_CLI names another build's CLI (e.g. an earlier commit's dist/cli/main.js), for before/after runs.
const CLI = process.env.BENCH_CACHET_CLI || new URL("../dist/cli/cachet.js", import.meta.url).pathname;
const TURBO_ENV = { TURBO_TELEMETRY_DISABLED: "1", DO_NOT_TRACK: "1", TURBO_NO_UPDATE_NOTIFIER: "1" };

/** The task both tools cache: copies the prepared tree to `out/` (its cost does not matter: only hits are timed). */
const MAKE_SCRIPT = `require("node:fs").cpSync(process.argv[2], "out", { recursive: true }); console.log("made out/");\n`;

export async function run(context: BenchContext): Promise<Figure[]> {
  const files = context.quick ? 2000 : 10_000;
  const reps = context.quick ? 3 : 9;
  const turbo = turboBinary();
  if (turbo === undefined) return [info(SUITE, "skipped", `no Turborepo binary for ${platform()}-${arch()} (npm install turbo@2)`)];
  const scratch = scratchDir(SUITE);
  try {
    const tree = join(scratch.path, "tree");
    context.log(`${SUITE}: writing a ${files}-file tree`);
    const bytes = writeTree(tree, files, { maxFactor: 230 });
    const tarball = join(scratch.path, "tree.tar");
    await exec("tar", ["-cf", tarball, "-C", tree, "."]);

    const turboWs = workspace(join(scratch.path, "turbo-ws"), tree);
    writeFileSync(join(turboWs, "turbo.json"), JSON.stringify({ tasks: { build: { inputs: ["make.cjs"], outputs: ["out/**"] } } }));
    const cachetWs = workspace(join(scratch.path, "cachet-ws"), tree);
    const cachetCache = join(scratch.path, "cachet-cache");

    const turboRun = (...flags: string[]) => exec(turbo, ["run", "build", "--output-logs=none", ...flags], { cwd: turboWs, env: TURBO_ENV });
    const cachetRun = (env: NodeJS.ProcessEnv = {}) =>
      exec(process.execPath, [CLI, "--cache-dir", cachetCache, "run", "--name", "bench", "--out", "out", "--", process.execPath, "make.cjs", tree], {
        cwd: cachetWs,
        env,
      });
    context.log(`${SUITE}: first runs (both tools store the output)`);
    await turboRun();
    await cachetRun();

    const times = {
      turbo: [] as number[],
      copy: [] as number[],
      hardlink: [] as number[],
      cp: [] as number[],
      tar: [] as number[],
      cpal: [] as number[],
      turboIntact: [] as number[],
      cachetIntact: [] as number[],
      turboNoDaemon: [] as number[],
      node: [] as number[],
    };
    const restores: Record<"turbo" | "copy" | "hardlink" | "cp" | "tar" | "cpal", { target: string; restore: () => Promise<void> }> = {
      turbo: { target: join(turboWs, "out"), restore: () => turboRun() },
      copy: { target: join(cachetWs, "out"), restore: () => cachetRun() },
      hardlink: { target: join(cachetWs, "out"), restore: () => cachetRun({ CACHET_LINK_MODE: "hardlink" }) },
      cp: { target: join(scratch.path, "cp-out"), restore: () => exec("cp", ["-r", tree, join(scratch.path, "cp-out")]) },
      tar: { target: join(scratch.path, "tar-out"), restore: () => tarInto(tarball, join(scratch.path, "tar-out")) },
      cpal: { target: join(scratch.path, "cpal-out"), restore: () => exec("cp", ["-al", tree, join(scratch.path, "cpal-out")]) },
    };
    const order = Object.keys(restores) as Array<keyof typeof restores>;
    for (let rep = 0; rep < reps; rep++) {
      context.log(`${SUITE}: repetition ${rep + 1}/${reps}`);
      const shift = rep % order.length;
      for (const method of [...order.slice(shift), ...order.slice(0, shift)]) {
        // A restore right after removing a large tree pays for that removal's writeback: remove, sync, then time.
        await rm(restores[method].target, { recursive: true, force: true });
        await exec("sync", []);
        times[method].push(await timed(restores[method].restore));
        if (rep === 0) checkRestored(restores[method].target, files, method);
      }
      // Outputs intact: each tool's hit over the output it restored last, left alone.
      await restores.copy.restore();
      await turboRun();
      const intact = { turboIntact: () => turboRun(), cachetIntact: () => cachetRun(), turboNoDaemon: () => turboRun("--no-daemon"), node: () => exec(process.execPath, ["-e", "0"]) };
      const methods = Object.keys(intact) as Array<keyof typeof intact>;
      for (const method of rep % 2 ? methods.reverse() : methods) times[method].push(await timed(intact[method]));
    }
    // Other processes' disk traffic only ever adds time: judge the fastest repetition, show the medians too.
    const best = (method: keyof typeof times) => Math.min(...times[method]);
    const shown = (label: string, method: keyof typeof times) => `${label} ${fmt.ms(best(method))} (median ${fmt.ms(median(times[method]))})`;
    return [
      info(SUITE, `output: ${files} files in ${10 + Math.min(100, files)} dirs, ${(bytes / 1048576).toFixed(1)} MiB`, `best of ${reps}, whole commands (start-up included)`),
      judged(SUITE, `hit, outputs deleted (default mode): turbo ÷ cachet`, `${shown("turbo", "turbo")} · ${shown("cachet run", "copy")}`, best("turbo") / best("copy"), "×", { atLeast: 1.5 }, 2),
      judged(SUITE, `hit, outputs deleted (hardlink): turbo ÷ cachet`, `${shown("turbo", "turbo")} · ${shown("cachet run", "hardlink")}`, best("turbo") / best("hardlink"), "×", { atLeast: 4 }, 2),
      judged(SUITE, `hit, outputs intact: cachet ÷ turbo`, `${shown("cachet run", "cachetIntact")} · ${shown("turbo", "turboIntact")}`, best("cachetIntact") / best("turboIntact"), "×", { atMost: 1.5 }, 2),
      info(SUITE, `hit, outputs intact: cachet ÷ turbo --no-daemon`, `${shown("cachet run", "cachetIntact")} · ${shown("turbo --no-daemon", "turboNoDaemon")}`, `${(best("cachetIntact") / best("turboNoDaemon")).toFixed(2)}×`),
      info(SUITE, `Node.js start-up alone (node -e 0)`, `${shown("node -e 0", "node")} · ${shown("cachet run intact", "cachetIntact")}`, fmt.ms(best("node"))),
      info(SUITE, `cp -r ÷ cachet run (default mode)`, `${shown("cp -r", "cp")} · ${shown("cachet run", "copy")}`, `${(best("cp") / best("copy")).toFixed(2)}×`),
      info(SUITE, `tar -x ÷ cachet run (default mode)`, `${shown("tar -x", "tar")} · ${shown("cachet run", "copy")}`, `${(best("tar") / best("copy")).toFixed(2)}×`),
      info(SUITE, `cp -al ÷ cachet run (hardlink)`, `${shown("cp -al", "cpal")} · ${shown("cachet run", "hardlink")}`, `${(best("cpal") / best("hardlink")).toFixed(2)}×`),
    ];
  } finally {
    scratch.cleanup();
  }
}

/** The platform binary the `turbo` package runs (started directly, as `node dist/cli/cachet.js`, the package's bin, is for cachet). */
function turboBinary(): string | undefined {
  const names: Record<string, string> = { "linux-x64": "linux-64", "linux-arm64": "linux-arm64", "darwin-x64": "darwin-64", "darwin-arm64": "darwin-arm64" };
  const name = names[`${platform()}-${arch()}`];
  if (name === undefined) return undefined;
  try {
    const manifest = createRequire(import.meta.url).resolve(`@turbo/${name}/package.json`);
    const binary = join(dirname(manifest), "bin", "turbo");
    return existsSync(binary) ? binary : undefined;
  } catch {
    return undefined;
  }
}

/** A throwaway single-package workspace whose `build` makes `out/` from `tree`. */
function workspace(dir: string, tree: string): string {
  mkdirSync(dir, { recursive: true });
  const name = "bench-ws";
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name, version: "1.0.0", private: true, packageManager: "npm@10.9.0", scripts: { build: `node make.cjs ${tree}` } }));
  writeFileSync(join(dir, "package-lock.json"), JSON.stringify({ name, version: "1.0.0", lockfileVersion: 3, requires: true, packages: { "": { name, version: "1.0.0" } } }));
  writeFileSync(join(dir, "make.cjs"), MAKE_SCRIPT);
  return dir;
}


function checkRestored(target: string, files: number, method: string): void {
  const found = readdirSync(target, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile()).length;
  if (found !== files) throw new Error(`${method} restored ${found} files instead of ${files} into ${target}`);
}

async function tarInto(tarball: string, target: string): Promise<void> {
  mkdirSync(target);
  await exec("tar", ["-xf", tarball, "-C", target]);
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = now();
  await fn();
  return now() - start;
}

function exec(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, ...options.env };
    for (const name of Object.keys(env)) if (name.startsWith("CACHET_") && !(options.env && name in options.env)) delete env[name];
    delete env.NODE_OPTIONS;
    const child = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"], cwd: options.cwd, env });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`${command} ${args.join(" ")}: exit ${code}\n${stderr}`))));
  });
}
