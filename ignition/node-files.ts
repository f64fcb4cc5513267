/**
 * How a file's contents travel inside Ignition: as a `data:` URL (RFC 2397) in the
 * config itself, or as a remote URL Ignition downloads and checks against a hash.
 *
 * `text` is known in full at synth, so it travels as percent-encoded text inside the
 * gzip'd boot config (ignition/user-data.ts). Apply-time secrets never sit inside such text: a file that
 * holds one travels whole as `base64`, one Terraform expression yielding the file
 * base64-encoded (e.g. Fn.base64encode(pem)); a config that needs the secret carries
 * a boot placeholder (lib/boot-values.ts) and the node fills it in from that file.
 */
import { gzipSync } from "node:zlib";
import { CDKTF_TOKEN_PATTERN } from "./terraform-escape";
import { IgnitionResource } from "./types";

/** True if `text` holds a cdktf token (`${TfToken[...]}`), i.e. a value known only at apply time. */
export function hasToken(text: string): boolean {
  return new RegExp(CDKTF_TOKEN_PATTERN.source).test(text);
}

/**
 * Bytes Ignition's data URL parser refuses unescaped (RFC 2396 "delims" and "unwise",
 * controls, space, non-ASCII: vincent-petithory/dataurl, which Ignition uses), and `%`
 * itself. Everything else stays as it is, so the text stays text and gzip, applied
 * to the whole boot config (ignition/user-data.ts), sees its repetitions.
 */
const URL_UNSAFE = /[\x00-\x20\x7f<>#"{}|\\^[\]`%]|[^\x00-\x7f]+/gu;

function percentEncode(text: string): string {
  return text.replace(URL_UNSAFE, (bytes) =>
    [...Buffer.from(bytes, "utf8")].map((b) => `%${b.toString(16).toUpperCase().padStart(2, "0")}`).join(""),
  );
}

/** `data:` URL for fully known `text`, percent-encoded (RFC 2397 without `;base64`). */
export function textSource(text: string): string {
  if (hasToken(text)) throw new Error("textSource: text holds a cdktf token; pass the whole file as `base64` (one Terraform expression)");
  return `data:,${percentEncode(text)}`;
}

/** `data:` URL whose base64 payload is a Terraform expression (a token) or a literal base64 string. */
export function base64Source(base64: string): string {
  return `data:;base64,${base64}`;
}

/**
 * Inline contents for fully known `text`. Not compressed file by file: the boot
 * config that holds it is gzip-compressed as a whole (ignition/user-data.ts), which
 * compresses far better than each file on its own and than base64 inside gzip.
 */
export function textResource(text: string): IgnitionResource {
  return { source: textSource(text) };
}

/**
 * gzip (RFC 1952) that gives the same bytes for the same input on every machine with
 * the same zlib: level 9, no name, mtime 0 (zlib's default for gzipSync), and the OS
 * byte set to 255 ("unknown") instead of the build platform's code.
 */
export function stableGzip(bytes: Buffer): Buffer {
  const gzipped = gzipSync(bytes, { level: 9 });
  if (gzipped.readUInt32LE(4) !== 0) throw new Error("stableGzip: zlib wrote a modification time into the gzip header");
  gzipped[9] = 255;
  return gzipped;
}
