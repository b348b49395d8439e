// The same memoization logic as a cachet task, over cacache: canonical key, one entry per key, decode on hit.
import { createHash } from "node:crypto";
import cacache from "cacache";
import { encodeCanonical, serializeValue, deserializeValue } from "../../dist/index.js";

export function memoKey(name, version, inputs) {
  return createHash("sha256").update(`cachet-task-key/1\0${name}\0${version}\0`).update(encodeCanonical(inputs)).digest("hex");
}
export const encode = (value) => Buffer.from(serializeValue(value));
export const decode = (bytes) => deserializeValue(bytes);

/** Wraps fn like task(): hit → decode, miss → run, store. */
export function memoize(cacheDir, name, version, fn) {
  return async (text, verbose) => {
    const key = memoKey(name, version, { text, verbose });
    try {
      return decode((await cacache.get(cacheDir, key)).data);
    } catch (error) {
      if (error.code !== "ENOENT") throw error;
    }
    const value = await fn(text, verbose);
    await cacache.put(cacheDir, key, encode(value));
    return value;
  };
}
