/**
 * The in-cluster objects the settings control, as the configuration stack keeps them
 * (constructs/cluster-config-stack.ts): taken from the very manifests the init node's
 * user data carries, so the stack and first boot can never disagree on a value.
 *
 * Pure: typed input to typed output, no cdktf.
 */
import YAML from "yaml";
import { AddonManifest } from "./calico";

/**
 * The field manager first boot applies with (ignition/scripts/apply-addons.sh,
 * `kubectl apply --server-side --field-manager=...`) and the configuration stack's
 * kubernetes_manifest resources use too: one server-side-apply owner of every field
 * across the handover, so the two writers never conflict with each other.
 */
export const ADDON_FIELD_MANAGER = "v6fabric-addons";

export interface KubernetesObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly [key: string]: unknown };
  readonly [key: string]: unknown;
}

/**
 * Fields the API server refuses to change once set, by `<apiVersion>/<kind>`: a new value
 * there means a new object, which the stack makes by replacing the old one. IPPool: the
 * pinned v3 CRD's `self == oldSelf` rules (reference/upstream/calico-v3.32.1, checked by a
 * test); RoleBinding: RBAC's validation refuses a changed roleRef.
 */
export const IMMUTABLE_FIELDS: Readonly<Record<string, readonly (readonly string[])[]>> = {
  "projectcalico.org/v3/IPPool": [
    ["spec", "cidr"],
    ["spec", "blockSize"],
  ],
  "rbac.authorization.k8s.io/v1/RoleBinding": [["roleRef"]],
};

export interface ConfigObject {
  /** Stable and unique within the stack (`<kind>-[<namespace>-]<name>`): the construct ID. */
  readonly id: string;
  /** The init node's file the object is in (first boot applies that file). */
  readonly manifestPath: string;
  readonly object: KubernetesObject;
  /** The kubernetes provider's import ID (`apiVersion=...,kind=...,[namespace=...,]name=...`). */
  readonly importId: string;
  /**
   * Where the object holds the secret its file ends with (the BGP password Secret's
   * `data.password`): the stack puts the base64 of its sensitive variable there.
   */
  readonly secretPath?: readonly string[];
  /** Its IMMUTABLE_FIELDS and their values (dotted path -> JSON), when its kind has any. */
  readonly immutable?: Readonly<Record<string, string>>;
}

export class ClusterConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ClusterConfigError";
  }
}

/**
 * Downloaded first-boot manifests (Calico's CRDs and operator) stay first boot's alone:
 * they are pinned releases, not settings, and their size (megabytes of CRDs) would sit
 * in every plan. The others are kept, the one written around a secret (the BGP password,
 * lib/calico.ts bgpPasswordManifestPrefix) with a slot for the secret's value.
 */
export function isKeptByConfigStack(manifest: AddonManifest): manifest is { readonly path: string; readonly yaml: string } | { readonly path: string; readonly secretPrefix: string } {
  return "yaml" in manifest || "secretPrefix" in manifest;
}

/**
 * Stands for the secret's base64 at the end of a secret manifest while it is parsed; the
 * object records where it was (ConfigObject.secretPath), never a value.
 */
const SECRET_SLOT = "V6FABRIC-SECRET-SLOT";

/**
 * Every object of the first-boot manifests the configuration stack keeps, in apply order.
 * YAML is read as 1.1, as it was written (lib/yaml.ts) and as kubectl reads it.
 */
export function configurationObjects(manifests: readonly AddonManifest[]): ConfigObject[] {
  const objects: ConfigObject[] = [];
  const seen = new Map<string, string>();
  for (const manifest of manifests.filter(isKeptByConfigStack)) {
    const text = "yaml" in manifest ? manifest.yaml : `${manifest.secretPrefix}${SECRET_SLOT}\n`;
    for (const doc of YAML.parseAllDocuments(text, { version: "1.1" })) {
      if (doc.errors.length > 0) throw new ClusterConfigError(`${manifest.path}: ${doc.errors[0].message}`);
      const object = doc.toJS() as KubernetesObject | null;
      if (object === null) continue;
      if (!object.apiVersion || !object.kind || !object.metadata?.name) {
        throw new ClusterConfigError(`${manifest.path}: a document without apiVersion, kind and metadata.name`);
      }
      const id = objectId(object);
      const earlier = seen.get(id);
      if (earlier !== undefined) throw new ClusterConfigError(`${manifest.path}: ${id} is also in ${earlier}`);
      seen.set(id, manifest.path);
      const immutable = immutableValues(object);
      const secretPath = pathOf(object, SECRET_SLOT);
      objects.push({ id, manifestPath: manifest.path, object, importId: importId(object), ...(secretPath ? { secretPath } : {}), ...(immutable ? { immutable } : {}) });
    }
  }
  return objects;
}

/** `<kind>-[<namespace>-]<name>`, lower case, with anything but letters, digits and `-` as `-`. */
export function objectId(object: KubernetesObject): string {
  const parts = [object.kind, object.metadata.namespace, object.metadata.name].filter((p): p is string => !!p);
  return parts.join("-").toLowerCase().replace(/[^a-z0-9-]/g, "-");
}

/**
 * The ID `terraform import` takes for a kubernetes_manifest (the provider's
 * util.ParseResourceID: comma-separated key=value, namespace defaulting to "default").
 */
export function importId(object: KubernetesObject): string {
  const { apiVersion, kind, metadata } = object;
  return [`apiVersion=${apiVersion}`, `kind=${kind}`, ...(metadata.namespace ? [`namespace=${metadata.namespace}`] : []), `name=${metadata.name}`].join(",");
}

/** The object's IMMUTABLE_FIELDS, each as JSON (an absent field as null), or undefined for a kind without any. */
export function immutableValues(object: KubernetesObject): Record<string, string> | undefined {
  const fields = IMMUTABLE_FIELDS[`${object.apiVersion}/${object.kind}`];
  if (!fields) return undefined;
  const at = (path: readonly string[]) => path.reduce<unknown>((v, key) => (v !== null && typeof v === "object" ? (v as Record<string, unknown>)[key] : undefined), object);
  return Object.fromEntries(fields.map((path) => [path.join("."), JSON.stringify(at(path) ?? null)]));
}

/** The path of the string `value` inside `node`, or undefined. */
function pathOf(node: unknown, value: string, at: readonly string[] = []): readonly string[] | undefined {
  if (node === value) return at;
  if (node === null || typeof node !== "object") return undefined;
  for (const [key, child] of Object.entries(node)) {
    const found = pathOf(child, value, [...at, key]);
    if (found) return found;
  }
  return undefined;
}
