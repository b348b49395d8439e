import type { CommandContext } from "../context.js";
import { printData } from "../output.js";

/** `cachet cache dir`: prints the resolved cache root (a temporary one under `--no-cache`). */
export async function cacheDirCommand(context: CommandContext): Promise<number> {
  printData(context.output, context.root.path);
  return 0;
}
