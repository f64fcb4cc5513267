/**
 * Terraform reads `${...}` and `%{...}` in any string as template syntax. Rendered
 * files (shell scripts, units) use `${VAR}` for their own purposes, so literal
 * sequences are escaped as `$${` and `%%{` before the text becomes a Terraform string.
 *
 * cdktf tokens (`${TfToken[TOKEN.n]}`) are references the renderer put there on
 * purpose (apply-time secrets); they are left alone so cdktf can resolve them.
 */
/** A cdktf token as it appears in an unresolved string (cdktf's Token.isUnresolved finds the same). */
export const CDKTF_TOKEN_PATTERN = /\$\{TfToken\[[^\]]+\]\}/;
const CDKTF_TOKEN = new RegExp(CDKTF_TOKEN_PATTERN.source, "y");

export function escapeTerraformTemplate(text: string): string {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    CDKTF_TOKEN.lastIndex = i;
    const token = CDKTF_TOKEN.exec(text);
    if (token) {
      out += token[0];
      i += token[0].length - 1;
      continue;
    }
    const pair = text.slice(i, i + 2);
    if (pair === "${" || pair === "%{") {
      out += pair[0] + pair;
      i += 1;
      continue;
    }
    out += text[i];
  }
  return out;
}
