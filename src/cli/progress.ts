import cliProgress from "cli-progress";
import type { Reporter } from "../store/index.js";
import { formatBytes, plural } from "./format.js";

/**
 * Turns a library reporter's per-item calls into a live counter on the terminal (`Removing 1 file, 2.0KiB`).
 * When progress is off (stderr not a terminal, `CACHET_NO_PROGRESS`, `CI`, `TERM=dumb`) it is a no-op reporter,
 * so nothing, and no escape code, reaches stderr.
 */
export function progressReporter(enabled: boolean, label: string, stream: NodeJS.WritableStream): Reporter & { stop(): void } {
  if (!enabled) return { stop() {} };
  const bar = new cliProgress.SingleBar(
    {
      format: (_options, _params, payload: { files: number; bytes: number }) =>
        `${label} ${plural(payload.files, "file", "files")}, ${formatBytes(payload.bytes)}`,
      stream,
      hideCursor: true,
      clearOnComplete: true,
      fps: 10,
      noTTYOutput: false,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  const stop = (): void => {
    if (started) bar.stop();
    started = false;
  };
  return {
    item(event) {
      const payload = { files: event.tally.files, bytes: event.tally.bytes };
      if (!started) {
        bar.start(0, 0, payload);
        started = true;
      } else bar.update(0, payload);
    },
    end: stop,
    stop,
  };
}
