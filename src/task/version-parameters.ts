import type { ImageSpec } from "./image-spec.js";
import type { PodTemplate } from "./pod-template.js";

/**
 * What a cache policy may look at to derive a task's version: the task function itself and the environment it
 * is configured to run in.
 */
export interface VersionParameters {
  /** The task function whose results are cached. */
  func: (...args: any[]) => unknown;
  /** The container image the task runs in: a plain image reference or an `ImageSpec`. */
  containerImage?: string | ImageSpec;
  /** The pod template the task runs with. */
  podTemplate?: PodTemplate;
  /** The name of a pod template registered elsewhere. */
  podTemplateName?: string;
}
