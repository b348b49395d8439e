// Types of self-describing.mjs for the TypeScript tests.
export interface ValueMeta {
  name: string;
  key: string;
  writer: number;
  seq: number;
  [extra: string]: unknown;
}
export type Decoded = { ok: true; meta: ValueMeta & { length: number; sha256: string } } | { ok: false; reason: string };
export declare const MANIFEST: string;
export declare function encodeValue(meta: ValueMeta, payload: Uint8Array): Buffer;
export declare function decodeValue(bytes: Uint8Array): Decoded;
export declare function writeTree(dir: string, meta: ValueMeta, randomBytes: (size: number) => Uint8Array): void;
export declare function verifyTree(dir: string): { ok: true; meta: ValueMeta } | { ok: false; reason: string };
