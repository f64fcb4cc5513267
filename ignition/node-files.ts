/**
 * How a file's contents travel inside Ignition: as a `data:` URL (RFC 2397) in the
 * config itself, or as a remote URL Ignition downloads and checks against a hash.
 *
 * Text that holds cdktf tokens (Terraform references to apply-time secrets such as
 * the bootstrap token) cannot be base64-encoded here: the value does not exist
 * yet. Its literal parts are percent-encoded and the tokens stay raw, so Terraform
 * splices the value in at apply time. That is only sound for values that are
 * URL-safe (a bootstrap token is [a-z0-9.]); anything else must come as `base64`,
 * one Terraform expression yielding the whole file base64-encoded.
 */
import { gzipSync } from "node:zlib";
import { CDKTF_TOKEN_PATTERN } from "./terraform-escape";
import { IgnitionResource } from "./types";

/** True if `text` holds a cdktf token (`${TfToken[...]}`), i.e. a value known only at apply time. */
export function hasToken(text: string): boolean {
  return new RegExp(CDKTF_TOKEN_PATTERN.source).test(text);
}

/**
 * Characters left as they are in a percent-encoded data URL: RFC 3986 unreserved
 * characters plus `:`, `@`, `=` and `/`, which are frequent in config files and mean
 * nothing in the data part. Everything else is encoded: `%`, `$`, `{` and `}` (no
 * Terraform template syntax can form), `+` (some decoders read it as a space), `,`
 * and `;` (data URL delimiters), spaces and newlines.
 */
const URL_SAFE = /[A-Za-z0-9\-._~:@=/]/;

function percentEncode(text: string): string {
  let out = "";
  for (const byte of Buffer.from(text, "utf8")) {
    const char = String.fromCharCode(byte);
    out += byte < 0x80 && URL_SAFE.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** `data:` URL for `text`: base64 when it is fully known, percent-encoded around raw tokens when it holds any. */
export function textSource(text: string): string {
  if (!hasToken(text)) return `data:;base64,${Buffer.from(text, "utf8").toString("base64")}`;
  const tokens = new RegExp(CDKTF_TOKEN_PATTERN.source, "g");
  let out = "data:,";
  let last = 0;
  for (const match of text.matchAll(tokens)) {
    out += percentEncode(text.slice(last, match.index)) + match[0];
    last = (match.index ?? 0) + match[0].length;
  }
  return out + percentEncode(text.slice(last));
}

/** `data:` URL whose base64 payload is a Terraform expression (a token) or a literal base64 string. */
export function base64Source(base64: string): string {
  return `data:;base64,${base64}`;
}

/**
 * Inline contents for `text`. Fully known text longer than a few hundred bytes is
 * gzip-compressed when that is smaller (Ignition's `compression: gzip`; the
 * scripts shrink to about a third), to keep user data small. Text with tokens
 * cannot be compressed here: part of it is only known at apply time.
 */
export function textResource(text: string): IgnitionResource {
  if (!hasToken(text) && Buffer.byteLength(text, "utf8") > GZIP_MIN_BYTES) {
    // level 9 and no file name or time in the header: the same text always gives the same bytes.
    const gzipped = gzipSync(Buffer.from(text, "utf8"), { level: 9 });
    const plain = textSource(text);
    const compressed = `data:;base64,${gzipped.toString("base64")}`;
    if (compressed.length < plain.length) return { source: compressed, compression: "gzip" };
    return { source: plain };
  }
  return { source: textSource(text) };
}

const GZIP_MIN_BYTES = 256;
