/**
 * kubeadm configuration for every node, rendered per boot role as one multi-document
 * YAML file (/etc/kubernetes/kubeadm.yaml), plus the small kubeconfigs.
 *
 * Pure: no cdktf import, and no secret passes through here: keys and certificates
 * reach nodes as files of their own, which the kubeconfigs and configs only name.
 * Node addresses arrive as BOOT_VALUES placeholders that the node substitutes at boot.
 *
 * The design and its sources are in docs/control-plane.md. In short:
 * - the API endpoint of every client is the `kubernetes` Service ClusterIP on port 443,
 *   which Calico announces over BGP from every node;
 * - API servers listen on port 443 themselves, so the Service port, the endpoints' port
 *   and controlPlaneEndpoint agree and no port translation is needed anywhere;
 * - every node reaches that address through nftables rules of its own that send the
 *   host's connections straight to ready API servers (the node-local API path,
 *   ignition/scripts/api-path.sh), before kube-proxy or any CNI exists;
 * - joining nodes check the cluster CA through a discovery kubeconfig (`discovery.file`)
 *   and authenticate with a client certificate for their own node name only.
 */
import type { BootRole } from "../ignition";
import type { AddressPlan } from "./address-plan";
import { BOOT_VALUES } from "./boot-values";
import { toYaml, toYamlDocuments } from "./yaml";

// ---------------------------------------------------------------------------
// Constants other renderers (ignition, calico, policies, report) share with this one.
// ---------------------------------------------------------------------------

/**
 * Port of every kube-apiserver and of the `kubernetes` Service. The Service port is
 * always 443; with the API servers on 443 too, the node-local API path only rewrites the
 * address, and every client uses one URL (docs/control-plane.md, "Port 443").
 */
export const API_SERVER_PORT = 443;

/** Where the first-boot unit finds this file (issue 3 runs `kubeadm init|join --config` on it). */
export const KUBEADM_CONFIG_PATH = "/etc/kubernetes/kubeadm.yaml";

/** kubeadm's certificate directory (its default `certificatesDir`). */
export const PKI_DIR = "/etc/kubernetes/pki";

/**
 * Discovery material for joining nodes. Not under PKI_DIR: `kubeadm join` of a worker
 * fails its preflight check when /etc/kubernetes/pki/ca.crt already exists.
 */
export const DISCOVERY_DIR = "/etc/kubernetes/discovery";
export const DISCOVERY_KUBECONFIG_PATH = `${DISCOVERY_DIR}/kubeconfig`;
export const DISCOVERY_CA_PATH = `${DISCOVERY_DIR}/ca.crt`;
/**
 * The joining node's own client certificate and key, `system:node:<hostname>` in group
 * `system:nodes`, signed by the cluster CA in Terraform: its credentials for the TLS
 * bootstrap, named by the discovery kubeconfig (docs/control-plane.md, "Join credentials").
 */
export const DISCOVERY_NODE_CERT_PATH = `${DISCOVERY_DIR}/node.crt`;
export const DISCOVERY_NODE_KEY_PATH = `${DISCOVERY_DIR}/node.key`;

/**
 * The exact CA and key files a control plane needs before `kubeadm init` or
 * `kubeadm join --control-plane` so that no certificate key / upload-certs is needed
 * (kubernetes.io "Creating Highly Available Clusters with kubeadm", manual certificate
 * distribution). kubeadm generates every leaf certificate itself, with the right SANs.
 */
export const CONTROL_PLANE_PKI_FILES = {
  clusterCaCert: `${PKI_DIR}/ca.crt`,
  clusterCaKey: `${PKI_DIR}/ca.key`,
  frontProxyCaCert: `${PKI_DIR}/front-proxy-ca.crt`,
  frontProxyCaKey: `${PKI_DIR}/front-proxy-ca.key`,
  etcdCaCert: `${PKI_DIR}/etcd/ca.crt`,
  etcdCaKey: `${PKI_DIR}/etcd/ca.key`,
  serviceAccountKey: `${PKI_DIR}/sa.key`,
  serviceAccountPublicKey: `${PKI_DIR}/sa.pub`,
} as const;

