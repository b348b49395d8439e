/** An archive format `unpackArchive` reads. */
export type ArchiveFormat = "tar" | "tar.gz" | "zip";

/** A supported format and the file name extensions that mean it (lower case, the first one is its usual name). */
export interface SupportedArchiveFormat {
  readonly format: ArchiveFormat;
  readonly extensions: readonly string[];
}

/** The formats `unpackArchive` reads, by file name extension: `.tar`, `.tar.gz` (alias `.tgz`), `.zip`. */
export const SUPPORTED_ARCHIVE_FORMATS: readonly SupportedArchiveFormat[] = Object.freeze([
  Object.freeze({ format: "tar", extensions: Object.freeze([".tar"]) }),
  Object.freeze({ format: "tar.gz", extensions: Object.freeze([".tar.gz", ".tgz"]) }),
  Object.freeze({ format: "zip", extensions: Object.freeze([".zip"]) }),
] as const);

/** Every supported extension, as error messages list them: `.tar`, `.tar.gz`/`.tgz`, `.zip`. */
export const SUPPORTED_EXTENSION_LIST: readonly string[] = SUPPORTED_ARCHIVE_FORMATS.map(({ extensions }) => extensions.join("/"));

/**
 * The format a file name means by its extension, case-insensitive (`node-v20.TGZ` → `tar.gz`), or `undefined` for
 * any other name. The name is a file name as given: a URL's query string is not part of it.
 */
export function archiveFormatOf(name: string): ArchiveFormat | undefined {
  const lower = name.toLowerCase();
  // Longest extensions first, so `.tar.gz` is not taken for something ending in `.gz` alone.
  const candidates = SUPPORTED_ARCHIVE_FORMATS.flatMap(({ format, extensions }) => extensions.map((extension) => ({ format, extension })));
  candidates.sort((a, b) => b.extension.length - a.extension.length);
  return candidates.find(({ extension }) => lower.endsWith(extension))?.format;
}

/** True for a value that names a supported format. */
export function isArchiveFormat(value: unknown): value is ArchiveFormat {
  return SUPPORTED_ARCHIVE_FORMATS.some(({ format }) => format === value);
}
