/**
 * The symbol under which a class declares its hash: `[hashKey]() { return this.url; }`. cachet hashes an instance
 * of such a class as its constructor name plus the canonical encoding of what the method returns, instead of
 * refusing it. (`Symbol.for`, so two copies of cachet in one process agree.)
 */
export const hashKey: unique symbol = Symbol.for("cachet.hash");

/** A value whose type declares its hash under `hashKey`; the method returns plain, hashable data. */
export interface Hashable {
  [hashKey](): unknown;
}
