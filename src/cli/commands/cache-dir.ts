import { resolveCacheDir } from "../../store/index.js";
import type { CommandContext } from "../context.js";
import { printData } from "../output.js";

/** `cachet cache dir`: prints the resolved cache root (a temporary one under `--no-cache`). */
export async function cacheDirCommand(context: CommandContext): Promise<number> {
  const resolved = resolveCacheDir({ cacheDir: context.settings.cacheDir, noCache: context.settings.noCache, env: context.env });
  printData(context.output, resolved.path);
  return 0;
}
