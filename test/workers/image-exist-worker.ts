// A process that asks ImageSpec.exist() for each spec it is given and prints one JSON line: each answer, or the
// error it rejected with in full (util.inspect: message, cause, stack, own properties). The test reads all of the
// process's output — that line, anything else on stdout or stderr, process warnings — to check that no secret of
// the registryConfig it used ever appears.
// argv[2]: JSON { specs: ImageSpecOptions[], timeoutMs?: number }
import { inspect } from "node:util";
import { ImageSpec, type ImageSpecOptions } from "../../src/index.js";

const config = JSON.parse(process.argv[2] ?? "{}") as { specs: ImageSpecOptions[]; timeoutMs?: number };
const processWarnings: string[] = [];
process.on("warning", (warning) => processWarnings.push(inspect(warning)));

const answers: unknown[] = [];
for (const options of config.specs) {
  try {
    const spec = new ImageSpec(options);
    const answer = await spec.exist(config.timeoutMs === undefined ? {} : { timeoutMs: config.timeoutMs });
    answers.push({ answer: answer === undefined ? "undefined" : answer });
  } catch (error) {
    answers.push({ rejected: inspect(error, { depth: 8, showHidden: true }) });
  }
}
process.stdout.write(`${JSON.stringify({ answers, processWarnings })}\n`);
