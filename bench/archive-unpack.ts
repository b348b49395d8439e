// Suite "archive-unpack": unpacking a ~10 000-file .tar.gz with unpackArchive against GNU `tar -xzf` of the same
// archive, and the same tree as a .zip against Info-ZIP `unzip` (skipped, saying why, when it is not installed), in
// the same run and on the same disk. Also the memory an unpack takes: peak RSS growth while unpacking a .tar.gz
// holding one large incompressible file, which streams through (constant memory).
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, mkdirSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import yazl from "yazl";
import { unpackArchive } from "../src/index.js";
import { median, now, scratchDir, type BenchContext } from "./measure.js";
import { fmt, info, judged, type Figure } from "./report.js";
import { writeTree } from "./trees.js";

const SUITE = "archive-unpack";

export async function run(context: BenchContext): Promise<Figure[]> {
  const files = context.quick ? 2000 : 10_000;
  const reps = context.quick ? 2 : 6;
  const bigMiB = context.quick ? 64 : 256;
  const scratch = scratchDir(SUITE);
  try {
    const source = join(scratch.path, "source");
    context.log(`${SUITE}: writing a ${files}-file tree and archiving it`);
    const bytes = writeTree(join(source, "pkg"), files, { text: true, someExecutable: true });
    const tgz = join(scratch.path, "tree.tar.gz");
    await exec("tar", ["-czf", tgz, "-C", source, "pkg"]);
    const zip = join(scratch.path, "tree.zip");
    await writeZipOf(source, "pkg", zip);
    const unzipMissing = spawnSync("unzip", ["-v"], { stdio: "ignore" }).error !== undefined;

    const times = { cachetTgz: [] as number[], gnuTar: [] as number[], cachetZip: [] as number[], unzip: [] as number[] };
    const methods: Record<keyof typeof times, ((target: string) => Promise<unknown>) | undefined> = {
      cachetTgz: (target) => unpackArchive(tgz, target, { archiveName: "tree.tar.gz" }),
      gnuTar: async (target) => {
        mkdirSync(target);
        await exec("tar", ["-xzf", tgz, "-C", target]);
      },
      cachetZip: (target) => unpackArchive(zip, target, { archiveName: "tree.zip" }),
      unzip: unzipMissing ? undefined : (target) => exec("unzip", ["-q", zip, "-d", target]),
    };
    // As in link-out: every method runs once per repetition (each first in turn), then all outputs are removed
    // and synced, so no method pays for another's removal; the fastest repetition is judged.
    const order = (Object.keys(methods) as Array<keyof typeof times>).filter((method) => methods[method]);
    for (let rep = 0; rep < reps; rep++) {
      context.log(`${SUITE}: repetition ${rep + 1}/${reps}`);
      const shift = rep % order.length;
      const targets: string[] = [];
      for (const method of [...order.slice(shift), ...order.slice(0, shift)]) {
        const target = join(scratch.path, `out-${method}-${rep}`);
        targets.push(target);
        const start = now();
        await methods[method]!(target);
        times[method].push(now() - start);
      }
      for (const target of targets) await rm(target, { recursive: true, force: true });
      await exec("sync", []);
    }
    const best = (method: keyof typeof times) => Math.min(...times[method]);
    const shown = (label: string, method: keyof typeof times) => `${label} ${fmt.ms(best(method))} (median ${fmt.ms(median(times[method]))})`;

    context.log(`${SUITE}: peak memory while unpacking a ${bigMiB} MiB file`);
    const rss = await peakRssGrowth(scratch.path, bigMiB);

    return [
      info(SUITE, `tree: ${files} files in ${10 + Math.min(100, files)} dirs, ${(bytes / 1048576).toFixed(1)} MiB`, `best of ${reps} below`),
      judged(SUITE, `unpack ${files}-file .tar.gz vs GNU tar -xzf`, `${shown("unpackArchive", "cachetTgz")} · ${shown("tar -xzf", "gnuTar")}`, best("cachetTgz") / best("gnuTar"), "×", { atMost: 2 }, 2),
      unzipMissing
        ? info(SUITE, `unpack ${files}-file .zip vs unzip`, `skipped: unzip is not installed (unpackArchive alone: ${fmt.ms(best("cachetZip"))})`)
        : judged(SUITE, `unpack ${files}-file .zip vs unzip`, `${shown("unpackArchive", "cachetZip")} · ${shown("unzip -q", "unzip")}`, best("cachetZip") / best("unzip"), "×", { atMost: 2 }, 2),
      judged(SUITE, `peak RSS growth, unpacking one ${bigMiB} MiB file`, `streamed entry by entry; RSS before ${Math.round(rss.before / 1048576)} MiB`, rss.growth / 1048576, " MiB", { atMost: 64 }, 0),
    ];
  } finally {
    scratch.cleanup();
  }
}


/** Zips `dir` (under `base`) with yazl, keeping modes, as a release zip is made. */
async function writeZipOf(base: string, dir: string, target: string): Promise<void> {
  const zip = new yazl.ZipFile();
  const { readdirSync } = await import("node:fs");
  const walk = (relative: string) => {
    for (const entry of readdirSync(join(base, relative), { withFileTypes: true })) {
      const path = `${relative}/${entry.name}`;
      if (entry.isDirectory()) {
        zip.addEmptyDirectory(path);
        walk(path);
      } else zip.addFile(join(base, path), path);
    }
  };
  walk(dir);
  zip.end();
  await pipeline(zip.outputStream as NodeJS.ReadableStream, createWriteStream(target));
}

/** Peak RSS growth (sampled every 5 ms) while unpacking a .tar.gz of one incompressible file of `mib` MiB. */
async function peakRssGrowth(scratch: string, mib: number): Promise<{ before: number; growth: number }> {
  const dir = join(scratch, "big");
  mkdirSync(dir);
  const file = join(dir, "blob.bin");
  const out = createWriteStream(file);
  for (let i = 0; i < mib; i++) if (!out.write(randomBytes(1024 * 1024))) await new Promise<void>((resolve) => out.once("drain", () => resolve()));
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
  const archive = join(scratch, "big.tar.gz");
  await exec("tar", ["-czf", archive, "-C", dir, "blob.bin"]);
  await rm(file);
  (globalThis as { gc?: () => void }).gc?.();
  const before = process.memoryUsage.rss();
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 5);
  try {
    await unpackArchive(archive, join(scratch, "big-out"), { archiveName: "big.tar.gz" });
  } finally {
    clearInterval(sampler);
  }
  peak = Math.max(peak, process.memoryUsage.rss());
  return { before, growth: peak - before };
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
