/**
 * Strict validation of kubeadm, kubelet and kube-proxy documents against the schemas in
 * reference/schemas/kubeadm, parsing YAML the way kubeadm does (YAML 1.1, go-yaml v2
 * keeps timestamps and sexagesimals as strings), following that directory's README.
 * The schemas live in reference/schemas (reference/README.md).
 */
import * as fs from "node:fs";
import Ajv, { ValidateFunction } from "ajv";
import YAML from "yaml";
import { referencePath } from "./reference";

const YAML_1_1 = {
  version: "1.1" as const,
  customTags: (tags: YAML.Tags) =>
    tags.filter((t) => typeof t !== "object" || (t.tag !== "tag:yaml.org,2002:timestamp" && (t as { format?: string }).format !== "TIME")),
};

let validators: Record<string, ValidateFunction> | undefined;

function loadValidators(): Record<string, ValidateFunction> {
  if (validators) return validators;
  const dir = referencePath("schemas", "kubeadm");
  const ajv = new Ajv({ allErrors: true, strict: true });
  const byKind: Record<string, ValidateFunction> = {};
  for (const name of fs.readdirSync(dir).filter((n) => n.endsWith(".schema.json"))) {
    const schema = JSON.parse(fs.readFileSync(`${dir}/${name}`, "utf8"));
    byKind[`${schema.properties.apiVersion.const}/${schema.properties.kind.const}`] = ajv.compile(schema);
  }
  validators = byKind;
  return byKind;
}

/** Parses a multi-document YAML file as kubeadm would (YAML 1.1); throws on syntax errors and duplicate keys. */
export function parseYaml11Documents(text: string): Record<string, any>[] {
  const out: Record<string, any>[] = [];
  for (const doc of YAML.parseAllDocuments(text, YAML_1_1)) {
    if (doc.errors.length > 0) throw doc.errors[0];
    const value = doc.toJS();
    if (value != null) out.push(value);
  }
  return out;
}

/**
 * Validates every document of a kubeadm config file strictly. Returns the parsed
 * documents; throws with every schema error (naming unknown keys) otherwise.
 */
export function validateKubeadmFile(text: string): Record<string, any>[] {
  const byKind = loadValidators();
  const documents = parseYaml11Documents(text);
  const kinds = new Set<string>();
  const problems: string[] = [];
  for (const document of documents) {
    const kind: string = document.kind;
    const gvk = `${document.apiVersion}/${kind}`;
    const validate = byKind[gvk];
    if (!validate) {
      problems.push(`unknown kind ${gvk}`);
      continue;
    }
    if (kinds.has(kind)) problems.push(`kind ${kind} appears twice`);
    kinds.add(kind);
    if (!validate(document)) {
      for (const e of validate.errors ?? []) {
        problems.push(`${kind}: ${e.instancePath || "/"} ${e.message} ${(e.params as { additionalProperty?: string }).additionalProperty ?? ""}`.trim());
      }
    }
  }
  if (problems.length > 0) throw new Error(`kubeadm config is not valid:\n${problems.join("\n")}`);
  return documents;
}
