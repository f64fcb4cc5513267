/**
 * Reading Terraform template strings: the inverse of ignition/terraform-escape.ts.
 *
 * Synthesized user data holds `${...}` interpolations (apply-time secrets) and the
 * escapes `$${` / `%%{` for literal text. Tests substitute stand-in values, and the
 * report and PR diff show the references. All of them split strings here, so the
 * rules (nesting, quoted strings, escapes) live in one place.
 */

/** A piece of a Terraform string: literal text, or the source of one `${...}` / `%{...}`. */
export type TemplatePart =
  | { readonly literal: string }
  | { readonly expression: string; readonly kind: "interpolation" | "directive" };

export class TerraformTemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TerraformTemplateError";
  }
}

/**
 * Splits `text` into literals and template sequences. Braces inside quoted strings
 * do not count (`${join("}", ...)}`); escapes become literal `${` / `%{`. Throws on
 * an unterminated sequence.
 */
export function parseTerraformTemplate(text: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let literal = "";
  let i = 0;
  while (i < text.length) {
    if (text.startsWith("$${", i) || text.startsWith("%%{", i)) {
      literal += text.slice(i + 1, i + 3);
      i += 3;
      continue;
    }
    if (text.startsWith("${", i) || text.startsWith("%{", i)) {
      const end = closingBrace(text, i + 2);
      if (end < 0) throw new TerraformTemplateError(`unterminated Terraform expression at ${i}: ${text.slice(i, i + 40)}`);
      if (literal) parts.push({ literal });
      literal = "";
      parts.push({ expression: text.slice(i + 2, end), kind: text[i] === "$" ? "interpolation" : "directive" });
      i = end + 1;
      continue;
    }
    literal += text[i];
    i++;
  }
  if (literal) parts.push({ literal });
  return parts;
}

/** Index of the `}` that closes a sequence whose body starts at `start`, or -1. */
function closingBrace(text: string, start: number): number {
  let depth = 1;
  let quoted = false;
  for (let j = start; j < text.length; j++) {
    const c = text[j];
    if (quoted) {
      if (c === "\\") j++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === "{") depth++;
    else if (c === "}" && --depth === 0) return j;
  }
  return -1;
}
