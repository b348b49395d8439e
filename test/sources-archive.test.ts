// unpackArchive: each format unpacked with its modes, links and directories, and hostile archives (traversal,
// absolute paths, links out, writes through the archive's own symlinks, special files, bombs, damage) refused with
// an error naming the entry and nothing left in the staging directory.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, linkSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, statSync, symlinkSync, truncateSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import * as tar from "tar";
import {
  archiveFormatOf,
  unpackArchive,
  ArchiveDestinationError,
  ArchiveTooLargeError,
  CorruptArchiveError,
  SUPPORTED_ARCHIVE_FORMATS,
  UnsafeArchiveEntryError,
  UnsupportedArchiveEntryError,
  UnsupportedArchiveFormatError,
  isCachetError,
} from "../src/index.js";
import { patchCentralRecord, patchZip, paxRecord, rawTar, setCentralUncompressedSize, writeZeroTarGz, writeZip, type RawTarEntry } from "./archive-builders.js";
import { tempDir } from "./helpers.js";

const scratch = tempDir("cachet-archive-");
after(scratch.cleanup);
let count = 0;
const fresh = (label: string): string => join(scratch.path, `${label}-${count++}`);
const MiB = 1024 * 1024;

const modeOf = (path: string): number => lstatSync(path).mode & 0o7777;

/** A skip reason when one of the tools is not installed, else false. */
function missingTools(...tools: string[]): string | false {
  const missing = tools.filter((tool) => spawnSync(tool, ["--help"], { stdio: "ignore", timeout: 10_000 }).error !== undefined);
  return missing.length ? `not installed: ${missing.join(", ")}` : false;
}

/** A source tree with modes, nested directories, a symlink and a hardlink, under one top-level directory. */
function sourceTree(): string {
  const root = fresh("src");
  const top = join(root, "pkg-1.0");
  mkdirSync(join(top, "bin"), { recursive: true });
  mkdirSync(join(top, "lib", "deep", "er"), { recursive: true });
  writeFileSync(join(top, "README"), "read me\n");
  writeFileSync(join(top, "bin", "tool"), "#!/bin/sh\necho tool\n");
  chmodSync(join(top, "bin", "tool"), 0o755);
  writeFileSync(join(top, "lib", "deep", "er", "data.bin"), Buffer.alloc(300_000, 7));
  writeFileSync(join(top, "lib", "private"), "secret-ish\n");
  chmodSync(join(top, "lib", "private"), 0o600);
  symlinkSync("../README", join(top, "bin", "readme-link"));
  linkSync(join(top, "README"), join(top, "README.hard"));
  return root;
}

/** Checks the unpacked tree of {@link sourceTree}: contents, modes, the symlink, the kept top-level directory. */
function assertUnpackedTree(out: string, options: { hardlink: boolean }): void {
  assert.deepEqual(readdirSync(out), ["pkg-1.0"], "the single top-level directory is kept");
  const top = join(out, "pkg-1.0");
  assert.equal(readFileSync(join(top, "README"), "utf8"), "read me\n");
  assert.equal(readFileSync(join(top, "bin", "tool"), "utf8"), "#!/bin/sh\necho tool\n");
  assert.equal(modeOf(join(top, "bin", "tool")), 0o755, "exec bits kept");
  assert.equal(modeOf(join(top, "lib", "private")), 0o600);
  assert.equal(modeOf(join(top, "README")), 0o644);
  assert.deepEqual(readFileSync(join(top, "lib", "deep", "er", "data.bin")), Buffer.alloc(300_000, 7));
  assert.ok(lstatSync(join(top, "bin", "readme-link")).isSymbolicLink());
  assert.equal(readlinkSync(join(top, "bin", "readme-link")), "../README");
  assert.equal(readFileSync(join(top, "bin", "readme-link"), "utf8"), "read me\n");
  assert.equal(readFileSync(join(top, "README.hard"), "utf8"), "read me\n");
  if (options.hardlink) assert.equal(statSync(join(top, "README.hard")).ino, statSync(join(top, "README")).ino, "a hardlink inside the tree stays a hardlink");
}

