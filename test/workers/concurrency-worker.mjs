// Child process of store-concurrency.test.ts: one of several processes putting and getting the same and
// different keys of one cache at once. Runs on the built store (dist/).
//
//   node concurrency-worker.mjs <cacheDir> <resultFile> <writerId> <writers> <ops>
//
// Prints "ready" once the store is open and waits for "go" on stdin, so every worker starts together. Keys:
// `s0…s15` are shared by all workers; `w<id>-0…7` are written only by worker <id> but read by all. Every value
// is self-describing (name, key, writer, sequence number, checksum). The worker checks each read on the spot
// (whole, right key; for its own keys exactly its latest write) and writes everything it wrote and read to
// <resultFile> as JSON, for the test to check reads against all workers' writes.
import { writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { createInterface } from "node:readline";
import { openStore } from "../../dist/store/index.js";
import { decodeValue, encodeValue } from "./self-describing.mjs";

const [cacheDir, resultFile, idArg, writersArg, opsArg] = process.argv.slice(2);
const id = Number(idArg);
const writers = Number(writersArg);
const ops = Number(opsArg);
const NAME = "conc";

const problems = [];
const store = await openStore({
  cacheDir,
  onWarning: (warning) => problems.push(`warning ${warning.code}: ${warning.message}`),
});
process.stdout.write("ready\n");
await new Promise((resolve) => {
  const lines = createInterface({ input: process.stdin });
  lines.on("line", (line) => {
    if (line === "go") {
      lines.close();
      process.stdin.destroy(); // an open stdin would keep this process alive after its work
      resolve();
    }
  });
});

const pick = (n) => Math.floor(Math.random() * n);
const sharedKey = () => `s${pick(16)}`;
const ownKey = (writer) => `w${writer}-${pick(8)}`;

const writes = []; // [key, seq]
const reads = []; // [key, writer, seq]
const lastOwn = new Map(); // own key -> seq of this worker's latest write to it

for (let seq = 1; seq <= ops; seq++) {
  const roll = Math.random();
  if (roll < 0.4) {
    const key = Math.random() < 0.5 ? sharedKey() : ownKey(id);
    const size = Math.random() < 0.1 ? 17 * 1024 + pick(24 * 1024) : pick(2000);
    await store.put(NAME, key, encodeValue({ name: NAME, key, writer: id, seq }, randomBytes(size)));
    writes.push([key, seq]);
    if (key.startsWith(`w${id}-`)) lastOwn.set(key, seq);
    continue;
  }
  const which = Math.random();
  const key = which < 0.4 ? sharedKey() : which < 0.7 ? ownKey(id) : ownKey(pick(writers));
  let data;
  if (roll < 0.9) {
    data = await store.get(NAME, key);
  } else {
    const entry = await store.getEntry(NAME, key);
    if (entry !== undefined && entry.size !== entry.data.byteLength) {
      problems.push(`${key}: entry size ${entry.size} but ${entry.data.byteLength} bytes`);
    }
    data = entry?.data;
  }
  if (data === undefined) {
    problems.push(`${key}: miss (every key was written before the workers started, and nothing deletes)`);
    continue;
  }
  const decoded = decodeValue(data);
  if (!decoded.ok) {
    problems.push(`${key}: bad value (${decoded.reason})`);
    continue;
  }
  const { meta } = decoded;
  if (meta.name !== NAME || meta.key !== key) problems.push(`${key}: holds the value of ${meta.name}/${meta.key}`);
  if (key.startsWith(`w${id}-`)) {
    const expected = lastOwn.get(key);
    const got = meta.writer === id ? meta.seq : undefined;
    if (expected !== undefined ? got !== expected : meta.writer !== -1) {
      problems.push(`${key}: read writer ${meta.writer} #${meta.seq}, but this worker last wrote #${expected ?? "(seed)"}`);
    }
  }
  reads.push([key, meta.writer, meta.seq]);
}

await store.close();
writeFileSync(resultFile, JSON.stringify({ id, writes, reads, problems }));
process.stdout.write("done\n");
