/**
 * Calico for the flat routed IPv6 fabric: the documents the first control plane
 * applies at its first boot (docs/bgp-fabric.md explains every choice).
 *
 * Pure: typed objects in, an ordered list of manifests out; no cdktf import. Values
 * known only at apply time (the optional BGP password) never pass through here: the
 * password manifest is returned as a literal prefix the construct completes with a
 * Terraform expression.
 *
 * API group: `projectcalico.org/v3`, through Calico's native v3 CRDs, which the init
 * node applies before the operator so that the operator (v1.42.3, pkg/apis/version.go
 * UseV3CRDS) and every Calico component run in v3 mode (docs/bgp-fabric.md, "API
 * group"). The CRDs' schemas and CEL rules validate what is written here and default
 * only a few fields, so every field the design depends on is still spelled out.
 */
import { toYamlDocuments } from "./yaml";
import { AddressPlan, Ipv6Cidr, loadBalancerPools } from "./address-plan";
import { localServiceAdmission, serviceExternalIpsAdmission } from "./local-service-admission";
import { maxPodBlocksPerNode } from "./prefix-budget";
import { CALICO, PinnedDownload } from "./versions";

/** Where the init node keeps the add-on manifests (not under /usr: read-only on Flatcar). */
export const CALICO_ADDON_DIR = "/etc/kubernetes/addons/calico";

/** Metal's router ASN for local BGP (docs/facts.md). */
export const METAL_ROUTER_ASN = 65530;
/** The IPv6 peers of every server in current Metal sites (docs/facts.md: network-helpers and Talos fixtures). */
export const METAL_IPV6_PEERS: readonly string[] = ["fc00::e", "fc00::f"];
/**
 * Pod IPAM block: /120 = 256 addresses, so 110 pods fit in one block and each node
 * normally announces one pod prefix (lib/prefix-budget.ts).
 */
export const POD_BLOCK_PREFIX_LENGTH = 120;
/** Metal's private IPv4 management addresses come from 10.0.0.0/8; Calico takes the node's as BGP router ID. */
export const METAL_PRIVATE_IPV4_RANGE = "10.0.0.0/8";
/**
 * FlexVolume dir: must be writable on Flatcar (/usr is read-only) and match the kubelet's
 * volumePluginDir (lib/kubeadm.ts VOLUME_PLUGIN_DIR). The operator appends
 * "nodeagent~uds" to it, so it ends in "/".
 */
export const DEFAULT_FLEX_VOLUME_PATH = "/var/lib/kubelet/volumeplugins/";

/** Names of the Calico objects; stable, other docs and tests refer to them. */
export const CALICO_NAMES = {
  podPool: "pods-ipv6",
  loadBalancerPool: "loadbalancer-ipv6",
  /** externalTrafficPolicy: Local addresses; Services ask for it by name (lib/local-service-admission.ts). */
  localServicePool: "local-services-ipv6",
  exportFilter: "metal-export",
  passwordSecret: "metal-bgp-password",
  passwordKey: "password",
  /** The operator creates this namespace and runs calico-node there as ServiceAccount calico-node. */
  calicoNamespace: "calico-system",
  calicoNodeServiceAccount: "calico-node",
} as const;

/** How calico-node picks its BGP router ID on an IPv6-only node. */
export type RouterIdSource =
  /** The node's private IPv4 (IPv4 address detection limited to METAL_PRIVATE_IPV4_RANGE); unique per project. */
  | "private-ipv4"
  /** The operator's default for IPv6-only: CALICO_ROUTER_ID=hash of the node name. */
  | "hash";

/** A router the nodes peer with: its IPv6 address and AS. */
export interface RouterPeer {
  readonly address: string;
  readonly asn: number;
  /**
   * The nodes (hostnames) that peer with it, when not all do: a rack's machines with
   * their top-of-rack routers (the Matchbox inventory).
   * @default every node
   */
  readonly nodes?: readonly string[];
}

/** The Kubernetes Node label kubelet sets to the node's name; Calico's Node objects carry it. */
const HOSTNAME_LABEL = "kubernetes.io/hostname";

/** Metal's two routers, as every server sees them. */
export const METAL_ROUTER_PEERS: readonly RouterPeer[] = METAL_IPV6_PEERS.map((address) => ({ address, asn: METAL_ROUTER_ASN }));

