/**
 * Strict validation of Calico and operator documents: reference/schemas/calico (the
 * recipe in its README: ajv + ajv-formats + a `cidr` format), and BGPFilter against
 * the hand-written __tests__/support/bgpfilter.schema.json (reference/ has none).
 * Schemas are compiled once per kind (Installation takes about a second).
 * The schemas live in reference/schemas (reference/README.md).
 */
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import Ajv, { ValidateFunction } from "ajv";
import addFormats from "ajv-formats";
import YAML from "yaml";
import { referencePath } from "./reference";

const ajv = new Ajv({ allErrors: true });
addFormats(ajv);
ajv.addFormat("cidr", (s: string) => {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s);
  const v = m && net.isIP(m[1]);
  return !!v && Number(m![2]) <= (v === 4 ? 32 : 128);
});

const validators: Record<string, ValidateFunction> = {};

function schemaFile(kind: string): string {
  if (kind === "BGPFilter") return path.join(__dirname, "bgpfilter.schema.json");
  return referencePath("schemas", "calico", `${kind}.schema.json`);
}

export function calicoValidator(kind: string): ValidateFunction {
  if (!validators[kind]) validators[kind] = ajv.compile(JSON.parse(fs.readFileSync(schemaFile(kind), "utf8")));
  return validators[kind];
}

/** Errors of `doc` against its kind's schema, or [] when valid. */
export function calicoErrors(doc: Record<string, any>): string[] {
  const validate = calicoValidator(doc.kind);
  if (validate(doc as unknown)) return [];
  return [`${doc.kind}/${doc.metadata?.name}: ${ajv.errorsText(validate.errors)}`];
}

/** Parses YAML the way kubectl does (YAML 1.1 scalars), every document. */
export function parseManifest(text: string): Record<string, any>[] {
  return YAML.parseAllDocuments(text, { version: "1.1" }).map((d) => {
    if (d.errors.length > 0) throw d.errors[0];
    return d.toJS();
  });
}
