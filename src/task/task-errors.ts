import { CachetError } from "../errors.js";

/** A task defined in a way cachet cannot cache (no name, an ignored input that names nothing, …). */
export class TaskDefinitionError extends CachetError {
  readonly code = "CACHET_TASK_DEFINITION";
}
