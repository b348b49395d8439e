import { sha256Hex } from "../../hash/index.js";

import type { CachePolicy } from "../cache-policy.js";
import { describeValue } from "../errors.js";
import { ImageSpec } from "../image-spec.js";
import type { VersionParameters } from "../version-parameters.js";

/**
 * Versions a task by the container image it runs in: a plain image reference as given, or an `ImageSpec`'s full
 * name with its content tag (`imageName()`). A task without an image contributes a fixed marker (`null`), which
 * differs from every image name, so adding or removing an image changes the version.
 */
export class ContainerImagePolicy implements CachePolicy {
  getVersion(salt: string, params: VersionParameters): string {
    const image = params.containerImage;
    let reference: string | null;
    if (image === undefined || image === null) reference = null;
    else if (typeof image === "string") reference = image;
    else if (image instanceof ImageSpec) reference = image.imageName();
    else {
      throw new TypeError(
        `ContainerImagePolicy needs params.containerImage to be an image name or an ImageSpec, got ${describeValue(image)}`,
      );
    }
    return sha256Hex(JSON.stringify(["container-image", salt, reference]));
  }
}
