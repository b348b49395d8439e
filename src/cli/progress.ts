import cliProgress from "cli-progress";
import type { Reporter } from "../store/index.js";
import { formatBytes } from "./format.js";

/**
 * Turns a library reporter's per-item calls into a live counter on the terminal (files and bytes so far).
 * When progress is off it is a no-op reporter, so commands stay quiet when stderr is not a terminal.
 */
export function progressReporter(enabled: boolean, label: string, stream: NodeJS.WritableStream): Reporter & { stop(): void } {
  if (!enabled) return { stop() {} };
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} {files} files, {size}`,
      stream,
      hideCursor: true,
      clearOnComplete: true,
      fps: 10,
      noTTYOutput: false,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    item(event) {
      const payload = { files: event.tally.files, size: formatBytes(event.tally.bytes) };
      if (!started) {
        bar.start(0, 0, payload);
        started = true;
      } else bar.update(0, payload);
    },
    end() {
      if (started) bar.stop();
      started = false;
    },
    stop() {
      if (started) bar.stop();
      started = false;
    },
  };
}
