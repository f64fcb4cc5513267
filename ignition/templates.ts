/**
 * Unit files, scripts and config files that ship to nodes live as readable files
 * beside this module (units/, scripts/, files/) and are read at render time.
 * Their placeholders are `@NAME@` (upper case): few, named, and all required, so a
 * typo in a template or a missing value fails the render instead of a boot.
 */
import * as fs from "node:fs";
import * as path from "node:path";

const PLACEHOLDER = /@([A-Z][A-Z0-9_]*)@/g;

export class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TemplateError";
  }
}

/** Reads `relativePath` (below ignition/) and replaces every `@NAME@` with `values[NAME]`. */
export function renderTemplate(relativePath: string, values: Readonly<Record<string, string>> = {}): string {
  const text = fs.readFileSync(path.join(__dirname, relativePath), "utf8");
  const used = new Set<string>();
  const missing = new Set<string>();
  const out = text.replace(PLACEHOLDER, (whole, name: string) => {
    if (!(name in values)) {
      missing.add(name);
      return whole;
    }
    used.add(name);
    return values[name];
  });
  if (missing.size > 0) {
    throw new TemplateError(`template ${relativePath} needs a value for ${[...missing].map((n) => `@${n}@`).join(", ")}`);
  }
  const unused = Object.keys(values).filter((name) => !used.has(name));
  if (unused.length > 0) {
    throw new TemplateError(`template ${relativePath} has no placeholder ${unused.map((n) => `@${n}@`).join(", ")}`);
  }
  return out;
}
