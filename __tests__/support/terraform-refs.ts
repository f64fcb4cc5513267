/**
 * Synthesized user data holds Terraform template syntax: references to apply-time
 * secrets (`${base64gzip(tls_private_key.ca.private_key_pem)}`) and escaped literals
 * (`$${`, `%%{`). To check the text with real tools, this does what Terraform will do
 * at apply time, with placeholder values of the right shape: base64 expressions yield
 * valid base64 of a PEM-shaped text (gzip'd first for base64gzip(), as Terraform does),
 * anything else a URL-safe word. Nothing is skipped: an unknown construct throws.
 */
import { gzipSync } from "node:zlib";
import { parseTerraformTemplate } from "../../lib/terraform-template";

/** Shape-correct stand-ins for the values Terraform will splice in. */
export const REF_PLACEHOLDERS = {
  /** base64 of a small PEM-shaped text. */
  base64: Buffer.from("-----BEGIN PLACEHOLDER-----\nAAAA\n-----END PLACEHOLDER-----\n").toString("base64"),
  other: "terraform-reference",
} as const;

export interface ResolvedRefs {
  readonly text: string;
  /** Every Terraform expression found, in order (for assertions on what was referenced). */
  readonly expressions: readonly string[];
}

export interface ResolveOptions {
  /**
   * Size of the PEM text each base64 expression stands for. The default gives a short
   * valid value; size estimates pass the largest PEM the design expects.
   */
  readonly pemBytes?: number | ((expression: string) => number);
}

/** base64 of a PEM-shaped text of exactly `bytes` bytes. */
export function pemBase64(bytes: number): string {
  const head = "-----BEGIN PLACEHOLDER-----\n";
  const tail = "-----END PLACEHOLDER-----\n";
  const bodyLength = Math.max(0, bytes - head.length - tail.length);
  const body = "A".repeat(bodyLength).replace(/(.{64})/g, "$1\n").slice(0, bodyLength);
  return Buffer.from(head + body + tail).toString("base64");
}

/** The placeholder for one Terraform expression (the text between `${` and `}`). */
export function placeholderFor(expression: string, options: ResolveOptions = {}): string {
  const e = expression.trim();
  if (/^base64gzip\(/.test(e)) {
    // Terraform's base64gzip(): gzip, then base64, of a PEM-shaped text.
    const pem = Buffer.from(options.pemBytes === undefined ? REF_PLACEHOLDERS.base64 : pemBase64(typeof options.pemBytes === "number" ? options.pemBytes : options.pemBytes(e)), "base64");
    return gzipSync(pem).toString("base64");
  }
  if (/^base64encode\(/.test(e)) {
    if (options.pemBytes === undefined) return REF_PLACEHOLDERS.base64;
    return pemBase64(typeof options.pemBytes === "number" ? options.pemBytes : options.pemBytes(e));
  }
  return REF_PLACEHOLDERS.other;
}

/** Evaluates the Terraform template syntax of `text` with placeholder values. */
export function resolveTerraformRefs(text: string, options: ResolveOptions = {}): ResolvedRefs {
  let out = "";
  const expressions: string[] = [];
  for (const part of parseTerraformTemplate(text)) {
    if ("literal" in part) {
      out += part.literal;
    } else if (part.kind === "directive") {
      throw new Error(`Terraform template directive %{${part.expression}}: user data must not use them`);
    } else {
      expressions.push(part.expression);
      out += placeholderFor(part.expression, options);
    }
  }
  return { text: out, expressions };
}