export interface CalicoInput {
  readonly plan: AddressPlan;
  /**
   * The routers the nodes peer with (one global BGPPeer each, selecting the nodes that
   * peer with it): the same list the nodes route to and the host policy lets BGP in from.
   * @default METAL_ROUTER_PEERS
   */
  readonly peers?: readonly RouterPeer[];
  /** The project's customer ASN (METAL_BGP_ASN). */
  readonly asNumber: number;
  /** Whether the BGP peers use the MD5 password (METAL_BGP_MD5_ENABLED). @default false */
  readonly md5Password?: boolean;
  /** @default DEFAULT_FLEX_VOLUME_PATH */
  readonly flexVolumePath?: string;
  /** @default "private-ipv4" */
  readonly routerIdSource?: RouterIdSource;
  /** @default POD_BLOCK_PREFIX_LENGTH */
  readonly blockPrefixLength?: number;
  /**
   * LOCAL_SERVICE_ROUTES: the size of the Local pool, 0 or a power of two (checked by
   * lib/prefix-budget.ts checkPrefixBudget when settings load).
   * @default DEFAULT_LOCAL_SERVICE_ROUTES
   */
  readonly localServiceRoutes?: number;
}

/** LOCAL_SERVICE_ROUTES' default. */
export const DEFAULT_LOCAL_SERVICE_ROUTES = 4;

/** One manifest for the init node to `kubectl apply --server-side`, in list order. */
export type AddonManifest =
  /** Fully known at synth. */
  | { readonly path: string; readonly yaml: string }
  /** Downloaded by Ignition and checked against the hash. */
  | { readonly path: string; readonly remote: PinnedDownload }
  /**
   * File = `prefix` + base64(secret value). `prefix` is a whole number of 3-byte groups,
   * so base64(prefix) + base64(base64(secret)) is the base64 of the whole file and the
   * construct can append a Terraform expression to the known part.
   */
  | { readonly path: string; readonly secretPrefix: string };

export class CalicoConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CalicoConfigError";
  }
}

type Metadata = { readonly name: string; readonly namespace?: string };

/** Calico's API for direct use; lib/policies.ts writes the same group. */
export const CALICO_API = "projectcalico.org/v3";


function validate(input: CalicoInput): Required<Omit<CalicoInput, "plan" | "asNumber">> {
  const flexVolumePath = input.flexVolumePath ?? DEFAULT_FLEX_VOLUME_PATH;
  if (flexVolumePath !== "None" && !/^\/.*\/$/.test(flexVolumePath)) {
    throw new CalicoConfigError(
      `flexVolumePath "${flexVolumePath}" is not valid: use "None" or an absolute directory ending in "/" (the operator appends "nodeagent~uds")`,
    );
  }
  if (flexVolumePath.startsWith("/usr/")) {
    throw new CalicoConfigError(`flexVolumePath "${flexVolumePath}" is not valid: /usr is read-only on Flatcar`);
  }
  if (!Number.isInteger(input.asNumber) || input.asNumber < 1 || input.asNumber > 2147483647) {
    throw new CalicoConfigError(`asNumber ${input.asNumber} is not valid: Calico's BGPConfiguration CRD stores it as int32 (1 to 2147483647)`);
  }
  const blockPrefixLength = input.blockPrefixLength ?? POD_BLOCK_PREFIX_LENGTH;
  if (!Number.isInteger(blockPrefixLength) || blockPrefixLength < 116 || blockPrefixLength > 128) {
    throw new CalicoConfigError(`blockPrefixLength ${blockPrefixLength} is not valid: Calico takes IPv6 blocks from /116 to /128`);
  }
  if (blockPrefixLength < input.plan.podCidr.length) {
    throw new CalicoConfigError(`blockPrefixLength /${blockPrefixLength} is larger than the pod range ${input.plan.podCidr}`);
  }
  const localServiceRoutes = input.localServiceRoutes ?? DEFAULT_LOCAL_SERVICE_ROUTES;
  if (!Number.isInteger(localServiceRoutes) || localServiceRoutes < 0 || (localServiceRoutes & (localServiceRoutes - 1)) !== 0) {
    throw new CalicoConfigError(`localServiceRoutes ${localServiceRoutes} is not valid: the Local pool is one CIDR, so 0 or a power of two`);
  }
  return {
    md5Password: input.md5Password ?? false,
    flexVolumePath,
    routerIdSource: input.routerIdSource ?? "private-ipv4",
    blockPrefixLength,
    localServiceRoutes,
    peers: input.peers ?? METAL_ROUTER_PEERS,
  };
}

