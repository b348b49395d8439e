import { sha256Hex } from "../../hash/index.js";

import type { CachePolicy } from "../cache-policy.js";
import { describeValue } from "../errors.js";
import { PodTemplate } from "../pod-template.js";
import type { VersionParameters } from "../version-parameters.js";

/**
 * Versions a task by its pod template: the template's `versionHash()` and the `podTemplateName`. Without either,
 * a fixed marker (`null`) is contributed.
 */
export class PodTemplatePolicy implements CachePolicy {
  getVersion(salt: string, params: VersionParameters): string {
    const template = params.podTemplate;
    if (template !== undefined && template !== null && !(template instanceof PodTemplate)) {
      throw new TypeError(`PodTemplatePolicy needs params.podTemplate to be a PodTemplate, got ${describeValue(template)}`);
    }
    const name = params.podTemplateName;
    if (name !== undefined && name !== null && typeof name !== "string") {
      throw new TypeError(`PodTemplatePolicy needs params.podTemplateName to be a string, got ${describeValue(name)}`);
    }
    const parts = ["pod-template", salt, template ? template.versionHash() : null, name ?? null];
    return sha256Hex(JSON.stringify(parts));
  }
}
