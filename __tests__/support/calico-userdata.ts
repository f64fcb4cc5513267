/**
 * Reads the Calico add-on manifests back out of a synthesized device's user data, the
 * way Terraform and then Ignition would: Terraform template first (`$${` is a literal
 * `${`; `${...}` an expression, replaced here by a caller-chosen value), then the
 * Ignition JSON, then each file's data URL. Written independently of ignition/.
 */
import { parseTerraformTemplate } from "../../lib/terraform-template";
import { decodeDataUrl, IgnConfig, unpackMerges } from "./ignition";

export interface TemplateExpression {
  /** The expression text between `${` and `}`. */
  readonly expression: string;
}

/**
 * Evaluates the Terraform template `text` with `resolve` standing in for Terraform:
 * each `${expr}` becomes resolve(expr), `$${` becomes `${`, `%%{` becomes `%{`.
 */
export function evaluateTemplate(text: string, resolve: (expression: string) => string): string {
  return parseTerraformTemplate(text)
    .map((part) => {
      if ("literal" in part) return part.literal;
      if (part.kind === "directive") throw new Error(`unexpected Terraform directive %{${part.expression}}`);
      return resolve(part.expression);
    })
    .join("");
}

/** Every `${...}` expression in a Terraform template. */
export function templateExpressions(text: string): string[] {
  const found: string[] = [];
  evaluateTemplate(text, (e) => {
    found.push(e);
    return "";
  });
  return found;
}

export interface IgnitionFileOut {
  readonly path: string;
  readonly mode?: number;
  readonly source: string;
  readonly compression?: string;
  readonly hash?: string;
}

/** The files of a device's Ignition after Terraform evaluation with `resolve`. */
export function ignitionFiles(userData: string, resolve: (expression: string) => string): IgnitionFileOut[] {
  const config = unpackMerges(JSON.parse(evaluateTemplate(userData, resolve)) as IgnConfig);
  return (config.storage?.files ?? []).map((f: any) => ({
    path: f.path,
    mode: f.mode,
    source: f.contents?.source ?? "",
    compression: f.contents?.compression,
    hash: f.contents?.verification?.hash,
  }));
}

/** A file's text (data URLs only). */
export function fileText(file: IgnitionFileOut): string {
  return decodeDataUrl(file.source, file.compression).toString("utf8");
}