/** The Local pool's CIDR, or undefined when LOCAL_SERVICE_ROUTES=0. */
export function localServicePool(input: CalicoInput): Ipv6Cidr | undefined {
  return loadBalancerPools(input.plan, validate(input).localServiceRoutes).local;
}

/**
 * The operator's Installation. `ipPools: []` tells the operator to create no pools and
 * wait for ours (operator api/v1 installation_types.go): the LoadBalancer pool lies
 * outside kubeadm's podSubnet, which the operator requires of every pool it manages
 * (pkg/controller/ippool), so one owner writes every pool.
 */
export function installation(input: CalicoInput): object {
  const o = validate(input);
  return {
    apiVersion: "operator.tigera.io/v1",
    kind: "Installation",
    metadata: { name: "default" },
    spec: {
      variant: "Calico",
      cni: { type: "Calico", ipam: { type: "Calico" } },
      flexVolumePath: o.flexVolumePath,
      calicoNetwork: {
        bgp: "Enabled",
        linuxDataplane: "Iptables",
        // kubelet's node-ip is the public IPv6 (lib/kubeadm.ts), the only address the
        // routers accept the session from (their customer_ip), so one source of truth.
        nodeAddressAutodetectionV6: { kubernetes: "NodeInternalIP" },
        // Only for the BGP router ID: with an IPv4 node address confd uses it as router ID
        // (confd bgp_processor.go); without one the operator forces CALICO_ROUTER_ID=hash.
        // No IPv4 pool exists, so pods stay IPv6-only.
        ...(o.routerIdSource === "private-ipv4" ? { nodeAddressAutodetectionV4: { cidrs: [METAL_PRIVATE_IPV4_RANGE] } } : {}),
        ipPools: [],
      },
    },
  };
}

function ipPool(metadata: Metadata, cidr: string, blockSize: number, allowedUses: string[], assignmentMode: "Automatic" | "Manual" = "Automatic"): object {
  return {
    apiVersion: CALICO_API,
    kind: "IPPool",
    metadata,
    spec: {
      cidr,
      blockSize,
      // Flat routed: no encapsulation, and no NAT (pods have public addresses). natOutgoing
      // and disableBGPExport are left out, so false: Calico's own writes drop a false
      // there (omitempty), and kube-controllers rewrites every new pool to add its
      // finalizer, so a written false would read back absent and the configuration
      // stack would plan the pool again (docs/facts.md).
      ipipMode: "Never",
      vxlanMode: "Never",
      nodeSelector: "all()",
      allowedUses,
      assignmentMode,
    },
  };
}

/**
 * The pod pool (= kubeadm podSubnet) and the LoadBalancer pools, both inside the external
 * range (lib/address-plan.ts loadBalancerPools).
 */
export function ipPools(input: CalicoInput): object[] {
  const o = validate(input);
  const lb = loadBalancerPools(input.plan, o.localServiceRoutes);
  return [
    ipPool({ name: CALICO_NAMES.podPool }, input.plan.podCidr.toString(), o.blockPrefixLength, ["Workload"]),
    // Calico LoadBalancer IPAM (v3.30+, kube-controllers' loadbalancer controller, which
    // the operator enables): Services of type LoadBalancer get an address from here.
    ipPool({ name: CALICO_NAMES.loadBalancerPool }, lb.cluster.toString(), o.blockPrefixLength, ["LoadBalancer"]),
    // Manual: only Services that name it get an address from it, so Cluster-policy
    // Services never use up the Local budget. A pool's block cannot be larger than the pool.
    ...(lb.local
      ? [ipPool({ name: CALICO_NAMES.localServicePool }, lb.local.toString(), Math.max(o.blockPrefixLength, lb.local.length), ["LoadBalancer"], "Manual")]
      : []),
  ];
}

/**
 * IPAM's cluster settings. strictAffinity: a node never borrows an address from another
 * node's block, so no pod needs a /128 route of its own (Calico would announce one,
 * against max_prefix, while the block's owner blackholes it). maxBlocksPerHost: a node
 * holds at most the blocks its maxPods needs plus one spare, the pod row of the prefix
 * budget; a pod that would need more gets no address instead of tearing down the
 * node's BGP sessions.
 */
export function ipamConfig(input: CalicoInput): object {
  const o = validate(input);
  return {
    apiVersion: CALICO_API,
    // v3's name for crd.projectcalico.org/v1's IPAMConfig; Calico reads the one named
    // "default" (libcalico-go model.IPAMConfigGlobalName).
    kind: "IPAMConfiguration",
    metadata: { name: "default" },
    spec: { strictAffinity: true, autoAllocateBlocks: true, maxBlocksPerHost: maxPodBlocksPerNode(o.blockPrefixLength) },
  };
}

