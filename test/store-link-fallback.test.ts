// Link-out across filesystems: hard links fail with EXDEV, so files are copied, with one warning per process that
// says why and how to silence it. Runs in a child process so "once per process" is observable.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runToEnd } from "./workers/child.js";

const otherFs = "/dev/shm";
const differentDevice = (() => {
  try {
    return statSync(otherFs).dev !== statSync(tmpdir()).dev;
  } catch {
    return false;
  }
})();

test("a read-only source restored onto another filesystem is copied, with one warning per process", { skip: differentDevice ? false : `no second filesystem (${otherFs}) on this machine` }, async () => {
  const cacheDir = mkdtempSync(join(tmpdir(), "cachet-fallback-"));
  const targets = mkdtempSync(join(otherFs, "cachet-fallback-"));
  const source = mkdtempSync(join(tmpdir(), "cachet-fallback-src-"));
  try {
    const script = `
      import { writeFileSync, statSync } from "node:fs";
      import { join } from "node:path";
      import { openStore } from ${JSON.stringify(new URL("../src/index.ts", import.meta.url).pathname)};
      const warnings = [];
      const store = await openStore({ cacheDir: ${JSON.stringify(cacheDir)}, onWarning: (w) => warnings.push(w) });
      const source = ${JSON.stringify(source)};
      writeFileSync(join(source, "a.txt"), "alpha");
      writeFileSync(join(source, "b.txt"), "beta");
      await store.putTree("t", "k", source);
      const first = await store.linkTree("t", "k", join(${JSON.stringify(targets)}, "one"), { purpose: "source" });
      const second = await store.linkTree("t", "k", join(${JSON.stringify(targets)}, "two"), { purpose: "source" });
      await store.close();
      console.log(JSON.stringify({ modes: [first.mode, second.mode], warnings, nlink: statSync(join(${JSON.stringify(targets)}, "one", "a.txt")).nlink }));
    `;
    const result = await runToEnd(["--import", "tsx", "--input-type=module", "-e", script], {}, { cwd: new URL("..", import.meta.url).pathname });
    assert.equal(result.code, 0, result.stderr);
    const out = JSON.parse(result.stdout) as { modes: string[]; warnings: Array<{ code: string; message: string }>; nlink: number };
    assert.deepEqual(out.modes, ["copy", "copy"]);
    assert.equal(out.nlink, 1);
    assert.equal(out.warnings.length, 1, "one warning per process");
    assert.equal(out.warnings[0]!.code, "CACHET_LINK_FALLBACK");
    assert.match(out.warnings[0]!.message, /different filesystems/);
    assert.match(out.warnings[0]!.message, /CACHET_LINK_MODE=copy/);
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
    rmSync(targets, { recursive: true, force: true });
    rmSync(source, { recursive: true, force: true });
  }
});
