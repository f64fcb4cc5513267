/**
 * Strict validation of Calico and operator documents, each against two schemas:
 * - the CRD that serves its kind in the pinned v3_projectcalico_org.yaml (the file nodes
 *   download and apply: the native projectcalico.org/v3 CRDs and the operator's),
 *   made strict as kubectl's field validation is, with its apiVersion fixed, so a
 *   document of another group or version, or with a field that release lacks, fails;
 * - the reference schema of its kind when there is one: reference/schemas/calico (the
 *   recipe in its README: ajv + ajv-formats + a `cidr` format), or for BGPFilter the
 *   hand-written __tests__/support/bgpfilter.schema.json. They translate the CRDs' CEL
 *   rules, which the CRD schema alone cannot check here.
 * Schemas are compiled once per kind (Installation takes about a second).
 * The schemas live in reference/ (reference/README.md).
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

/** The pinned native CRDs, as nodes download them (lib/versions.ts CALICO.v3Crds). */
export const V3_CRDS_FILE = referencePath("upstream", "calico-v3.32.1", "v3_projectcalico_org.yaml");

let crds: Record<string, any>[] | undefined;
/** Every CRD of the pinned file. */
export function v3Crds(): Record<string, any>[] {
  crds ??= YAML.parseAllDocuments(fs.readFileSync(V3_CRDS_FILE, "utf8"))
    .map((d) => d.toJS())
    .filter((d) => d?.kind === "CustomResourceDefinition");
  return crds;
}

const validators: Record<string, ValidateFunction[]> = {};

/** Go's `(?i)` has no JavaScript spelling in a pattern: each letter becomes a class of both cases. */
function caseInsensitive(pattern: string): string {
  if (!pattern.startsWith("^(?i)")) return pattern;
  return "^" + pattern.slice(5).replace(/\\.|\[[^\]]*\]|[A-Za-z]/g, (t) => (t.length === 1 ? `[${t.toUpperCase()}${t.toLowerCase()}]` : t));
}

/**
 * The storage version's openAPIV3Schema of the CRD serving `kind`, made strict the way
 * `kubectl apply` with strict field validation is: no field the schema does not declare.
 * As the API server reads them: an int-or-string node takes either (its pattern applies to
 * strings), and a `(?i)` pattern ignores case.
 */
function strictSchemaFromCrd(kind: string): object | undefined {
  const crd = v3Crds().find((d) => d.spec.names.kind === kind);
  if (!crd) return undefined;
  const version = crd.spec.versions.find((v: any) => v.storage);
  const strict = (node: any): any => {
    if (Array.isArray(node)) return node.map(strict);
    if (!node || typeof node !== "object") return node;
    const out: any = {};
    for (const [k, v] of Object.entries(node)) if (!k.startsWith("x-kubernetes-")) out[k] = k === "properties" ? Object.fromEntries(Object.entries(v as object).map(([p, s]) => [p, strict(s)])) : strict(v);
    if (typeof out.pattern === "string") out.pattern = caseInsensitive(out.pattern);
    if (out.type === "object" && out.properties && out.additionalProperties === undefined) out.additionalProperties = false;
    if (node["x-kubernetes-int-or-string"]) {
      const { type: _type, pattern, ...rest } = out;
      return { ...rest, anyOf: [{ type: "integer" }, { type: "string", ...(pattern ? { pattern } : {}) }] };
    }
    return out;
  };
  const schema = strict(version.schema.openAPIV3Schema);
  // The only apiVersion this CRD serves; metadata is the API server's to check.
  schema.properties.apiVersion = { const: `${crd.spec.group}/${version.name}` };
  schema.properties.kind = { const: kind };
  schema.properties.metadata = { type: "object" };
  schema.required = [...new Set(["apiVersion", "kind", ...(schema.required ?? [])])];
  return schema;
}

function referenceSchema(kind: string): object | undefined {
  const file = kind === "BGPFilter" ? path.join(__dirname, "bgpfilter.schema.json") : referencePath("schemas", "calico", `${kind}.schema.json`);
  return fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, "utf8")) : undefined;
}

export function calicoValidators(kind: string): ValidateFunction[] {
  if (!validators[kind]) {
    const fromCrd = strictSchemaFromCrd(kind);
    if (!fromCrd) throw new Error(`no CRD serves kind ${kind} in ${path.basename(V3_CRDS_FILE)}`);
    const reference = referenceSchema(kind);
    validators[kind] = [fromCrd, ...(reference ? [reference] : [])].map((s) => ajv.compile(s));
  }
  return validators[kind];
}

/** Errors of `doc` against its kind's schemas, or [] when valid. */
export function calicoErrors(doc: Record<string, any>): string[] {
  if (!v3Crds().some((d) => d.spec.names.kind === doc.kind)) return [`${doc.kind}/${doc.metadata?.name}: no CRD serves kind ${doc.kind}`];
  return calicoValidators(doc.kind)
    .filter((validate) => !validate(doc as unknown))
    .map((validate) => `${doc.kind}/${doc.metadata?.name}: ${ajv.errorsText(validate.errors)}`);
}

/** Parses YAML the way kubectl does (YAML 1.1 scalars), every document. */
export function parseManifest(text: string): Record<string, any>[] {
  return YAML.parseAllDocuments(text, { version: "1.1" }).map((d) => {
    if (d.errors.length > 0) throw d.errors[0];
    return d.toJS();
  });
}
