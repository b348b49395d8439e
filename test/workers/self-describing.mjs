// Self-describing values for the reliability tests: each value carries its own name, key, writer, sequence
// number, length and sha256, so a reader can tell a whole value from a torn or foreign one without knowing
// which writes finished. Trees carry a MANIFEST.json with the digest of every other file.
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const MAGIC = "cachet-selfdesc/1\n";
export const MANIFEST = "MANIFEST.json";

const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");

/** `MAGIC` + one JSON header line + the payload bytes. */
export function encodeValue(meta, payload) {
  const header = JSON.stringify({ ...meta, length: payload.byteLength, sha256: sha256(payload) });
  return Buffer.concat([Buffer.from(`${MAGIC}${header}\n`, "utf8"), payload]);
}

/** `{ ok: true, meta }` for a whole value; `{ ok: false, reason }` otherwise. */
export function decodeValue(bytes) {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (!buffer.subarray(0, MAGIC.length).equals(Buffer.from(MAGIC))) return { ok: false, reason: "bad magic" };
  const end = buffer.indexOf(0x0a, MAGIC.length);
  if (end < 0) return { ok: false, reason: "no header line" };
  let meta;
  try {
    meta = JSON.parse(buffer.subarray(MAGIC.length, end).toString("utf8"));
  } catch {
    return { ok: false, reason: "unparseable header" };
  }
  const payload = buffer.subarray(end + 1);
  if (payload.byteLength !== meta.length) return { ok: false, reason: `length ${payload.byteLength} != ${meta.length}` };
  if (sha256(payload) !== meta.sha256) return { ok: false, reason: "payload checksum mismatch" };
  return { ok: true, meta };
}

/** Writes a small directory tree (with sub-directories and an empty file) described by its MANIFEST.json. */
export function writeTree(dir, meta, randomBytes) {
  const files = {};
  const put = (relative, bytes) => {
    const path = join(dir, ...relative.split("/"));
    mkdirSync(join(path, ".."), { recursive: true });
    writeFileSync(path, bytes);
    files[relative] = sha256(bytes);
  };
  mkdirSync(dir, { recursive: true });
  put("a.txt", Buffer.from(`${meta.name}/${meta.key} from writer ${meta.writer} #${meta.seq}\n`));
  put("empty", Buffer.alloc(0));
  put("sub/b.bin", randomBytes(1 + Math.floor(Math.random() * 20_000)));
  put("sub/deeper/c.bin", randomBytes(1 + Math.floor(Math.random() * 4_000)));
  writeFileSync(join(dir, MANIFEST), JSON.stringify({ ...meta, files }));
}

/** Checks a materialized tree against its MANIFEST.json: `{ ok: true, meta }` or `{ ok: false, reason }`. */
export function verifyTree(dir) {
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(join(dir, MANIFEST), "utf8"));
  } catch (error) {
    return { ok: false, reason: `no readable manifest (${error.message})` };
  }
  const found = listFiles(dir, "").filter((relative) => relative !== MANIFEST).sort();
  const expected = Object.keys(manifest.files).sort();
  if (JSON.stringify(found) !== JSON.stringify(expected)) {
    return { ok: false, reason: `files ${JSON.stringify(found)} != manifest ${JSON.stringify(expected)}` };
  }
  for (const relative of expected) {
    if (sha256(readFileSync(join(dir, ...relative.split("/")))) !== manifest.files[relative]) {
      return { ok: false, reason: `${relative} does not match its digest` };
    }
  }
  const { files: _files, ...meta } = manifest;
  return { ok: true, meta };
}

function listFiles(dir, prefix) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const relative = prefix === "" ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) out.push(...listFiles(join(dir, entry.name), relative));
    else out.push(relative);
  }
  return out;
}