/**
 * FlexVolume plugin directory for the kubelet and the controller manager. The kubelet
 * default (/usr/libexec/kubernetes/kubelet-plugins/volume/exec/) is on Flatcar's
 * read-only /usr. Typhoon's Flatcar modules use /var/lib/kubelet/volumeplugins. The
 * trailing slash is kept because Calico's `Installation.flexVolumePath` is concatenated
 * with a driver name and must end in "/" (tigera/operator core_controller.go).
 */
export const VOLUME_PLUGIN_DIR = "/var/lib/kubelet/volumeplugins/";

/** containerd's CRI socket on Flatcar (/usr/share/containerd/config.toml). */
export const CRI_SOCKET = "unix:///run/containerd/containerd.sock";

/**
 * Default resolv.conf for the kubelet (and so for pods with dnsPolicy Default, such as
 * CoreDNS). systemd-resolved's full list, not its 127.0.0.53 stub that pods cannot
 * reach. Pass the node's IPv6 resolver file instead when the host provides one: Metal's
 * resolvers are IPv4-only and IPv6-only pods cannot reach them.
 */
export const DEFAULT_RESOLV_CONF = "/run/systemd/resolve/resolv.conf";

/**
 * Run on the first control plane right after `kubeadm init` (its after-kubeadm hook):
 * deletes the bootstrap token kubeadm made, so no token exists in the cluster. No node
 * joins with one (docs/control-plane.md, "Join credentials").
 */
export const DELETE_BOOTSTRAP_TOKENS_COMMAND = "kubectl --kubeconfig /etc/kubernetes/admin.conf -n kube-system delete secret --field-selector type=bootstrap.kubernetes.io/token";

/** The group of every node's client certificate; the Node authorizer and NodeRestriction act on it. */
export const NODES_GROUP = "system:nodes";

/** The user name of a node's client certificate. */
export function nodeUser(hostname: string): string {
  return `system:node:${hostname}`;
}

/**
 * Group of the admin client certificate. kubeadm (1.29+) binds it to cluster-admin with
 * the ClusterRoleBinding `kubeadm:cluster-admins`, created during `kubeadm init` before
 * the API is reachable from outside. Unlike `system:masters`, which bypasses RBAC, the
 * binding can be deleted to revoke certificates issued to it.
 */
export const ADMIN_GROUP = "kubeadm:cluster-admins";
export const ADMIN_USER = "kubernetes-admin";

/** kube-proxy mode; see docs/control-plane.md ("kube-proxy") for why not nftables yet. */
export type ProxyMode = "iptables" | "nftables";

// ---------------------------------------------------------------------------
// Typed kubeadm v1beta4 / kubelet v1beta1 / kube-proxy v1alpha1 documents: only the
// fields this project sets. Field names are checked by the strict schemas in tests.
// ---------------------------------------------------------------------------

interface Arg {
  readonly name: string;
  readonly value: string;
}

interface NodeRegistrationOptions {
  readonly name: string;
  readonly criSocket: string;
  readonly kubeletExtraArgs: readonly Arg[];
}

interface APIEndpoint {
  readonly advertiseAddress: string;
  readonly bindPort: number;
}

/** A bootstrap token kubeadm makes up itself (no `token` given). */
interface BootstrapToken {
  readonly description: string;
  readonly ttl: string;
}

export interface InitConfiguration {
  readonly apiVersion: "kubeadm.k8s.io/v1beta4";
  readonly kind: "InitConfiguration";
  readonly bootstrapTokens: readonly BootstrapToken[];
  readonly nodeRegistration: NodeRegistrationOptions;
  readonly localAPIEndpoint: APIEndpoint;
}

export interface ClusterConfiguration {
  readonly apiVersion: "kubeadm.k8s.io/v1beta4";
  readonly kind: "ClusterConfiguration";
  readonly clusterName: string;
  readonly kubernetesVersion: string;
  readonly controlPlaneEndpoint: string;
  readonly encryptionAlgorithm: "ECDSA-P256";
  readonly networking: { readonly podSubnet: string; readonly serviceSubnet: string; readonly dnsDomain: string };
  readonly apiServer: { readonly certSANs: readonly string[]; readonly extraArgs: readonly Arg[] };
  readonly controllerManager: { readonly extraArgs: readonly Arg[] };
}

