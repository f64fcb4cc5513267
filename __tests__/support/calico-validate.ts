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

/** Kinds reference/schemas/calico has no schema for, checked against their CRD in the pinned operator-crds.yaml. */
const FROM_CRD = new Set(["IPAMConfig"]);

/**
 * A CRD's openAPIV3Schema made strict the way `kubectl apply` with strict field
 * validation is: no field the schema does not declare.
 */
function strictSchemaFromCrd(kind: string): object {
  const text = fs.readFileSync(referencePath("upstream", "calico-v3.32.1", "operator-crds.yaml"), "utf8");
  const crd = YAML.parseAllDocuments(text)
    .map((d) => d.toJS())
    .find((d) => d?.kind === "CustomResourceDefinition" && d.spec.group === "crd.projectcalico.org" && d.spec.names.kind === kind);
  if (!crd) throw new Error(`no crd.projectcalico.org CRD of kind ${kind} in operator-crds.yaml`);
  const strict = (node: any): any => {
    if (Array.isArray(node)) return node.map(strict);
    if (!node || typeof node !== "object") return node;
    const out: any = {};
    for (const [k, v] of Object.entries(node)) if (!k.startsWith("x-kubernetes-")) out[k] = k === "properties" ? Object.fromEntries(Object.entries(v as object).map(([p, s]) => [p, strict(s)])) : strict(v);
    if (out.type === "object" && out.properties && out.additionalProperties === undefined) out.additionalProperties = false;
    return out;
  };
  const schema = strict(crd.spec.versions.find((v: any) => v.storage).schema.openAPIV3Schema);
  // metadata is the API server's to check; the CRD leaves it open.
  schema.properties.metadata = { type: "object" };
  return schema;
}

function schemaFor(kind: string): object {
  if (FROM_CRD.has(kind)) return strictSchemaFromCrd(kind);
  const file = kind === "BGPFilter" ? path.join(__dirname, "bgpfilter.schema.json") : referencePath("schemas", "calico", `${kind}.schema.json`);
  return JSON.parse(fs.readFileSync(file, "utf8"));
}

export function calicoValidator(kind: string): ValidateFunction {
  if (!validators[kind]) validators[kind] = ajv.compile(schemaFor(kind));
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