export function bgpConfiguration(input: CalicoInput): object {
  const external = [{ cidr: input.plan.externalCidr.toString() }];
  return {
    apiVersion: CALICO_API,
    kind: "BGPConfiguration",
    metadata: { name: "default" },
    spec: {
      // The routers send nothing back; traffic between nodes goes up to them ("downward default").
      nodeToNodeMeshEnabled: false,
      asNumber: input.asNumber,
      serviceClusterIPs: [{ cidr: input.plan.serviceCidr.toString() }],
      serviceExternalIPs: external,
      serviceLoadBalancerIPs: external,
      // Disabled would announce a /128 per Cluster-policy Service from every node: far over max_prefix.
      serviceLoadBalancerAggregation: "Enabled",
    },
  };
}

/**
 * What a node must not announce, on top of Calico's own export logic. BGPFilter rules run
 * before Calico's export filter and the first match decides; a route no rule matches is
 * left to Calico (confd bgp_processor.go buildExportFilter, bird6 templates), which
 * exports the blocks with confirmed affinity to this node, the Service ranges of the
 * BGPConfiguration and Local Services' /128s. So this filter only rejects, except for
 * the Local pool's /128s, which must pass before the rest of the external range is
 * rejected. Every rule is a cap of the prefix budget (lib/prefix-budget.ts), whatever
 * a user creates:
 * - nothing longer than a block from the pod range: with strictAffinity no address is
 *   borrowed, so the only /128s there would be pods that requested an address of
 *   another node's block;
 * - nothing longer than the /108 from the Service range: Local Services' ClusterIP /128s;
 * - from the external range, the /112 and the Local pool's /128s only.
 */
export function bgpFilter(input: CalicoInput): object {
  const o = validate(input);
  const pod = input.plan.podCidr.toString();
  const service = input.plan.serviceCidr;
  const external = input.plan.externalCidr;
  const local = loadBalancerPools(input.plan, o.localServiceRoutes).local;
  const longerThan = (cidr: Ipv6Cidr | string, length: number) =>
    ({ action: "Reject", matchOperator: "In", cidr: cidr.toString(), prefixLength: { min: length + 1, max: 128 } });
  return {
    apiVersion: CALICO_API,
    kind: "BGPFilter",
    metadata: { name: CALICO_NAMES.exportFilter },
    spec: {
      exportV6: [
        ...(o.blockPrefixLength < 128 ? [longerThan(pod, o.blockPrefixLength)] : []),
        longerThan(service, service.length),
        ...(local ? [{ action: "Accept", matchOperator: "In", cidr: local.toString(), prefixLength: { min: 128, max: 128 } }] : []),
        longerThan(external, external.length),
      ],
      // The routers send no routes; nodes reach each other through their default route.
      importV6: [{ action: "Reject" }],
    },
  };
}

/** The BGPPeers' `maxRestartTime` (docs/bgp-fabric.md, "Graceful restart"). */
export const BGP_GRACEFUL_RESTART_TIME = "30s";

/**
 * One global peer per router: no `node`, a selector every node matches, so new nodes peer
 * by themselves; a router only some nodes peer with (a rack's) selects them by name.
 */
export function bgpPeers(input: CalicoInput): object[] {
  const o = validate(input);
  return o.peers.map(({ address: peerIP, asn, nodes }) => ({
    apiVersion: CALICO_API,
    kind: "BGPPeer",
    metadata: { name: `metal-router-${peerIP.replace(/:+/g, "-")}` },
    spec: {
      nodeSelector: nodes ? `${HOSTNAME_LABEL} in {${nodes.map((n) => `'${n}'`).join(", ")}}` : "all()",
      peerIP,
      asNumber: asn,
      // The routers accept the session only from the server's own address (customer_ip).
      sourceAddress: "UseNodeIP",
      filters: [CALICO_NAMES.exportFilter],
      // BIRD's graceful restart time (BGP_GRACEFUL_RESTART_TIME): how long a router that
      // keeps routes across a restart would keep a dead node's Service routes (and its
      // share of Service traffic); BIRD's 120 s default is too long for that, and 30 s
      // still covers a calico-node restart (docs/bgp-fabric.md).
      maxRestartTime: BGP_GRACEFUL_RESTART_TIME,
      ...(o.md5Password ? { password: { secretKeyRef: { name: CALICO_NAMES.passwordSecret, key: CALICO_NAMES.passwordKey } } } : {}),
    },
  }));
}

