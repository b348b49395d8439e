import { randomBytes } from "node:crypto";
import { join } from "node:path";

/** A fresh, unique path inside the root's `tmp/`, on the same filesystem as the buckets. */
export function stagingPath(tmpDir: string, label: string): string {
  return join(tmpDir, `${label}-${process.pid}-${randomBytes(6).toString("hex")}`);
}
