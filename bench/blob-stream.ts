// Suite "blob-stream": a 256 MiB blob written with putStream from 1 MiB chunks (hashed as it goes) and read back
// with getStream (verified as it goes), against a plain fs write and read of the same bytes with the same
// chunking on the same filesystem. Reads are measured warm (file in the page cache, as right after writing)
// and cold (evicted from the page cache first with `dd iflag=nocache`, so they come from the disk).
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { open, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { openStore } from "../src/store/index.js";
import { median, now, scratchDir, type BenchContext } from "./measure.js";
import { fmt, info, judged, type Figure } from "./report.js";

const SUITE = "blob-stream";
const CHUNK = 1 << 20;

export async function run(context: BenchContext): Promise<Figure[]> {
  const size = (context.quick ? 32 : 256) * CHUNK;
  const reps = context.quick ? 2 : 5; // page-cache write speed swings 1–4 GB/s from one moment to the next here
  const scratch = scratchDir(SUITE);
  const store = await openStore({ cacheDir: join(scratch.path, "cache") });
  const plainFile = (rep: number) => join(scratch.path, `plain-${rep}.bin`);
  const pool = Array.from({ length: 8 }, () => randomBytes(CHUNK));
  // The same bytes for both sides of a repetition; a different first chunk per repetition, so each put is new content.
  function* chunks(rep: number): Generator<Buffer> {
    const first = Buffer.from(pool[0]!);
    first.writeUInt32LE(rep, 0);
    yield first;
    for (let i = 1; i < size / CHUNK; i++) yield pool[i % pool.length]!;
  }
  const times = { putOurs: [] as number[], putPlain: [] as number[], syncOurs: [] as number[], syncPlain: [] as number[], warmOurs: [] as number[], warmPlain: [] as number[], coldOurs: [] as number[], coldPlain: [] as number[] };
  const canEvict = evictionWorks(scratch.path);
  try {
    for (let rep = 0; rep < reps; rep++) {
      context.log(`${SUITE}: repetition ${rep + 1}/${reps}`);
      // put: plain first on odd repetitions, cachet first on even ones
      // Each write starts with no dirty pages pending, so one side does not pay for the other's writeback.
      const putPlain = async () => {
        execFileSync("sync");
        const start = now();
        const handle = await open(plainFile(rep), "wx");
        try {
          for (const chunk of chunks(rep)) await writeFully(handle, chunk);
        } finally {
          await handle.close();
        }
        times.putPlain.push(now() - start);
        times.syncPlain.push(await timeFsync(plainFile(rep)));
      };
      const putOurs = async () => {
        execFileSync("sync");
        const start = now();
        const entry = await store.putStream("bench", `blob-${rep}`, chunks(rep));
        times.putOurs.push(now() - start);
        times.syncOurs.push(await timeFsync(store.layout.blob(entry.digest)));
      };
      if (rep % 2) await putPlain(), await putOurs();
      else await putOurs(), await putPlain();

      const blobPath = store.layout.blob(store.info("bench", `blob-${rep}`)!.digest);
      const readPlain = () => consume(createReadStream(plainFile(rep), { highWaterMark: CHUNK }), size);
      const readOurs = async () => consume((await store.getStream("bench", `blob-${rep}`))!, size);
      // warm: both files are in the page cache, having just been written
      times.warmOurs.push(await readOurs());
      times.warmPlain.push(await readPlain());
      if (canEvict) {
        evict(blobPath);
        evict(plainFile(rep));
        times.coldPlain.push(await readPlain());
        times.coldOurs.push(await readOurs());
      }
      await rm(plainFile(rep));
      await store.delete("bench", `blob-${rep}`);
      await rm(blobPath);
    }
  } finally {
    await store.close();
    scratch.cleanup();
  }
  const mib = size / CHUNK;
  const figure = (label: string, ours: number[], plain: number[]) => {
    const a = median(ours);
    const b = median(plain);
    return judged(SUITE, label, `cachet ${fmt.mbps(size, a)} · plain fs ${fmt.mbps(size, b)}`, (100 * b) / a, "%", { atLeast: 95 }, 0);
  };
  const plus = (a: number[], b: number[]) => a.map((value, i) => value + b[i]!);
  const figures = [
    figure(`put ${mib} MiB, putStream (sha256) vs fs write`, times.putOurs, times.putPlain),
    figure(`put ${mib} MiB + fsync (to disk), same`, plus(times.putOurs, times.syncOurs), plus(times.putPlain, times.syncPlain)),
    figure(`get ${mib} MiB, from disk, getStream (verified) vs fs read`, times.coldOurs, times.coldPlain),
    figure(`get ${mib} MiB, page cache, getStream (verified) vs fs read`, times.warmOurs, times.warmPlain),
  ];
  if (!canEvict) figures.splice(1, 1, info(SUITE, `get ${mib} MiB from disk`, "skipped: cannot evict a file from the page cache here (needs GNU dd)"));
  return figures;
}

async function writeFully(handle: import("node:fs/promises").FileHandle, chunk: Uint8Array): Promise<void> {
  for (let offset = 0; offset < chunk.byteLength; ) offset += (await handle.write(chunk, offset)).bytesWritten;
}

/** How long an fsync of the file takes (its pages written back to the disk). */
async function timeFsync(path: string): Promise<number> {
  const handle = await open(path, "r");
  try {
    const start = now();
    await handle.sync();
    return now() - start;
  } finally {
    await handle.close();
  }
}

async function consume(stream: Readable, expected: number): Promise<number> {
  const start = now();
  let bytes = 0;
  for await (const chunk of stream) bytes += (chunk as Buffer).length;
  const elapsed = now() - start;
  if (bytes !== expected) throw new Error(`read ${bytes} bytes, expected ${expected}`);
  return elapsed;
}

/** Writes the file's dirty pages back, then drops it from the page cache (posix_fadvise DONTNEED via GNU dd). */
function evict(path: string): void {
  execFileSync("sync", [path]);
  execFileSync("dd", [`if=${path}`, "iflag=nocache", "count=0", "status=none"]);
}

function evictionWorks(dir: string): boolean {
  try {
    execFileSync("dd", ["if=/dev/null", "iflag=nocache", "count=0", "status=none"], { cwd: dir, stdio: "pipe" });
    execFileSync("sync", ["--help"], { stdio: "pipe" });
    return true;
  } catch {
    return false;
  }
}
