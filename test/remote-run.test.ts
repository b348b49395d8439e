// `cachet run` with a shared tier configured: what one machine (cache root, checkout folder) ran is replayed on
// another, outputs restored and the command not run; the run's key does not depend on where the checkout is.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { join } from "node:path";
import { runCli } from "./helpers.js";
import { postgresSkipReason, suiteDatabase, sql } from "./remote-servers.js";

const BUILD_SCRIPT = `
const fs = require("node:fs");
fs.appendFileSync("runs.log", "run\\n");
fs.mkdirSync("out/sub", { recursive: true });
fs.writeFileSync("out/sub/b.txt", "beta");
fs.writeFileSync("report.txt", "report");
process.stdout.write("built\\n");
process.stderr.write("note\\n");
`;

describe("cachet run through the shared tier", { skip: postgresSkipReason }, () => {
  const db = suiteDatabase("cachet-remote-run-");
  const { dirs } = db;

  function machine(label: string): { dir: string; cache: string } {
    const dir = join(dirs.path, label, "checkout");
    mkdirSync(join(dir, "src"), { recursive: true });
    writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "shared-pkg", version: "1.0.0" }));
    writeFileSync(join(dir, "src", "index.js"), "export {};\n");
    writeFileSync(join(dir, "build.cjs"), BUILD_SCRIPT);
    return { dir, cache: join(dirs.path, label, "cache") };
  }
  const run = (m: { dir: string; cache: string }, env: NodeJS.ProcessEnv) =>
    runCli(["--cache-dir", m.cache, "run", "--out", "out", "--out", "report.txt", "--", process.execPath, "build.cjs"], env, { cwd: m.dir });

  test("a run made on one machine is replayed on another: same output, outputs restored, the command not run", async () => {
    const first = machine("machine-1");
    const made = await run(first, { CACHET_REMOTE: db.url });
    assert.equal(made.code, 0, made.stderr);
    assert.deepEqual([made.stdout, made.stderr], ["built\n", "note\n"]);
    assert.equal((await sql(db.url, "SELECT name FROM cachet_entries WHERE name = 'shared-pkg:node'")).length, 4, "the record, its log and its two outputs are shared");

    const second = machine("machine-2");
    const replayed = await run(second, { CACHET_REMOTE: db.url });
    assert.equal(replayed.code, 0, replayed.stderr);
    assert.deepEqual([replayed.stdout, replayed.stderr], ["built\n", "note\n"]);
    assert.equal(existsSync(join(second.dir, "runs.log")), false, "the command did not run on the second machine");
    assert.equal(readFileSync(join(second.dir, "out", "sub", "b.txt"), "utf8"), "beta");
    assert.equal(readFileSync(join(second.dir, "report.txt"), "utf8"), "report");

    // Without the shared tier a third machine runs it itself.
    const third = machine("machine-3");
    const alone = await run(third, {});
    assert.equal(alone.code, 0, alone.stderr);
    assert.equal(readFileSync(join(third.dir, "runs.log"), "utf8"), "run\n");
  });
  test("a remote output that is damaged, or whose entry is gone, is a miss: the command runs, nothing wrong is restored", async () => {
    const first = machine("damage-1");
    const made = await runCli(["--cache-dir", first.cache, "run", "--name", "damaged", "--out", "out", "--out", "report.txt", "--", process.execPath, "build.cjs"], { CACHET_REMOTE: db.url }, { cwd: first.dir });
    assert.equal(made.code, 0, made.stderr);
    // report.txt's bytes changed in the shared blob (same length): its digest no longer matches.
    const [row] = await sql<{ digest: string }>(db.url, "SELECT digest FROM cachet_entries WHERE name = 'damaged' AND key LIKE '%.2'");
    await sql(db.url, "UPDATE cachet_blob_chunks SET data = 'REPORT'::bytea WHERE blob_id = (SELECT id FROM cachet_blobs WHERE digest = $1)", [row!.digest]);
    const second = machine("damage-2");
    const rerun = await runCli(["--cache-dir", second.cache, "run", "--name", "damaged", "--out", "out", "--out", "report.txt", "--", process.execPath, "build.cjs"], { CACHET_REMOTE: db.url }, { cwd: second.dir });
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.equal(readFileSync(join(second.dir, "runs.log"), "utf8"), "run\n", "the command ran");
    assert.equal(readFileSync(join(second.dir, "report.txt"), "utf8"), "report");

    // The record is shared but its output tree's entry is not: a miss too.
    await sql(db.url, "DELETE FROM cachet_entries WHERE name = 'damaged' AND key LIKE '%.1'");
    const third = machine("damage-3");
    const again = await runCli(["--cache-dir", third.cache, "run", "--name", "damaged", "--out", "out", "--out", "report.txt", "--", process.execPath, "build.cjs"], { CACHET_REMOTE: db.url }, { cwd: third.dir });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(readFileSync(join(third.dir, "runs.log"), "utf8"), "run\n", "the command ran");
    assert.equal(readFileSync(join(third.dir, "out", "sub", "b.txt"), "utf8"), "beta");
  });
  test("a remote that accepts and never answers: one time limit of waiting in all, one warning, the command runs", async () => {
    const sockets: Socket[] = [];
    const hanging = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => hanging.listen(0, "127.0.0.1", resolve));
    const port = (hanging.address() as { port: number }).port;
    try {
      const alone = machine("hanging");
      const result = await run(alone, { CACHET_REMOTE: `postgres://postgres@127.0.0.1:${port}/none` });
      assert.equal(result.code, 0, result.stderr);
      assert.equal(readFileSync(join(alone.dir, "runs.log"), "utf8"), "run\n");
      assert.equal(result.stderr.match(/warning/g)?.length, 1, result.stderr);
      // The record is asked for, the lease taken and the record asked for again: after the first call ran out of
      // its time limit the others skip the remote instead of each waiting it out again.
      assert.equal(sockets.length, 1, `connections to the hanging server: ${sockets.length}`);
    } finally {
      for (const socket of sockets) socket.destroy();
      hanging.close();
    }
  });
});
