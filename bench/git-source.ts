// Suite "git-source": gitSource of a commit already in the cache (the offline path: no network, no git command),
// against one bare `git rev-parse` spawn of the same commit in the same repository database, in the same run.
// The goal of the path is ≤ 20 ms; the ratio says what it costs against the cheapest thing git itself can do.
// Also shown: an offline branch (resolved from the database by one git command, then the same checkout).
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gitSource, openStore, readSettings } from "../src/index.js";
import { gitDatabaseDir } from "../src/store/git-databases.js";
import { median, now, percentile, scratchDir, type BenchContext } from "./measure.js";
import { fmt, info, judged, type Figure } from "./report.js";

const SUITE = "git-source";

export async function run(context: BenchContext): Promise<Figure[]> {
  const reps = context.quick ? 40 : 400;
  const files = 300;
  const scratch = scratchDir(SUITE);
  const repository = join(scratch.path, "library");
  const commit = makeRepository(repository, files);
  const store = await openStore({ cacheDir: join(scratch.path, "cache"), env: {} });
  const offline = readSettings({ env: { CACHET_OFFLINE: "1" } });
  try {
    const first = await gitSource(repository, { store, ref: "main", settings: readSettings({ env: {} }) });
    if (first.commit !== commit) throw new Error(`resolved ${first.commit}, expected ${commit}`);
    const database = gitDatabaseDir(store.root, (store.components("library", commit) as { gitDatabase: string }).gitDatabase);
    const times = { known: [] as number[], branch: [] as number[], revParse: [] as number[] };
    context.log(`${SUITE}: ${reps} repetitions over a ${files}-file checkout`);
    for (let rep = 0; rep < reps; rep++) {
      let start = now();
      const known = await gitSource(repository, { store, ref: commit, settings: offline });
      times.known.push(now() - start);
      if (known.fetched || !known.fromCache) throw new Error("the known commit was not served from the cache");
      start = now();
      await gitSource(repository, { store, ref: "main", settings: offline });
      times.branch.push(now() - start);
      start = now();
      await revParse(database, commit);
      times.revParse.push(now() - start);
    }
    const p50 = median(times.known);
    const p99 = percentile(times.known, 99);
    const git50 = median(times.revParse);
    return [
      judged(
        SUITE,
        `known commit (offline path, ${files} files) vs one git rev-parse spawn`,
        `gitSource p50 ${fmt.ms(p50)} p99 ${fmt.ms(p99)} · git rev-parse p50 ${fmt.ms(git50)} p99 ${fmt.ms(percentile(times.revParse, 99))}`,
        p50 / git50,
        "×",
        { atMost: 1 },
        2,
      ),
      judged(SUITE, "known commit, p99 against the 20 ms goal", `p50 ${fmt.ms(p50)}, p99 ${fmt.ms(p99)} over ${reps} calls`, p99, " ms", { atMost: 20 }, 2),
      info(
        SUITE,
        "offline branch (one git rev-parse, then the checkout)",
        `p50 ${fmt.ms(median(times.branch))} p99 ${fmt.ms(percentile(times.branch, 99))}`,
        `${(median(times.branch) / git50).toFixed(2)}×`,
      ),
    ];
  } finally {
    await store.close();
    scratch.cleanup();
  }
}

/** A repository of `files` small files in 10 directories on branch `main`; returns its commit. */
function makeRepository(path: string, files: number): string {
  for (let i = 0; i < files; i++) {
    const dir = join(path, `dir${i % 10}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `file${i}.ts`), `export const value${i} = ${i};\n`);
  }
  const git = (...args: string[]) =>
    execFileSync("git", ["-c", "user.name=bench", "-c", "user.email=bench@example.invalid", "-C", path, ...args], { encoding: "utf8" }).trim();
  git("init", "--quiet", "--initial-branch=main");
  git("add", "--all");
  git("commit", "--quiet", "-m", "bench");
  return git("rev-parse", "HEAD");
}

/** One `git rev-parse --verify <commit>^{commit}` in the database, as a child process, awaited. */
function revParse(gitDir: string, commit: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("git", [`--git-dir=${gitDir}`, "rev-parse", "--verify", "--quiet", `${commit}^{commit}`], { stdio: "ignore" });
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`git rev-parse exited with ${code}`))));
  });
}
