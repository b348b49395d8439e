// `pushToRemote` (what `cachet cache push` runs): the machine-local memo is never sent, whoever calls it; and the
// listing is a snapshot, so an entry removed or replaced (by another kind, or by other bytes of another format)
// after it was listed is skipped, never sent with the listed entry's metadata, and never ends the push with an error.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { computeCacheKey, FILE_DIGEST_MEMO_NAME, openConfiguredStore, openRemoteStore, openStore, pushToRemote, type RemoteStore, type Store } from "../src/index.js";
import { postgresSkipReason, suiteDatabase } from "./remote-servers.js";

describe("pushToRemote: what it sends, and what it never does", { skip: postgresSkipReason }, () => {
  const db = suiteDatabase("cachet-remote-push-");
  const { dirs } = db;

  /** The remote, with `change` run when the push first asks it about `key` (after listing, before reading). */
  function changingBefore(remote: RemoteStore, key: string, change: () => Promise<unknown>): RemoteStore {
    let done = false;
    return new Proxy(remote, {
      get(target, property) {
        if (property === "lookup") {
          return async (name: string, asked: string) => {
            if (asked === key && !done) {
              done = true;
              await change();
            }
            return target.lookup(name, asked);
          };
        }
        const value = Reflect.get(target, property, target) as unknown;
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  }

  test("an entry replaced by another kind, or by other bytes of another format, after it was listed is skipped", async () => {
    const tree = join(dirs.path, "tree");
    mkdirSync(tree, { recursive: true });
    writeFileSync(join(tree, "f.txt"), "a file\n");
    const cases: Record<string, { name: string; setUp: (local: Store) => Promise<unknown>; change: (local: Store) => Promise<unknown> }> = {
      "value replaced by a tree": {
        name: "push-kind-a",
        setUp: (local) => local.put("push-kind-a", "k", "a value"),
        change: (local) => local.putTree("push-kind-a", "k", tree),
      },
      "tree replaced by a value": {
        name: "push-kind-b",
        setUp: (local) => local.putTree("push-kind-b", "k", tree),
        change: (local) => local.put("push-kind-b", "k", "a value"),
      },
      "value replaced by another value of another format": {
        name: "push-kind-c",
        setUp: (local) => local.put("push-kind-c", "k", "old bytes", { format: "f/1" }),
        change: (local) => local.put("push-kind-c", "k", "new bytes of f/2", { format: "f/2" }),
      },
    };
    for (const [label, { name, setUp, change }] of Object.entries(cases)) {
      const local = await openStore({ cacheDir: join(dirs.path, name), env: {}, onWarning: () => {} });
      const remote = await openRemoteStore({ url: db.url, onWarning: () => {} });
      try {
        await setUp(local);
        const outcomes: string[] = [];
        const result = await pushToRemote(local, changingBefore(remote, "k", () => change(local)), {
          onEntry: (_entry, outcome) => outcomes.push(outcome.kind === "skipped" ? outcome.reason : outcome.kind),
        });
        assert.deepEqual([result.pushed, result.skipped], [0, 1], label);
        assert.match(outcomes[0] ?? "", /replaced in the local cache meanwhile/, label);
        assert.equal(await remote.lookup(name, "k"), undefined, `${label}: nothing sent`);
        // The replacement is the next push's to send, whole and with its own metadata.
        const next = await pushToRemote(local, remote);
        assert.equal(next.pushed, 1, label);
        if (name === "push-kind-c") {
          const sent = await remote.readValue(name, "k");
          assert.deepEqual([Buffer.from(sent!.value.data).toString(), sent!.value.format], ["new bytes of f/2", "f/2"]);
        }
      } finally {
        await remote.close();
        await local.close();
      }
    }
  });

  test("the library's pushToRemote never sends the file-stat memo of cache keys either", async () => {
    const project = join(dirs.path, "memo-project");
    mkdirSync(project, { recursive: true });
    writeFileSync(join(project, "a.txt"), "a\n");
    const local = await openStore({ cacheDir: join(dirs.path, "memo-cache"), env: {}, onWarning: () => {} });
    const remote = await openRemoteStore({ url: db.url, onWarning: () => {} });
    try {
      // A file whose ctime is within a moment of the key's computation is not memoized yet: computed until it is.
      const memo: string[] = [];
      for (let tries = 0; memo.length === 0 && tries < 40; tries++) {
        await computeCacheKey(project, [{ file: "*.txt" }], { store: local });
        for await (const entry of local.list(FILE_DIGEST_MEMO_NAME)) memo.push(entry.key);
        if (memo.length === 0) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await local.put("push-memo-neighbour", "k", "shared");
      assert.equal(memo.length, 1, "the memo is in the local cache");
      for (const names of [undefined, [FILE_DIGEST_MEMO_NAME, "push-memo-neighbour"]]) {
        await pushToRemote(local, remote, names === undefined ? undefined : { names });
        assert.equal(await remote.lookup(FILE_DIGEST_MEMO_NAME, memo[0]!), undefined, `names: ${String(names)}`);
      }
      assert.ok(await remote.lookup("push-memo-neighbour", "k"));
    } finally {
      await remote.close();
      await local.close();
    }
  });

  test("a tiered store keeps the memo local when it is written or read through it: never uploaded, never read back", async () => {
    const cacheDir = join(dirs.path, "tiered-memo");
    const tiered = await openConfiguredStore({ cacheDir, env: { CACHET_REMOTE: db.url } });
    try {
      await tiered.put(FILE_DIGEST_MEMO_NAME, "tiered-k", "this machine's stats");
    } finally {
      await tiered.close(); // flushes the upload queue
    }
    const remote = await openRemoteStore({ url: db.url, onWarning: () => {} });
    try {
      assert.equal(await remote.lookup(FILE_DIGEST_MEMO_NAME, "tiered-k"), undefined, "not uploaded");
      await remote.put(FILE_DIGEST_MEMO_NAME, "other-machine", "another machine's stats");
    } finally {
      await remote.close();
    }
    const again = await openConfiguredStore({ cacheDir, env: { CACHET_REMOTE: db.url } });
    try {
      assert.equal(await again.getValue(FILE_DIGEST_MEMO_NAME, "other-machine"), undefined, "not read from the shared tier");
      assert.ok(await again.getValue(FILE_DIGEST_MEMO_NAME, "tiered-k"));
    } finally {
      await again.close();
    }
  });

  test("a tree this machine got from the shared tier is not sent back: its local copy is newer, its archive the same", async () => {
    const tree = join(dirs.path, "filled-tree");
    mkdirSync(join(tree, "sub"), { recursive: true });
    writeFileSync(join(tree, "sub", "f.txt"), "made on machine A\n");
    const machineA = await openStore({ cacheDir: join(dirs.path, "machine-a"), env: {}, onWarning: () => {} });
    const remote = await openRemoteStore({ url: db.url, onWarning: () => {} });
    try {
      await machineA.putTree("push-filled", "k", tree);
      assert.equal((await pushToRemote(machineA, remote, { names: ["push-filled"] })).pushed, 1);
    } finally {
      await machineA.close();
    }
    await new Promise((resolve) => setTimeout(resolve, 50)); // the copy machine B makes is strictly newer
    const cacheDir = join(dirs.path, "machine-b");
    const tiered = await openConfiguredStore({ cacheDir, env: { CACHET_REMOTE: db.url } });
    try {
      assert.ok(await tiered.linkTree("push-filled", "k", join(dirs.path, "filled-target")), "a shared hit, kept locally");
    } finally {
      await tiered.close();
    }
    const machineB = await openStore({ cacheDir, env: {}, onWarning: () => {} });
    try {
      const before = (await remote.lookup("push-filled", "k"))!;
      assert.ok(machineB.info("push-filled", "k")!.createdAt.getTime() > before.createdAt.getTime());
      for (const dryRun of [true, false]) {
        const result = await pushToRemote(machineB, remote, { names: ["push-filled", "push-filled"], dryRun });
        assert.deepEqual([result.pushed, result.present], [0, 1], `dry run: ${dryRun}`);
      }
      assert.equal((await remote.lookup("push-filled", "k"))!.createdAt.getTime(), before.createdAt.getTime(), "the shared row is not rewritten");
    } finally {
      await machineB.close();
      await remote.close();
    }
  });

  test("a name given twice is pushed and counted once", async () => {
    const local = await openStore({ cacheDir: join(dirs.path, "twice"), env: {}, onWarning: () => {} });
    const remote = await openRemoteStore({ url: db.url, onWarning: () => {} });
    try {
      await local.put("push-twice", "a", "one");
      await local.put("push-twice", "b", "two");
      const dry = await pushToRemote(local, remote, { names: ["push-twice", "push-twice"], dryRun: true });
      assert.deepEqual([dry.pushed, dry.bytes, dry.present], [2, 6, 0]);
      const done = await pushToRemote(local, remote, { names: ["push-twice", "push-twice"] });
      assert.deepEqual([done.pushed, done.present], [2, 0]);
    } finally {
      await remote.close();
      await local.close();
    }
  });
});