export interface JoinConfiguration {
  readonly apiVersion: "kubeadm.k8s.io/v1beta4";
  readonly kind: "JoinConfiguration";
  readonly nodeRegistration: NodeRegistrationOptions;
  readonly discovery: { readonly file: { readonly kubeConfigPath: string } };
  readonly controlPlane?: { readonly localAPIEndpoint: APIEndpoint };
  readonly timeouts: { readonly discovery: string };
}

export interface KubeletConfiguration {
  readonly apiVersion: "kubelet.config.k8s.io/v1beta1";
  readonly kind: "KubeletConfiguration";
  readonly cgroupDriver: "systemd";
  readonly address: string;
  readonly clusterDNS: readonly string[];
  readonly clusterDomain: string;
  readonly resolvConf: string;
  readonly volumePluginDir: string;
  readonly rotateCertificates: boolean;
}

export interface KubeProxyConfiguration {
  readonly apiVersion: "kubeproxy.config.k8s.io/v1alpha1";
  readonly kind: "KubeProxyConfiguration";
  readonly mode: ProxyMode;
  readonly bindAddress: string;
  readonly healthzBindAddress: string;
  readonly clusterCIDR: string;
}

export type KubeadmDocument = InitConfiguration | ClusterConfiguration | JoinConfiguration | KubeletConfiguration | KubeProxyConfiguration;

// ---------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------

export interface KubeadmClusterInput {
  readonly plan: AddressPlan;
  readonly clusterName: string;
  /** Without the leading "v", e.g. 1.36.3. */
  readonly kubernetesVersion: string;
  readonly clusterDomain: string;
  /**
   * resolv.conf the kubelet hands to pods with dnsPolicy Default (CoreDNS's upstreams).
   * @default DEFAULT_RESOLV_CONF
   */
  readonly resolvConf?: string;
  /**
   * kube-proxy mode.
   * @default "iptables"
   */
  readonly proxyMode?: ProxyMode;
}

export interface KubeadmNodeInput extends KubeadmClusterInput {
  readonly role: BootRole;
  /** RFC 1123 hostname, also the Kubernetes node name. */
  readonly hostname: string;
}

// ---------------------------------------------------------------------------
// Endpoints and SANs
// ---------------------------------------------------------------------------

/** `[ClusterIP]:443`: kubeadm's controlPlaneEndpoint (host:port, IPv6 in brackets). */
export function controlPlaneEndpoint(plan: AddressPlan): string {
  return `[${plan.kubernetesServiceIp}]:${API_SERVER_PORT}`;
}

/** `https://[ClusterIP]:443`: the API URL every kubeconfig uses. */
export function apiServerUrl(plan: AddressPlan): string {
  return `https://${controlPlaneEndpoint(plan)}`;
}

/** Direct URL of one API server, for a node address known only after apply. */
export function directApiServerUrl(nodeIpv6: string): string {
  return `https://[${nodeIpv6}]:${API_SERVER_PORT}`;
}

/**
 * Extra names and addresses for the API server certificate. kubeadm adds the node's
 * hostname, its advertise address, the first Service IP and kubernetes.default.svc.<domain>
 * itself; they are listed again so the certificate does not depend on those defaults and
 * tests can see every endpoint the design uses. `::1`/`localhost` let an operator on a
 * control plane use https://[::1]:443 when nothing else works.
 */
export function apiServerCertSans(plan: AddressPlan, clusterDomain: string): string[] {
  return [
    plan.kubernetesServiceIp,
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    `kubernetes.default.svc.${clusterDomain}`,
    "::1",
    "localhost",
  ];
}

// ---------------------------------------------------------------------------
// Documents
// ---------------------------------------------------------------------------

/**
 * With this label set to "true", Calico announces none of the node's Service routes
 * (confd client.go ExcludeServiceAdvertisement). Nodes register with it, and the
 * service-announcement unit removes it once the node's kube-proxy answers (ignition/).
 */
export const EXCLUDE_FROM_SERVICE_ANNOUNCEMENTS_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers";

