import { copyFile } from "node:fs";

/** Copies in flight at once: enough to keep libuv's 4 pool threads busy while this thread handles completions. */
const IN_FLIGHT = 16;

/**
 * Copies `count` files (or, given a function, the files it hands out until it returns undefined) on libuv's thread pool (`copyFile` with `flags`, so clones and `copy_file_range` stay
 * in the kernel), several at a time. `after(i, error)` runs on this thread once the copy of file `i` has ended;
 * a string it returns stops the run (no new copies start) and becomes the result, and an error it throws stops
 * it with that error. Settles only when no copy is in flight, so the caller may remove the destination then.
 */
export function copyFilesInParallel(
  count: number | (() => number | undefined),
  pathsOf: (index: number) => readonly [from: string, to: string],
  flags: number,
  after: (index: number, error: NodeJS.ErrnoException | null) => string | undefined,
): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    let next = 0;
    const take = typeof count === "number" ? () => (next < count ? next++ : undefined) : count;
    let exhausted = false;
    let active = 0;
    let stopped: { reason: string } | { error: unknown } | undefined;
    const settle = (): void => {
      if (active > 0) return;
      if (stopped === undefined) resolve(undefined);
      else if ("error" in stopped) reject(stopped.error);
      else resolve(stopped.reason);
    };
    const launch = (): void => {
      while (stopped === undefined && active < IN_FLIGHT && !exhausted) {
        const index = take();
        if (index === undefined) {
          exhausted = true;
          break;
        }
        const [from, to] = pathsOf(index);
        active++;
        copyFile(from, to, flags, (error) => {
          active--;
          if (stopped === undefined) {
            try {
              const reason = after(index, error);
              if (reason !== undefined) stopped = { reason };
            } catch (failure) {
              stopped = { error: failure };
            }
          }
          if (stopped === undefined && !exhausted) launch();
          settle();
        });
      }
    };
    launch();
    settle();
  });
}