/** Asserts that `unpack` is refused with `code`, naming `entry`, and leaves the staging directory absent. */
async function assertRefused(archive: string, archiveName: string, code: string, entry: string | RegExp, options: { maxUnpackedBytes?: number } = {}): Promise<Error> {
  const out = fresh("out");
  let caught: unknown;
  await assert.rejects(unpackArchive(archive, out, { archiveName, ...options }), (error: unknown) => {
    caught = error;
    return true;
  });
  const error = caught as Error & { code?: string };
  assert.ok(isCachetError(error), `a CachetError, got ${String(error)}`);
  assert.equal(error.code, code, error.message);
  assert.match(error.message, typeof entry === "string" ? new RegExp(JSON.stringify(entry).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")) : entry);
  assert.ok(error.message.includes(JSON.stringify(archiveName)), "the message names the archive");
  assert.doesNotMatch(error.message, /\n/);
  assert.equal(existsSync(out), false, "nothing is left behind");
  return error;
}

function writeRawTar(entries: RawTarEntry[], options: { gzip?: boolean } = {}): string {
  const path = fresh("raw") + (options.gzip ? ".tar.gz" : ".tar");
  const bytes = rawTar(entries);
  writeFileSync(path, options.gzip ? gzipSync(bytes) : bytes);
  return path;
}

describe("formats", () => {
  test("archiveFormatOf reads the extension, case-insensitively, with .tgz meaning tar.gz", () => {
    assert.equal(archiveFormatOf("node-v20.tar.gz"), "tar.gz");
    assert.equal(archiveFormatOf("NODE.TGZ"), "tar.gz");
    assert.equal(archiveFormatOf("src.tar"), "tar");
    assert.equal(archiveFormatOf("Release.Zip"), "zip");
    assert.equal(archiveFormatOf("notes.gz"), undefined);
    assert.equal(archiveFormatOf("tool.tar.xz"), undefined);
    assert.equal(archiveFormatOf("x.zip?token=1"), undefined, "a query string is not part of a file name");
    assert.deepEqual(
      SUPPORTED_ARCHIVE_FORMATS.map(({ format, extensions }) => [format, [...extensions]]),
      [["tar", [".tar"]], ["tar.gz", [".tar.gz", ".tgz"]], ["zip", [".zip"]]],
    );
  });

  test("a .tar unpacks with modes, nested directories, a symlink and a hardlink, its top-level directory kept", async () => {
    const source = sourceTree();
    const archive = fresh("a") + ".tar";
    await tar.c({ file: archive, cwd: source }, ["pkg-1.0"]);
    const out = fresh("out");
    const tally = await unpackArchive(archive, out, { archiveName: "pkg-1.0.tar" });
    assertUnpackedTree(out, { hardlink: true });
    assert.deepEqual(tally, { files: 5, directories: 5, symlinks: 1, bytes: 8 + 20 + 300_000 + 11 });
  });

  test("long names and link targets (pax headers) unpack whole", async () => {
    const root = fresh("long");
    const deep = join(root, "top", "d".repeat(120), "e".repeat(120));
    mkdirSync(deep, { recursive: true });
    writeFileSync(join(deep, `${"f".repeat(150)}.txt`), "long");
    symlinkSync(`${"f".repeat(150)}.txt`, join(deep, "link"));
    const archive = fresh("long") + ".tar";
    await tar.c({ file: archive, cwd: root }, ["top"]);
    const out = fresh("out");
    await unpackArchive(archive, out, { archiveName: "long.tar" });
    const unpacked = join(out, "top", "d".repeat(120), "e".repeat(120));
    assert.equal(readFileSync(join(unpacked, `${"f".repeat(150)}.txt`), "utf8"), "long");
    assert.equal(readFileSync(join(unpacked, "link"), "utf8"), "long");
  });

  test("a .tar.gz and a .tgz unpack the same tree", async () => {
    const source = sourceTree();
    const archive = fresh("a") + ".tgz";
    await tar.c({ file: archive, cwd: source, gzip: true }, ["pkg-1.0"]);
    for (const archiveName of ["pkg-1.0.tgz", "pkg-1.0.TAR.GZ"]) {
      const out = fresh("out");
      await unpackArchive(archive, out, { archiveName });
      assertUnpackedTree(out, { hardlink: true });
    }
  });

  test("a .zip unpacks with Unix modes from its attributes, directories, symlinks and nested paths", async () => {
    const archive = fresh("a") + ".zip";
    await writeZip(archive, [
      { name: "pkg-1.0/", directory: true },
      { name: "pkg-1.0/README", data: "read me\n" },
      { name: "pkg-1.0/bin/tool", data: "#!/bin/sh\necho tool\n", mode: 0o100755 },
      { name: "pkg-1.0/lib/deep/er/data.bin", data: Buffer.alloc(300_000, 7) },
      { name: "pkg-1.0/lib/private", data: "secret-ish\n", mode: 0o100600, compress: false },
      { name: "pkg-1.0/bin/readme-link", symlink: "../README" },
      { name: "pkg-1.0/README.hard", data: "read me\n" },
      { name: "pkg-1.0/empty/", directory: true, mode: 0o40750 },
    ]);
    const out = fresh("out");
    const tally = await unpackArchive(archive, out, { archiveName: "pkg-1.0.zip" });
    assertUnpackedTree(out, { hardlink: false });
    assert.equal(modeOf(join(out, "pkg-1.0", "empty")), 0o750);
    assert.deepEqual(tally, { files: 5, directories: 6, symlinks: 1, bytes: 8 + 20 + 300_000 + 11 + 8 });
  });

  test("archives made by GNU tar and Info-ZIP zip unpack the same tree", { skip: missingTools("tar", "zip") }, () => {
    const source = sourceTree();
    const tgz = fresh("gnu") + ".tar.gz";
    execFileSync("tar", ["-czf", tgz, "-C", source, "pkg-1.0"], { timeout: 30_000 });
    const zip = fresh("infozip") + ".zip";
    execFileSync("zip", ["-qry", zip, "pkg-1.0"], { cwd: source, timeout: 30_000 });
    return (async () => {
      const fromTar = fresh("out");
      await unpackArchive(tgz, fromTar, { archiveName: "pkg-1.0.tar.gz" });
      assertUnpackedTree(fromTar, { hardlink: true });
      const fromZip = fresh("out");
      await unpackArchive(zip, fromZip, { archiveName: "pkg-1.0.zip" });
      assertUnpackedTree(fromZip, { hardlink: false });
    })();
  });

  test("a zip64 archive unpacks", async () => {
    const archive = fresh("a") + ".zip";
    await writeZip(archive, [{ name: "big/one.txt", data: "one\n" }, { name: "big/two.txt", data: Buffer.alloc(70_000, 1) }], { zip64: true });
    assert.ok(readFileSync(archive).includes(Buffer.from([0x50, 0x4b, 0x06, 0x06])), "the archive has a zip64 end record");
    const out = fresh("out");
    await unpackArchive(archive, out, { archiveName: "big.zip" });
    assert.equal(readFileSync(join(out, "big", "one.txt"), "utf8"), "one\n");
    assert.deepEqual(readFileSync(join(out, "big", "two.txt")), Buffer.alloc(70_000, 1));
  });

  test("zip entries past the one-call size stream through, checked the same way", async () => {
    const big = randomBytes(3 * MiB);
    const archive = fresh("big") + ".zip";
    await writeZip(archive, [
      { name: "big/random.bin", data: big },
      { name: "big/stored.bin", data: big, compress: false },
    ]);
    const out = fresh("out");
    assert.equal((await unpackArchive(archive, out, { archiveName: "big.zip" })).bytes, 6 * MiB);
    assert.ok(readFileSync(join(out, "big", "random.bin")).equals(big));
    assert.ok(readFileSync(join(out, "big", "stored.bin")).equals(big));

    const lying = fresh("lying") + ".zip";
    writeFileSync(lying, setCentralUncompressedSize(readFileSync(archive), "big/random.bin", 1024));
    await assertRefused(lying, "lying.zip", "CACHET_ARCHIVE_CORRUPT", /entry "big\/random\.bin": its data runs past the 1024 bytes/);

    const flipped = Buffer.from(readFileSync(archive));
    const at = flipped.lastIndexOf(big.subarray(MiB, MiB + 64)); // inside the stored copy
    flipped[at] = flipped[at]! ^ 0xff;
    const damaged = fresh("crc") + ".zip";
    writeFileSync(damaged, flipped);
    await assertRefused(damaged, "crc.zip", "CACHET_ARCHIVE_CORRUPT", /entry "big\/stored\.bin": its data fails its CRC-32 check/);
  });

  test("set-uid, set-gid and sticky bits are dropped; exec bits stay", async () => {
    const tarArchive = writeRawTar([
      { name: "t/", type: "5", mode: 0o1777 },
      { name: "t/suid", mode: 0o4755, data: "x" },
      { name: "t/sgid", mode: 0o2750, data: "y" },
    ]);
    const out = fresh("out");
    await unpackArchive(tarArchive, out, { archiveName: "t.tar" });
    assert.equal(modeOf(join(out, "t")), 0o777);
    assert.equal(modeOf(join(out, "t", "suid")), 0o755);
    assert.equal(modeOf(join(out, "t", "sgid")), 0o750);

    const zipArchive = fresh("a") + ".zip";
    await writeZip(zipArchive, [{ name: "z/suid", data: "x", mode: 0o104755 }]);
    const zipOut = fresh("out");
    await unpackArchive(zipArchive, zipOut, { archiveName: "z.zip" });
    assert.equal(modeOf(join(zipOut, "z", "suid")), 0o755);
  });

  test("a zip made on Windows (no Unix attributes) gets default modes; the MS-DOS directory attribute makes a directory", async () => {
    const made = fresh("win") + ".zip";
    await writeZip(made, [{ name: "w/tool.exe", data: "MZ", mode: 0o100755 }, { name: "w/folder", data: "" }]);
    let bytes: Buffer = readFileSync(made);
    for (const name of ["w/tool.exe", "w/folder"]) bytes = patchCentralRecord(bytes, name, (record, at) => record.writeUInt8(0, at + 5)); // host: MS-DOS
    bytes = patchCentralRecord(bytes, "w/folder", (record, at) => record.writeUInt32LE(0x10, at + 38));
    writeFileSync(made, bytes);
    const out = fresh("out");
    await unpackArchive(made, out, { archiveName: "win.zip" });
    assert.equal(modeOf(join(out, "w", "tool.exe")), 0o644, "Unix bits are not read from a Windows-made entry");
    assert.ok(lstatSync(join(out, "w", "folder")).isDirectory());
  });

  test("a tar that is gzipped is read as such whatever its name says", async () => {
    const archive = fresh("a") + ".tar";
    writeFileSync(archive, gzipSync(rawTar([{ name: "inside.txt", data: "gz" }])));
    const out = fresh("out");
    await unpackArchive(archive, out, { archiveName: "plain.tar" });
    assert.equal(readFileSync(join(out, "inside.txt"), "utf8"), "gz");
  });

  test("an encrypted zip entry is refused as unsupported", async () => {
    const archive = fresh("enc") + ".zip";
    await writeZip(archive, [{ name: "secret.txt", data: "hidden" }]);
    writeFileSync(archive, patchCentralRecord(readFileSync(archive), "secret.txt", (record, at) => record.writeUInt16LE(record.readUInt16LE(at + 8) | 1, at + 8)));
    await assertRefused(archive, "enc.zip", "CACHET_ARCHIVE_UNSUPPORTED_ENTRY", /entry "secret\.txt" is encrypted/);
  });

  test("a directory listed again is one directory; the format option overrides the name", async () => {
    const archive = writeRawTar([
      { name: "./", type: "5", mode: 0o755 },
      { name: "./d/", type: "5", mode: 0o700 },
      { name: "./d/f", data: "f" },
      { name: "./d/", type: "5", mode: 0o750 },
    ]);
    const out = fresh("out");
    const tally = await unpackArchive(archive, out, { archiveName: "download", format: "tar" });
    assert.deepEqual(readdirSync(out), ["d"]);
    assert.equal(modeOf(join(out, "d")), 0o750, "the later listing's mode");
    assert.deepEqual(tally, { files: 1, directories: 1, symlinks: 0, bytes: 1 });
  });

  test("an unsupported format is refused, listing the supported ones", async () => {
    const archive = fresh("a") + ".tar.xz";
    writeFileSync(archive, "not read");
    const error = await assertRefused(archive, "tool.tar.xz", "CACHET_ARCHIVE_FORMAT", /"tool\.tar\.xz"/);
    assert.ok(error instanceof UnsupportedArchiveFormatError);
    assert.match(error.message, /supported: \.tar, \.tar\.gz\/\.tgz, \.zip\)/);
  });

  test("the destination must be empty; an empty one is filled, and emptied again on failure", async () => {
    const good = writeRawTar([{ name: "a", data: "a" }]);
    const full = fresh("full");
    mkdirSync(full);
    writeFileSync(join(full, "there"), "");
    await assert.rejects(unpackArchive(good, full, { archiveName: "a.tar" }), ArchiveDestinationError);
    assert.deepEqual(readdirSync(full), ["there"], "a refused destination is not touched");

    const empty = fresh("empty");
    mkdirSync(empty);
    await unpackArchive(good, empty, { archiveName: "a.tar" });
    assert.deepEqual(readdirSync(empty), ["a"]);

    const bad = writeRawTar([{ name: "ok/a", data: "a" }, { name: "../evil", data: "e" }]);
    const staging = fresh("staging");
    mkdirSync(staging);
    await assert.rejects(unpackArchive(bad, staging, { archiveName: "bad.tar" }), UnsafeArchiveEntryError);
    assert.deepEqual(readdirSync(staging), [], "an existing staging directory is left empty");
  });
});

describe("hostile tar entries", () => {
  const cases: Array<[string, RawTarEntry[], string]> = [
    ["a .. path", [{ name: "ok/a", data: "a" }, { name: "../evil", data: "e" }], "../evil"],
    ["a .. in the middle of a path", [{ name: "a/../../evil", data: "e" }], "a/../../evil"],
    ["a backslash .. (Windows traversal)", [{ name: "..\\evil", data: "e" }], "..\\evil"],
    ["a segment of only dots (Windows reads ... as ..)", [{ name: "a/.../evil", data: "e" }], "a/.../evil"],
    ["an absolute path", [{ name: "/tmp/evil", data: "e" }], "/tmp/evil"],
    ["a drive letter", [{ name: "C:/evil", data: "e" }], "C:/evil"],
    ["a symlink to an absolute path", [{ name: "link", type: "2", linkname: "/etc" }], "link"],
    ["a symlink climbing out", [{ name: "d/", type: "5" }, { name: "d/link", type: "2", linkname: "../../outside" }], "d/link"],
    ["a hardlink out", [{ name: "h", type: "1", linkname: "../../etc/passwd" }], "h"],
    ["a hardlink to an absolute path", [{ name: "h", type: "1", linkname: "/etc/passwd" }], "h"],
    ["a hardlink to a file the archive did not make", [{ name: "h", type: "1", linkname: "later" }, { name: "later", data: "x" }], "h"],
    ["a character device", [{ name: "dev/null", type: "3" }], "dev/null"],
    ["a block device", [{ name: "dev/sda", type: "4" }], "dev/sda"],
    ["a FIFO", [{ name: "fifo", type: "6" }], "fifo"],
    ["the same file twice", [{ name: "f", data: "first" }, { name: "f", data: "second" }], "f"],
    ["a file over a directory", [{ name: "d/", type: "5" }, { name: "d", data: "x" }], "d"],
  ];
  for (const [label, entries, entry] of cases) {
    test(`${label} is refused, naming the entry, nothing left behind`, async () => {
      const error = await assertRefused(writeRawTar(entries), "hostile.tar", "CACHET_ARCHIVE_UNSAFE_ENTRY", entry);
      assert.equal((error as UnsafeArchiveEntryError).entry, entry);
    });
  }

  test("a symlink to /tmp followed by a file under it is refused at the symlink", async () => {
    const outside = fresh("outside");
    mkdirSync(outside);
    const archive = writeRawTar([{ name: "a", type: "2", linkname: outside }, { name: "a/x", data: "written outside" }]);
    await assertRefused(archive, "through.tar", "CACHET_ARCHIVE_UNSAFE_ENTRY", "a");
    assert.deepEqual(readdirSync(outside), []);
  });

  test("nothing is written through a symlink the archive made, even one pointing inside", async () => {
    for (const linkname of [".", "real", "real/.."]) {
      const archive = writeRawTar([
        { name: "real/", type: "5" },
        { name: "a", type: "2", linkname },
        { name: "a/x", data: "through the link" },
      ]);
      await assertRefused(archive, "through.tar", "CACHET_ARCHIVE_UNSAFE_ENTRY", /entry "a\/x" goes through "a", a symlink/);
    }
  });

  test("a symlink that only climbs out through another symlink is refused once the tree is complete", async () => {
    // Each link's text stays inside (`sub/x/..` reads as `sub`), but `sub/x` is the top itself, so `y` is its parent.
    const archive = writeRawTar([
      { name: "sub/", type: "5" },
      { name: "y", type: "2", linkname: "sub/x/.." },
      { name: "sub/x", type: "2", linkname: ".." },
    ]);
    await assertRefused(archive, "chain.tar", "CACHET_ARCHIVE_UNSAFE_ENTRY", /entry "y" is a symlink .* through other symlinks/);
  });

  test("symlinks and hardlinks that stay inside are kept", async () => {
    const archive = writeRawTar([
      { name: "top/lib/real.txt", data: "real" },
      { name: "top/lib/alias", type: "2", linkname: "real.txt" },
      { name: "top/bin/up", type: "2", linkname: "../lib/alias" },
      { name: "top/bin/dangling", type: "2", linkname: "missing/inside" },
      { name: "top/copy", type: "1", linkname: "top/lib/real.txt" },
    ]);
    const out = fresh("out");
    const tally = await unpackArchive(archive, out, { archiveName: "links.tar" });
    assert.equal(readFileSync(join(out, "top", "bin", "up"), "utf8"), "real");
    assert.equal(readFileSync(join(out, "top", "copy"), "utf8"), "real");
    assert.equal(readlinkSync(join(out, "top", "bin", "dangling")), "missing/inside");
    assert.deepEqual(tally, { files: 2, directories: 3, symlinks: 3, bytes: 4 });
  });
});

describe("hostile zip entries", () => {
  async function hostileZip(entries: Parameters<typeof writeZip>[1], patches: Array<[string, string]> = []): Promise<string> {
    const path = fresh("z") + ".zip";
    await writeZip(path, entries);
    let bytes: Buffer = readFileSync(path);
    for (const [from, to] of patches) bytes = patchZip(bytes, from, to);
    writeFileSync(path, bytes);
    return path;
  }

  test("a .. path is refused", async () => {
    const archive = await hostileZip([{ name: "ok.txt", data: "ok" }, { name: "zz/evil", data: "e" }], [["zz/evil", "../evil"]]);
    await assertRefused(archive, "h.zip", "CACHET_ARCHIVE_UNSAFE_ENTRY", "../evil");
  });

  test("a backslash .. path is refused (read as ../)", async () => {
    const archive = await hostileZip([{ name: "zz/evil", data: "e" }], [["zz/evil", "..\\evil"]]);
    await assertRefused(archive, "h.zip", "CACHET_ARCHIVE_UNSAFE_ENTRY", "../evil");
  });

  test("an absolute path and a drive letter are refused", async () => {
    const absolute = await hostileZip([{ name: "z/tmp/evil", data: "e" }], [["z/tmp/evil", "//tmp/evil"]]);
    await assertRefused(absolute, "h.zip", "CACHET_ARCHIVE_UNSAFE_ENTRY", "//tmp/evil");
    const drive = await hostileZip([{ name: "zzzevil", data: "e" }], [["zzzevil", "C:\\evil"]]);
    await assertRefused(drive, "h.zip", "CACHET_ARCHIVE_UNSAFE_ENTRY", "C:/evil");
  });

  test("symlinks out are refused: absolute, climbing, and a path through the archive's own symlink", async () => {
    await assertRefused(await hostileZip([{ name: "link", symlink: "/etc" }]), "h.zip", "CACHET_ARCHIVE_UNSAFE_ENTRY", "link");
    await assertRefused(await hostileZip([{ name: "d/link", symlink: "../../x" }]), "h.zip", "CACHET_ARCHIVE_UNSAFE_ENTRY", "d/link");
    await assertRefused(
      await hostileZip([{ name: "d/", directory: true }, { name: "a", symlink: "d" }, { name: "a/x", data: "through" }]),
      "h.zip",
      "CACHET_ARCHIVE_UNSAFE_ENTRY",
      /entry "a\/x" goes through "a"/,
    );
  });

  test("a FIFO and a device in the attributes are refused", async () => {
    await assertRefused(await hostileZip([{ name: "fifo", data: "", mode: 0o010644 }]), "h.zip", "CACHET_ARCHIVE_UNSAFE_ENTRY", "fifo");
    await assertRefused(await hostileZip([{ name: "dev", data: "", mode: 0o020644 }]), "h.zip", "CACHET_ARCHIVE_UNSAFE_ENTRY", "dev");
  });

  test("the same name twice is refused", async () => {
    const archive = await hostileZip([{ name: "f", data: "first" }, { name: "g", data: "second" }], [["\0g", "\0f"]]);
    await assertRefused(archive, "h.zip", "CACHET_ARCHIVE_UNSAFE_ENTRY", /entry "f" appears twice/);
  });
});

describe("bombs and size limits", () => {
  test("a .tar.gz expanding to 100 MiB of zeros is refused under a 10 MiB limit before anything is written", async () => {
    const archive = fresh("bomb") + ".tar.gz";
    await writeZeroTarGz(archive, "zeros.bin", 100 * MiB);
    assert.ok(statSync(archive).size < MiB, "highly compressed");
    const error = await assertRefused(archive, "bomb.tar.gz", "CACHET_ARCHIVE_TOO_LARGE", "zeros.bin", { maxUnpackedBytes: 10 * MiB });
    assert.ok(error instanceof ArchiveTooLargeError);
    assert.equal(error.limit, 10 * MiB);
  });

  test("a tar header claiming 1 TiB is refused on its claim, under the default limit", async () => {
    const archive = writeRawTar([{ name: "huge.img", size: 1024 ** 4 }]);
    await assertRefused(archive, "claim.tar", "CACHET_ARCHIVE_TOO_LARGE", "huge.img");
  });

  test("the limit counts the whole archive, not one entry", async () => {
    const archive = writeRawTar(Array.from({ length: 5 }, (_, index) => ({ name: `part-${index}`, data: Buffer.alloc(MiB) })));
    await assertRefused(archive, "parts.tar", "CACHET_ARCHIVE_TOO_LARGE", "part-3", { maxUnpackedBytes: 3.5 * MiB });
    const out = fresh("out");
    assert.equal((await unpackArchive(archive, out, { archiveName: "parts.tar", maxUnpackedBytes: 5 * MiB })).bytes, 5 * MiB);
  });

  test("a GNU sparse entry is refused rather than unpacked condensed", async () => {
    const archive = writeRawTar([{ name: "disk.img", type: "S", data: Buffer.alloc(512) }]);
    const error = await assertRefused(archive, "sparse.tar", "CACHET_ARCHIVE_UNSUPPORTED_ENTRY", "disk.img");
    assert.ok(error instanceof UnsupportedArchiveEntryError);
    // PAX sparse (GNU tar --format=posix): the data is a condensed form, announced only by GNU.sparse.* keys.
    const pax = paxRecord("GNU.sparse.size", String(1024 ** 4)) + paxRecord("GNU.sparse.numblocks", "1") + paxRecord("GNU.sparse.offset", "0") + paxRecord("GNU.sparse.numbytes", "5");
    const paxArchive = writeRawTar([{ name: "PaxHeaders/disk.img", type: "x", data: pax }, { name: "disk.img", data: "hello" }]);
    await assertRefused(paxArchive, "sparse.tar", "CACHET_ARCHIVE_UNSUPPORTED_ENTRY", /entry "disk\.img" is a GNU sparse file \(PAX format\)/);
  });

  test("a zip entry of 100 MiB of zeros is refused under a 10 MiB limit", async () => {
    const archive = fresh("bomb") + ".zip";
    await writeZip(archive, [{ name: "zeros.bin", zeros: 100 * MiB }]);
    assert.ok(statSync(archive).size < MiB, "highly compressed");
    await assertRefused(archive, "bomb.zip", "CACHET_ARCHIVE_TOO_LARGE", "zeros.bin", { maxUnpackedBytes: 10 * MiB });
  });

  test("a zip whose central directory declares 1 KiB for 100 MiB of data is stopped as it passes 1 KiB", async () => {
    const honest = fresh("bomb") + ".zip";
    await writeZip(honest, [{ name: "small.txt", data: "small" }, { name: "zeros.bin", zeros: 100 * MiB }]);
    const lying = fresh("lying") + ".zip";
    writeFileSync(lying, setCentralUncompressedSize(readFileSync(honest), "zeros.bin", 1024));
    const error = await assertRefused(lying, "lying.zip", "CACHET_ARCHIVE_CORRUPT", /entry "zeros\.bin": its data runs past the 1024 bytes/, { maxUnpackedBytes: 10 * MiB });
    assert.ok(error instanceof CorruptArchiveError);
  });
});

describe("damaged archives", () => {
  test("a truncated .tar.gz is an error, not a partial tree", async () => {
    const source = sourceTree();
    writeFileSync(join(source, "pkg-1.0", "noise.bin"), Buffer.from(Array.from({ length: 400_000 }, (_, index) => (index * 7919) % 251)));
    const archive = fresh("cut") + ".tar.gz";
    await tar.c({ file: archive, cwd: source, gzip: true }, ["pkg-1.0"]);
    truncateSync(archive, Math.floor(statSync(archive).size / 2));
    await assertRefused(archive, "cut.tar.gz", "CACHET_ARCHIVE_CORRUPT", /damaged/);
  });

  test("a truncated .tar is an error, naming the entry cut short", async () => {
    const bytes = rawTar([{ name: "first", data: "1" }, { name: "second", data: Buffer.alloc(5000, 2) }]);
    const archive = fresh("cut") + ".tar";
    writeFileSync(archive, bytes.subarray(0, 512 * 3 + 1000));
    await assertRefused(archive, "cut.tar", "CACHET_ARCHIVE_CORRUPT", "second");
  });

  test("a .tar.gz missing only its gzip trailer, or cut between two tar entries, is an error", async () => {
    const bytes = rawTar([{ name: "first", data: "1" }, { name: "second", data: Buffer.alloc(5000, 2) }]);
    const gzipped = gzipSync(bytes);
    const noTrailer = fresh("cut") + ".tar.gz";
    writeFileSync(noTrailer, gzipped.subarray(0, gzipped.length - 4));
    await assertRefused(noTrailer, "cut.tar.gz", "CACHET_ARCHIVE_CORRUPT", /gzip: unexpected end of file/);
    const betweenEntries = fresh("cut") + ".tar.gz";
    writeFileSync(betweenEntries, gzipSync(bytes.subarray(0, 1024)), { flush: true });
    await assertRefused(betweenEntries, "cut.tar.gz", "CACHET_ARCHIVE_CORRUPT", /without the end-of-archive blocks/);
  });

  test("an archive of no entries is an empty tree", async () => {
    const archive = writeRawTar([]);
    const out = fresh("out");
    assert.deepEqual(await unpackArchive(archive, out, { archiveName: "empty.tar" }), { files: 0, directories: 0, symlinks: 0, bytes: 0 });
    assert.deepEqual(readdirSync(out), []);
  });

  test("a tar header with a bad checksum is an error", async () => {
    const bytes = rawTar([{ name: "file", data: "data" }]);
    bytes[10] = 0x41; // inside the name field, so the checksum no longer matches
    const archive = fresh("bad") + ".tar";
    writeFileSync(archive, bytes);
    await assertRefused(archive, "bad.tar", "CACHET_ARCHIVE_CORRUPT", /checksum/);
  });

  test("a truncated zip and a zip entry failing its CRC-32 are errors", async () => {
    const archive = fresh("z") + ".zip";
    await writeZip(archive, [{ name: "a.txt", data: "stored data here", compress: false }]);
    const whole = readFileSync(archive);
    const cut = fresh("cut") + ".zip";
    writeFileSync(cut, whole.subarray(0, whole.length - 30));
    await assertRefused(cut, "cut.zip", "CACHET_ARCHIVE_CORRUPT", /damaged/);
    const flipped = fresh("crc") + ".zip";
    writeFileSync(flipped, patchZip(whole, "stored data here", "stored DATA here"));
    await assertRefused(flipped, "crc.zip", "CACHET_ARCHIVE_CORRUPT", /entry "a\.txt": its data fails its CRC-32 check/);
  });

  test("a missing archive file is Node's ENOENT, for each format, with nothing left behind", async () => {
    for (const archiveName of ["gone.tar", "gone.tar.gz", "gone.zip"]) {
      const out = fresh("out");
      await assert.rejects(unpackArchive(join(scratch.path, "no-such", archiveName), out, { archiveName }), { code: "ENOENT" });
      assert.equal(existsSync(out), false);
    }
  });

  test("a file that is not an archive at all is an error", async () => {
    const archive = fresh("junk") + ".zip";
    writeFileSync(archive, "this is plain text, no archive");
    await assertRefused(archive, "junk.zip", "CACHET_ARCHIVE_CORRUPT", /damaged/);
    const tarJunk = fresh("junk") + ".tar";
    writeFileSync(tarJunk, Buffer.alloc(3000, 0x41));
    await assertRefused(tarJunk, "junk.tar", "CACHET_ARCHIVE_CORRUPT", /damaged/);
  });
});