function nodeRegistration(hostname: string): NodeRegistrationOptions {
  return {
    name: hostname,
    criSocket: CRI_SOCKET,
    kubeletExtraArgs: [
      // node-ip has no KubeletConfiguration field. Without it the kubelet may report the
      // private IPv4 first (docs/facts.md); Calico's NodeInternalIP autodetection
      // and the API server's kubelet connections rely on the public IPv6 here.
      { name: "node-ip", value: BOOT_VALUES.nodeIpv6 },
      // A new node announces no Service route until its kube-proxy works (the routers
      // would send it traffic it cannot forward). kubelets may set node.kubernetes.io/
      // labels on themselves (NodeRestriction).
      { name: "node-labels", value: `${EXCLUDE_FROM_SERVICE_ANNOUNCEMENTS_LABEL}=true` },
    ],
  };
}

function localApiEndpoint(): APIEndpoint {
  return { advertiseAddress: BOOT_VALUES.nodeIpv6, bindPort: API_SERVER_PORT };
}

export function initConfiguration(input: KubeadmNodeInput): InitConfiguration {
  return {
    apiVersion: "kubeadm.k8s.io/v1beta4",
    kind: "InitConfiguration",
    // No node joins with a token: each has its own client certificate from Terraform
    // (docs/control-plane.md, "Join credentials"). kubeadm's bootstrap-token phase still
    // runs, for the RBAC that approves a node's requests for its own name, and makes a
    // token when none is given; this one is random, known to nobody, deleted by the init
    // node right after init, and would expire by itself soon after.
    bootstrapTokens: [{ description: "unused: made by kubeadm init and deleted right after it (v6fabric)", ttl: "15m0s" }],
    nodeRegistration: nodeRegistration(input.hostname),
    localAPIEndpoint: localApiEndpoint(),
  };
}

export function clusterConfiguration(input: KubeadmClusterInput): ClusterConfiguration {
  const { plan } = input;
  return {
    apiVersion: "kubeadm.k8s.io/v1beta4",
    kind: "ClusterConfiguration",
    clusterName: input.clusterName,
    kubernetesVersion: `v${input.kubernetesVersion.replace(/^v/, "")}`,
    controlPlaneEndpoint: controlPlaneEndpoint(plan),
    // The CAs made in Terraform are ECDSA P-256; leaf certificates match them.
    encryptionAlgorithm: "ECDSA-P256",
    networking: {
      podSubnet: plan.podCidr.toString(),
      serviceSubnet: plan.serviceCidr.toString(),
      dnsDomain: input.clusterDomain,
    },
    apiServer: {
      certSANs: apiServerCertSans(plan, input.clusterDomain),
      // "::" listens on every address: the node's IPv6 and, on control planes, the
      // ClusterIP on lo.
      extraArgs: [{ name: "bind-address", value: "::" }],
    },
    controllerManager: {
      extraArgs: [
        // Calico IPAM hands out pod blocks; node.spec.podCIDR would be unused, and the
        // default IPv6 node mask (/64) cannot be cut from a /64 podSubnet. With exactly
        // "false" kubeadm also skips its podSubnet-vs-node-mask check.
        { name: "allocate-node-cidrs", value: "false" },
        // Same writable directory as the kubelet's volumePluginDir (kubeadm mounts it).
        { name: "flex-volume-plugin-dir", value: VOLUME_PLUGIN_DIR },
      ],
    },
  };
}

export function kubeletConfiguration(input: KubeadmClusterInput): KubeletConfiguration {
  return {
    apiVersion: "kubelet.config.k8s.io/v1beta1",
    kind: "KubeletConfiguration",
    // Flatcar's containerd runs runc with SystemdCgroup = true.
    cgroupDriver: "systemd",
    // The default 0.0.0.0 would listen on IPv4 only; the API server reaches kubelets on IPv6.
    address: "::",
    clusterDNS: [input.plan.clusterDnsIp],
    clusterDomain: input.clusterDomain,
    resolvConf: input.resolvConf ?? DEFAULT_RESOLV_CONF,
    volumePluginDir: VOLUME_PLUGIN_DIR,
    rotateCertificates: true,
  };
}

