// Suite "link-out": materializing a cached 10 000-file tree into fresh target directories with Store.linkTree
// (reflink clone, else hard link, else copy), against `fs.cp` (recursive) of the same tree and GNU `tar -xf`
// of an archive of it prepared beforehand (only the extraction is timed). All on one filesystem.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { cp, rm } from "node:fs/promises";
import { join } from "node:path";
import { openStore, type LinkTally } from "../src/store/index.js";
import { median, now, scratchDir, type BenchContext } from "./measure.js";
import { fmt, info, judged, type Figure } from "./report.js";

const SUITE = "link-out";

export async function run(context: BenchContext): Promise<Figure[]> {
  const files = context.quick ? 2000 : 10_000;
  const reps = context.quick ? 2 : 5;
  const scratch = scratchDir(SUITE);
  const source = join(scratch.path, "source");
  const archive = join(scratch.path, "tree.tar");
  const store = await openStore({ cacheDir: join(scratch.path, "cache") });
  try {
    context.log(`${SUITE}: writing a ${files}-file tree`);
    const bytes = writeTree(source, files);
    await exec("tar", ["-cf", archive, "-C", source, "."]);
    const putMs = await timed(() => store.putTree("bench", "tree", source));

    const times = { link: [] as number[], cp: [] as number[], tar: [] as number[] };
    let tally: LinkTally | undefined;
    const methods: Record<keyof typeof times, (target: string) => Promise<unknown>> = {
      link: async (target) => (tally = await store.linkTree("bench", "tree", target)),
      cp: (target) => cp(source, target, { recursive: true }),
      tar: (target) => exec("tar", ["-xf", archive, "-C", target]),
    };
    const order = Object.keys(methods) as Array<keyof typeof times>;
    for (let rep = 0; rep < reps; rep++) {
      context.log(`${SUITE}: repetition ${rep + 1}/${reps}`);
      for (const method of [...order.slice(rep % 3), ...order.slice(0, rep % 3)]) {
        const target = join(scratch.path, `out-${method}-${rep}`);
        if (method === "tar") mkdirSync(target); // tar extracts into an existing directory
        times[method].push(await timed(() => methods[method](target)));
        await rm(target, { recursive: true, force: true });
      }
    }
    const link = median(times.link);
    const detail = (other: number, name: string) => `linkTree ${fmt.ms(link)} (${tally?.mode}) · ${name} ${fmt.ms(other)}`;
    return [
      info(SUITE, `tree: ${files} files in ${Math.ceil(files / 100) + 10} dirs, ${(bytes / 1048576).toFixed(1)} MiB`, `putTree once: ${fmt.ms(putMs)}`),
      judged(SUITE, `link-out of ${files} files vs tar -xf`, detail(median(times.tar), "tar -xf"), median(times.tar) / link, "×", { atLeast: 1.5 }),
      judged(SUITE, `link-out of ${files} files vs fs.cp`, detail(median(times.cp), "fs.cp"), median(times.cp) / link, "×", { atLeast: 8 }),
    ];
  } finally {
    await store.close();
    scratch.cleanup();
  }
}

/** A tree like an installed package set: 10 top folders × 10 sub-folders × files of 100 B – 16 KiB. */
function writeTree(root: string, files: number): number {
  let bytes = 0;
  const perDir = Math.ceil(files / 100);
  for (let i = 0; i < files; i++) {
    const dir = join(root, `pkg-${Math.floor(i / (perDir * 10)) % 10}`, `mod-${Math.floor(i / perDir) % 10}`);
    if (i % perDir === 0) mkdirSync(dir, { recursive: true });
    const size = Math.round(100 * Math.pow(160, Math.random()));
    writeFileSync(join(dir, `file-${i}.js`), randomBytes(size));
    bytes += size;
  }
  return bytes;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = now();
  await fn();
  return now() - start;
}

function exec(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`${command} ${args.join(" ")}: exit ${code}\n${stderr}`))));
  });
}
