/**
 * What the cluster grants the node-local API path (docs/control-plane.md): each node's
 * api-path script reads the `kubernetes` EndpointSlice with the node's own kubelet
 * credentials, to learn control planes that were added or replaced after its user
 * data was written. Nodes (group `system:nodes`) may not read EndpointSlices by
 * default, so this Role grants exactly that one object, read-only. The addresses in
 * it are the control planes' public addresses, which are no secret.
 *
 * Pure: typed objects, serialized once.
 */
import { toYamlDocuments } from "./yaml";

/** Where the init node finds the manifest (applied with the other add-ons). */
export const API_PATH_ADDON_PATH = "/etc/kubernetes/addons/api-path/05-node-endpointslice-reader.yaml";

/** Name of the Role and its RoleBinding. */
export const API_PATH_READER = "v6fabric:node-api-path";

/** The EndpointSlice the API servers keep for the `kubernetes` Service (the slice is named after it). */
export const KUBERNETES_ENDPOINT_SLICE = { namespace: "default", name: "kubernetes" } as const;

export function apiPathReaderObjects(): object[] {
  const metadata = { name: API_PATH_READER, namespace: KUBERNETES_ENDPOINT_SLICE.namespace };
  return [
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata,
      rules: [{ apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], resourceNames: [KUBERNETES_ENDPOINT_SLICE.name], verbs: ["get"] }],
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata,
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: API_PATH_READER },
      subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "Group", name: "system:nodes" }],
    },
  ];
}

export function apiPathAddonManifest(): { readonly path: string; readonly yaml: string } {
  return { path: API_PATH_ADDON_PATH, yaml: toYamlDocuments(apiPathReaderObjects()) };
}
