/**
 * Inputs for renderNodeIgnition tests that do not depend on lib/kubeadm.ts: a small
 * kubeadm YAML per role with the address placeholders, the kinds of files the
 * constructs pass (PKI and a joining node's own key as base64 expressions, a discovery
 * kubeconfig, add-on manifests).
 */
import { BootRole, NODE_PATHS, NodeIgnitionInput } from "../../ignition";
import { BOOT_VALUES } from "../../lib/boot-values";
import { DEFAULT_KUBERNETES_VERSION, KUBERNETES_RELEASES } from "../../lib/versions";

/** Shaped like the strings cdktf puts where a Terraform reference will go. */
export const TOKEN = "${TfToken[TOKEN.42]}";
export const BASE64_TOKEN = "${TfToken[TOKEN.43]}";
/** Stands for Fn.base64gzip(node key PEM): a joining node's own key file, whole. */
export const BASE64_NODE_KEY = "${TfToken[TOKEN.44]}";

export function kubeadmFixture(role: BootRole): string {
  const nodeRegistration = [
    "nodeRegistration:",
    "  kubeletExtraArgs:",
    "    - name: node-ip",
    `      value: "${BOOT_VALUES.nodeIpv6}"`,
  ];
  if (role === "init") {
    return [
      "apiVersion: kubeadm.k8s.io/v1beta4",
      "kind: InitConfiguration",
      "bootstrapTokens:",
      '  - ttl: "15m0s"',
      ...nodeRegistration,
      "localAPIEndpoint:",
      `  advertiseAddress: "${BOOT_VALUES.nodeIpv6}"`,
      "---",
      "apiVersion: kubeadm.k8s.io/v1beta4",
      "kind: ClusterConfiguration",
      'controlPlaneEndpoint: "[2001:db8:0:ab02::1]:443"',
      "",
    ].join("\n");
  }
  return [
    "apiVersion: kubeadm.k8s.io/v1beta4",
    "kind: JoinConfiguration",
    "discovery:",
    "  file:",
    "    kubeConfigPath: /etc/kubernetes/discovery/kubeconfig",
    ...nodeRegistration,
    ...(role === "control-plane" ? ["controlPlane:", "  localAPIEndpoint:", `    advertiseAddress: "${BOOT_VALUES.nodeIpv6}"`] : []),
    "",
  ].join("\n");
}

export const ADDON = "/etc/kubernetes/addons/10-example.yaml";

export function fixtureInput(role: BootRole, hostname = role === "worker" ? "v6fabric-worker-01" : "v6fabric-cp-1"): NodeIgnitionInput {
  const pki =
    role === "worker"
      ? []
      : [
          { path: "/etc/kubernetes/pki/ca.crt", mode: 0o644, base64: BASE64_TOKEN },
          { path: "/etc/kubernetes/pki/ca.key", mode: 0o600, base64: BASE64_TOKEN },
        ];
  return {
    hostname,
    role,
    kubernetes: KUBERNETES_RELEASES[DEFAULT_KUBERNETES_VERSION],
    kubeadmConfig: kubeadmFixture(role),
    apiPath: { kubernetesServiceIp: "2001:db8:0:ab02::1", port: 443 },
    files: [
      ...(role === "init" ? [] : [{ path: NODE_PATHS.apiServers, mode: 0o644, base64: BASE64_TOKEN }]),
      ...(role === "init" ? [] : [{ path: "/etc/kubernetes/discovery/node.key", mode: 0o600, base64: BASE64_NODE_KEY }]),
      ...pki,
      { path: "/etc/kubernetes/discovery/kubeconfig", mode: 0o644, text: "apiVersion: v1\nkind: Config\nclusters: []\n" },
      ...(role === "init"
        ? [
            {
              path: ADDON,
              mode: 0o644,
              text: `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: example\n  namespace: kube-system\ndata:\n  routerId: "${BOOT_VALUES.nodePrivateIpv4}"\n`,
            },
          ]
        : []),
    ],
    addonManifests: role === "init" ? [ADDON] : undefined,
  };
}