export function kubeProxyConfiguration(input: KubeadmClusterInput): KubeProxyConfiguration {
  return {
    apiVersion: "kubeproxy.config.k8s.io/v1alpha1",
    kind: "KubeProxyConfiguration",
    mode: input.proxyMode ?? "iptables",
    bindAddress: "::",
    healthzBindAddress: `[::]:10256`,
    // Traffic to a ClusterIP from outside the pod range is masqueraded. The API endpoint
    // relies on it: a node or operator reaching ClusterIP:443 through another node gets
    // the replies back through that node.
    clusterCIDR: input.plan.podCidr.toString(),
  };
}

export function joinConfiguration(input: KubeadmNodeInput): JoinConfiguration {
  return {
    apiVersion: "kubeadm.k8s.io/v1beta4",
    kind: "JoinConfiguration",
    nodeRegistration: nodeRegistration(input.hostname),
    discovery: {
      // The discovery kubeconfig names the cluster CA, which kubeadm checks the API
      // server's certificate against, and this node's own client certificate, which
      // kubeadm embeds into the kubelet's bootstrap kubeconfig (no tlsBootstrapToken).
      file: { kubeConfigPath: DISCOVERY_KUBECONFIG_PATH },
    },
    ...(input.role === "control-plane" ? { controlPlane: { localAPIEndpoint: localApiEndpoint() } } : {}),
    // Nodes boot in parallel with the first control plane; discovery waits for it (and
    // for Calico to announce the Service range) instead of failing after 5 minutes. The
    // kubeadm unit restarts a join that still times out; its TimeoutStartSec stays above
    // the whole join (docs/control-plane.md, "Retries"), so systemd never kills one half way.
    timeouts: { discovery: "20m0s" },
  };
}

/** The documents of one node's kubeadm.yaml, in the order kubeadm expects them. */
export function kubeadmDocuments(input: KubeadmNodeInput): KubeadmDocument[] {
  if (input.role === "init") {
    return [initConfiguration(input), clusterConfiguration(input), kubeletConfiguration(input), kubeProxyConfiguration(input)];
  }
  return [joinConfiguration(input)];
}

/** /etc/kubernetes/kubeadm.yaml for one node, with BOOT_VALUES placeholders. */
export function renderKubeadmConfig(input: KubeadmNodeInput): string {
  return toYamlDocuments(kubeadmDocuments(input));
}

// ---------------------------------------------------------------------------
// kubeconfigs
// ---------------------------------------------------------------------------

/**
 * The discovery kubeconfig of joining nodes: the API URL, the CA file and the node's own
 * client certificate and key files (kubeadm embeds all three into the kubelet's
 * bootstrap kubeconfig). The same text on every node; holds no secret itself.
 */
export function renderDiscoveryKubeconfig(plan: AddressPlan, clusterName: string): string {
  return toYaml(
    {
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: clusterName, cluster: { server: apiServerUrl(plan), "certificate-authority": DISCOVERY_CA_PATH } }],
      users: [{ name: "node", user: { "client-certificate": DISCOVERY_NODE_CERT_PATH, "client-key": DISCOVERY_NODE_KEY_PATH } }],
      contexts: [{ name: "discovery", context: { cluster: clusterName, user: "node" } }],
      "current-context": "discovery",
    },
  );
}

export interface AdminKubeconfigInput {
  readonly clusterName: string;
  readonly server: string;
  /** base64 of the cluster CA PEM (a Terraform expression at synth). */
  readonly certificateAuthorityData: string;
  /** base64 of the admin client certificate PEM. */
  readonly clientCertificateData: string;
  /** base64 of the admin client key PEM. */
  readonly clientKeyData: string;
}

/** An admin kubeconfig for kubectl and the kubernetes provider. */
export function renderAdminKubeconfig(input: AdminKubeconfigInput): string {
  const user = `${ADMIN_USER}@${input.clusterName}`;
  return toYaml(
    {
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: input.clusterName, cluster: { server: input.server, "certificate-authority-data": input.certificateAuthorityData } }],
      users: [{ name: user, user: { "client-certificate-data": input.clientCertificateData, "client-key-data": input.clientKeyData } }],
      contexts: [{ name: user, context: { cluster: input.clusterName, user } }],
      "current-context": user,
    },
  );
}
