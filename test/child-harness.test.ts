// The child-process harness every process test relies on (workers/child.ts): each wait is bounded and fails with
// the child's output, and no child outlives the test file that started it, even one a test forgot to kill.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "./helpers.js";
import { runToEnd, startNode, startProcess } from "./workers/child.js";

/** True while `pid` names a process that has not been reaped (a zombie counts as gone). */
function alive(pid: number): boolean {
  const stat = `/proc/${pid}/stat`;
  if (!existsSync(stat)) return false;
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(stat, "utf8"));
  } catch {
    return false;
  }
}

/** Whether `pid` is gone within `ms` (a SIGKILL is delivered at once, but the process ends when next scheduled). */
async function goneWithin(pid: number, ms: number): Promise<boolean> {
  for (const deadline = performance.now() + ms; alive(pid) && performance.now() < deadline; ) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return !alive(pid);
}

const FOREVER = "process.stderr.write('stuck\\n'); setInterval(() => {}, 1 << 30)";

describe("waits on a child are bounded", () => {
  test("waitFor fails after its timeout, naming the pattern and showing the child's stderr", async () => {
    const child = startNode(["-e", FOREVER]);
    try {
      await child.waitFor("stuck", "stderr");
      await assert.rejects(child.waitFor("never printed", { timeoutMs: 200 }), (error: Error) => {
        assert.match(error.message, /timed out after 200 ms: node -e .* did not print never printed on stdout/);
        assert.match(error.message, /--- stderr ---\nstuck\n/);
        return true;
      });
      assert.equal(child.exitedYet(), false, "a timed-out wait leaves the child to the test's finally");
    } finally {
      assert.equal((await child.kill9()).signal, "SIGKILL");
    }
  });

  test("waitForExit fails after its timeout with the child's output; runToEnd also kills the child", async () => {
    const child = startNode(["-e", FOREVER]);
    try {
      // Started and talking first: on a loaded machine node alone can take longer than the timeout to start.
      await child.waitFor("stuck", "stderr");
      await assert.rejects(child.waitForExit({ timeoutMs: 200 }), /timed out after 200 ms waiting for node -e .* to exit[^]*stuck/);
    } finally {
      await child.kill9();
    }
    let pid = 0;
    await assert.rejects(
      // Long enough for node to start and print its pid on a loaded machine (500 ms was not, at times).
      runToEnd(["-e", `console.log(process.pid); ${FOREVER}`], {}, { timeoutMs: 5000 }),
      (error: Error) => {
        pid = Number(/--- stdout of [^\n]*\n(\d+)/.exec(error.message)?.[1]);
        return /timed out after 5000 ms/.test(error.message);
      },
    );
    assert.ok(pid > 0);
    assert.equal(alive(pid), false, "runToEnd left its child running after the timeout");
  });

  test("a waited-for line from a child that exits first fails at once with its exit status", async () => {
    const child = startNode(["-e", "console.error('bye'); process.exit(4)"]);
    await assert.rejects(child.waitFor("ready"), /exited \(code 4, signal null\) and did not print ready on stdout[^]*bye/);
  });

  test("a program that cannot be started is an exit, not a hang or an uncaught error", async () => {
    const child = startProcess("/nonexistent/cachet-no-such-program", []);
    const exit = await child.waitForExit({ timeoutMs: 5000 });
    assert.deepEqual(exit, { code: null, signal: null });
    assert.match(child.stderr(), /could not start .*ENOENT/);
  });

  test("a child outliving its lifetime is killed by the watchdog", async () => {
    const child = startNode(["-e", FOREVER], {}, { lifetimeMs: 300 });
    const exit = await child.waitForExit();
    assert.equal(exit.signal, "SIGKILL");
    assert.match(child.stderr(), /SIGKILLed .* after its 300 ms lifetime/);
  });
});

describe("no child outlives its test file", () => {
  const dir = tempDir("cachet-harness-");
  after(dir.cleanup);

  test("a child a test forgot to kill is killed when its file's tests end, and the file's process exits", async () => {
    const pidFile = join(dir.path, "pid");
    const fixture = new URL("./fixtures/harness/leaky.test.ts", import.meta.url).pathname;
    // Without the harness's root `after` hook this run would never end (the child keeps its pipes open).
    const run = await runToEnd(["--import", "tsx", "--test", "--test-reporter=spec", fixture], { LEAKY_PID_FILE: pidFile }, {
      cwd: new URL("..", import.meta.url).pathname,
    });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const pid = Number(readFileSync(pidFile, "utf8"));
    assert.ok(pid > 0);
    assert.equal(alive(pid), false, `the leaked child ${pid} is still running`);
  });

  test("a test file SIGTERMed while its test hangs (as the runner does past --test-timeout) takes its children along", async () => {
    const fixture = new URL("./fixtures/harness/overrun.test.ts", import.meta.url).pathname;
    // Run the file as a plain script, so this test holds the process the runner would signal.
    const file = startNode(["--import", "tsx", fixture], {}, { cwd: new URL("..", import.meta.url).pathname });
    try {
      await file.waitFor(/child (\d+)/);
      const pid = Number(/child (\d+)/.exec(file.stdout())![1]);
      assert.equal(alive(pid), true);
      file.process.kill("SIGTERM");
      assert.equal((await file.waitForExit()).signal, "SIGTERM", "the file still dies of the signal");
      // The grandchild is not ours to reap: once killed it is a zombie until init collects it, which alive() allows.
      assert.ok(await goneWithin(pid, 5000), `child ${pid} outlived the SIGTERMed test file`);
    } finally {
      await file.kill9();
    }
  });
});
