/**
 * Reads the Calico add-on manifests back out of a synthesized device's user data, the
 * way Terraform and then Ignition would: Terraform template first (`$${` is a literal
 * `${`; `${...}` an expression, replaced here by a caller-chosen value), then the
 * Ignition JSON, then each file's data URL. Written independently of ignition/.
 */
import { decodeDataUrl } from "./ignition";

export interface TemplateExpression {
  /** The expression text between `${` and `}`. */
  readonly expression: string;
}

/** Index just past the `}` that closes an expression starting at `start` (just after `${`). */
function expressionEnd(text: string, start: number): number {
  let depth = 1;
  let i = start;
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      // HCL string literal: skip it, honouring escapes and nested templates.
      i++;
      while (i < text.length && text[i] !== '"') {
        if (text[i] === "\\") i += 2;
        else if (text.startsWith("${", i)) i = expressionEnd(text, i + 2);
        else i++;
      }
      i++;
      continue;
    }
    if (c === "{") depth++;
    if (c === "}" && --depth === 0) return i + 1;
    i++;
  }
  throw new Error(`unterminated Terraform expression at ${start}`);
}

/**
 * Evaluates the Terraform template `text` with `resolve` standing in for Terraform:
 * each `${expr}` becomes resolve(expr), `$${` becomes `${`, `%%{` becomes `%{`.
 */
export function evaluateTemplate(text: string, resolve: (expression: string) => string): string {
  let out = "";
  let i = 0;
  while (i < text.length) {
    if (text.startsWith("$${", i) || text.startsWith("%%{", i)) {
      out += text.slice(i + 1, i + 3);
      i += 3;
    } else if (text.startsWith("${", i)) {
      const end = expressionEnd(text, i + 2);
      out += resolve(text.slice(i + 2, end - 1));
      i = end;
    } else if (text.startsWith("%{", i)) {
      throw new Error(`unexpected Terraform directive at ${i}`);
    } else {
      out += text[i++];
    }
  }
  return out;
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
  const config = JSON.parse(evaluateTemplate(userData, resolve));
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
