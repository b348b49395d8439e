import { performance } from "node:perf_hooks";

/**
 * Runs long synchronous loops in slices: `due()` turns true once a slice has used its budget, and `yield()` lets
 * the event loop run (timers, I/O callbacks) before the next one. Synchronous file-system calls in a tight loop
 * are several times faster than promise calls through libuv's thread pool, but must not starve the program.
 */
export class TimeSlices {
  private sliceStart = performance.now();

  constructor(private readonly budgetMs = 4) {}

  due(): boolean {
    return performance.now() - this.sliceStart >= this.budgetMs;
  }

  async yield(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.sliceStart = performance.now();
  }
}
