/**
 * How a file's contents travel inside Ignition: as a `data:` URL (RFC 2397) in the
 * config itself, or as a remote URL Ignition downloads and checks against a hash.
 *
 * `text` is known in full at synth, so it is base64-encoded (and gzip-compressed
 * when that is smaller). Apply-time secrets never sit inside such text: a file that
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

/** `data:` URL for fully known `text`, base64-encoded. */
export function textSource(text: string): string {
  if (hasToken(text)) throw new Error("textSource: text holds a cdktf token; pass the whole file as `base64` (one Terraform expression)");
  return `data:;base64,${Buffer.from(text, "utf8").toString("base64")}`;
}

/** `data:` URL whose base64 payload is a Terraform expression (a token) or a literal base64 string. */
export function base64Source(base64: string): string {
  return `data:;base64,${base64}`;
}

/**
 * Inline contents for fully known `text`. Text longer than a few hundred bytes is
 * gzip-compressed when that is smaller (Ignition's `compression: gzip`; the scripts
 * shrink to about a third), to keep user data small.
 */
export function textResource(text: string): IgnitionResource {
  const plain = textSource(text);
  if (Buffer.byteLength(text, "utf8") > GZIP_MIN_BYTES) {
    // level 9 and no file name or time in the header: the same text always gives the same bytes.
    const gzipped = gzipSync(Buffer.from(text, "utf8"), { level: 9 });
    const compressed = `data:;base64,${gzipped.toString("base64")}`;
    if (compressed.length < plain.length) return { source: compressed, compression: "gzip" };
  }
  return { source: plain };
}

const GZIP_MIN_BYTES = 256;