/**
 * The BGP password Secret and the Role that lets calico-node read it (Calico "Secure
 * BGP sessions"), as a prefix the value is appended to. The Secret is the last
 * document and `password` its last key, so the file ends with the base64 value.
 */
export function bgpPasswordManifestPrefix(): string {
  const { passwordSecret, passwordKey, calicoNamespace, calicoNodeServiceAccount } = CALICO_NAMES;
  const name = `${passwordSecret}-reader`;
  const rbac = toYamlDocuments([
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: { name, namespace: calicoNamespace },
      rules: [{ apiGroups: [""], resources: ["secrets"], resourceNames: [passwordSecret], verbs: ["get", "list", "watch"] }],
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name, namespace: calicoNamespace },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name },
      subjects: [{ kind: "ServiceAccount", name: calicoNodeServiceAccount, namespace: calicoNamespace }],
    },
  ]);
  const sentinel = "SECRET-VALUE-FOLLOWS";
  const secret = toYamlDocuments([
    { apiVersion: "v1", kind: "Secret", metadata: { name: passwordSecret, namespace: calicoNamespace }, type: "Opaque", data: { [passwordKey]: sentinel } },
  ]);
  const at = secret.indexOf(sentinel);
  if (at < 0 || secret.slice(at + sentinel.length) !== "\n") throw new CalicoConfigError("password Secret layout changed: the value must end the file");
  let prefix = `${rbac}---\n${secret.slice(0, at)}`;
  // Spaces after "password:" are insignificant in YAML; they align the prefix to 3 bytes.
  while (Buffer.byteLength(prefix, "utf8") % 3 !== 0) prefix += " ";
  return prefix;
}

/**
 * Every Calico manifest, in the order the init node applies them. Each is retried until
 * it succeeds, so the order only has to avoid waiting on something applied later, and
 * to put the CRDs before the operator, which picks its API group once, when it starts:
 * 0. the native v3 CRDs (with the operator's own): the operator then finds the
 *    projectcalico.org group and no crd.projectcalico.org one and runs in v3 mode;
 * 1. the operator;
 * 2. the Installation;
 * 3. BGP configuration, filter and peers, before calico-node starts, so the node-to-node
 *    mesh is never on;
 * 4. the admission policies for Service addresses (Local Services' addresses; no Service with
 *    spec.externalIPs), before any pool can hand one out;
 * 5. IPAM's settings, then the IP pools; the operator starts calico-node once a pool
 *    exists and creates the calico-system namespace;
 * 6. with a password, the Secret in calico-system (fails until that namespace exists).
 * Identical for any number of nodes: nothing here names a node.
 */
export function calicoAddonManifests(input: CalicoInput): AddonManifest[] {
  const o = validate(input);
  const manifests: AddonManifest[] = [
    { path: `${CALICO_ADDON_DIR}/00-calico-v3-crds.yaml`, remote: CALICO.v3Crds },
    { path: `${CALICO_ADDON_DIR}/00-tigera-operator.yaml`, remote: CALICO.operatorManifest },
    { path: `${CALICO_ADDON_DIR}/10-installation.yaml`, yaml: toYamlDocuments([installation(input)]) },
    { path: `${CALICO_ADDON_DIR}/20-bgp.yaml`, yaml: toYamlDocuments([bgpConfiguration(input), bgpFilter(input), ...bgpPeers(input)]) },
    {
      path: `${CALICO_ADDON_DIR}/25-local-service-admission.yaml`,
      yaml: toYamlDocuments([
        ...localServiceAdmission({
          plan: input.plan,
          localPool: localServicePool(input),
          localPoolName: CALICO_NAMES.localServicePool,
          localServiceRoutes: o.localServiceRoutes,
        }),
        // In the same file (a stable user-data path): no Service claims an address IPAM did not give.
        ...serviceExternalIpsAdmission(),
      ]),
    },
    { path: `${CALICO_ADDON_DIR}/30-ippools.yaml`, yaml: toYamlDocuments([ipamConfig(input), ...ipPools(input)]) },
  ];
  if (o.md5Password) manifests.push({ path: `${CALICO_ADDON_DIR}/40-bgp-password.yaml`, secretPrefix: bgpPasswordManifestPrefix() });
  return manifests;
}
