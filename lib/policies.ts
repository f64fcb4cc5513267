/**
 * Public IPv6 without exposure: the Calico documents that protect every node and keep
 * workloads unreachable from the Internet unless they opt in (docs/security.md explains
 * every rule, its reason and its source).
 *
 * Pure: typed objects in, an ordered list of manifests out; no cdktf import. The first
 * control plane applies them at its first boot, right after Calico's own resources and
 * before any workload runs (ignition/scripts/apply-addons.sh).
 *
 * How the pieces fit (Calico v3.32 iptables data plane, felix/rules):
 * - kube-controllers creates one host endpoint per node (`interfaceName: "*"`, the node's
 *   labels, the node's addresses as expectedIPs). Policies select those host endpoints.
 * - "v6fabric-host-ingress" and "v6fabric-control-plane-ingress" police traffic *to the
 *   node itself* (INPUT). Anything they do not allow is dropped (end of tier).
 * - "v6fabric-forward" has applyOnForward: it polices traffic the node *forwards*: to and
 *   from its pods, and Service traffic kube-proxy DNATs to another node. On an
 *   all-interfaces host endpoint it sees forwarded traffic whatever the interface, before
 *   kube-proxy's SNAT, so it still knows the real client (felix fv hostendpoints_test.go).
 *   It also applies to INPUT, so every allow in it names a destination that is not the
 *   node itself, or one that INPUT should allow anyway (the API server).
 * - "v6fabric-forward-egress" is the Egress side of the same boundary: applyOnForward
 *   Egress policy is evaluated where forwarded traffic *leaves* (felix cali-to-hep-forward),
 *   and for any traffic the host itself sends. It denies pods the metadata service and
 *   allows everything else explicitly: once an Egress policy selects a host endpoint,
 *   whatever it does not allow is dropped, the node's own egress included.
 * - "v6fabric-public-surface" is preDNAT: it sees Service addresses and NodePorts before
 *   kube-proxy rewrites them, and only denies (a preDNAT allow would skip the forward check).
 * Workload policies (Kubernetes NetworkPolicy, namespaced Calico policy) are untouched:
 * host endpoint policy is evaluated in addition to them, never instead.
 *
 * API group: `projectcalico.org/v3`, like lib/calico.ts. The v3 CRDs check types and
 * their CEL rules, but not what only Calico's Go validator knows (selector syntax, a
 * rule's IP version against its nets): Felix ignores a resource that validator rejects,
 * hence the care about IP versions.
 */
import { toYamlDocuments } from "./yaml";
import { AddressPlan, Ipv6Cidr } from "./address-plan";
import { CALICO_API, METAL_IPV6_PEERS } from "./calico";
import { API_SERVER_PORT } from "./kubeadm";
import { METADATA_SERVICE_IPV4, NAT64_BLOCKED_IPV4, NAT64_POOL, nat64Form } from "./nat64";

/** Where the init node keeps these manifests (beside /etc/kubernetes/addons/calico). */
export const SECURITY_ADDON_DIR = "/etc/kubernetes/addons/security";

// ---------------------------------------------------------------------------
// Labels and selectors: the contract with users (the opt-in) and with kube-controllers.
// ---------------------------------------------------------------------------

/** Pod label that makes a workload reachable from the Internet through its Service's external address. */
export const PUBLIC_LABEL = "fabric.v6/public";
/** The only value of PUBLIC_LABEL that opts in. */
export const PUBLIC_LABEL_VALUE = "true";

/** kubeadm labels control planes with this (empty value); kubelets cannot set it on themselves (NodeRestriction). */
export const CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane";

/**
 * Automatic host endpoints: kube-controllers copies the node's labels and adds
 * `projectcalico.org/created-by: calico-kube-controllers` (kube-controllers
 * pkg/controllers/node/hostendpoints.go). Pods' workload endpoints always carry
 * `projectcalico.org/namespace` (libcalico-go workload_endpoint_default.go), so the second
 * clause keeps a pod that copies the created-by label from passing as a node.
 */
export const HOST_SELECTOR = "projectcalico.org/created-by == 'calico-kube-controllers' && !has(projectcalico.org/namespace)";
export const CONTROL_PLANE_SELECTOR = `${HOST_SELECTOR} && has(${CONTROL_PLANE_LABEL})`;
/** Workload endpoints only: a node labelled fabric.v6/public must not open itself. */
export const PUBLIC_WORKLOAD_SELECTOR = `${PUBLIC_LABEL} == '${PUBLIC_LABEL_VALUE}' && has(projectcalico.org/namespace)`;

/** Hostnames of control planes start with this (lib/naming.ts nodeHostname). */
export function controlPlaneHostnamePrefix(clusterName: string): string {
  return `${clusterName}-cp-`;
}

/**
 * Nodes that *serve* control-plane ports (API server, etcd): the kubeadm label, or a
 * control-plane hostname. `kubeadm join` labels a new control plane last, after its
 * etcd member and API server already run; the hostname covers that window. A kubelet
 * can set its own `kubernetes.io/hostname` label, but all that buys is opening ports
 * on itself, so this selector is only ever used for destinations, never for sources
 * (sources that earn trust use CONTROL_PLANE_SELECTOR).
 */
export function controlPlaneNodeSelector(clusterName: string): string {
  return `${HOST_SELECTOR} && (has(${CONTROL_PLANE_LABEL}) || kubernetes.io/hostname starts with '${controlPlaneHostnamePrefix(clusterName)}')`;
}

/**
 * Registered nodes that are not control planes by label or hostname. etcd admits
 * node-zone addresses except these: a control plane that runs `kubeadm join` is not a
 * node yet when it joins etcd (kubeadm ControlPlaneKubeletLocalMode, beta and on since
 * Kubernetes 1.33), so it can only be recognised by its address.
 */
export function registeredWorkerSelector(clusterName: string): string {
  return `${HOST_SELECTOR} && !has(${CONTROL_PLANE_LABEL}) && !(kubernetes.io/hostname starts with '${controlPlaneHostnamePrefix(clusterName)}')`;
}

// ---------------------------------------------------------------------------
// Ports and addresses, each with the fact behind it.
// ---------------------------------------------------------------------------

export const PORTS = {
  ssh: 22,
  /** BGP with the Metal routers (docs/facts.md). */
  bgp: 179,
  /** kube-apiserver and the `kubernetes` Service (lib/kubeadm.ts: the API servers listen on 443). */
  apiServer: API_SERVER_PORT,
  etcdClient: 2379,
  etcdPeer: 2380,
  /** calico-node (Felix) → Typha; the operator always runs Typha, on the host network. */
  typha: 5473,
  kubelet: 10250,
} as const;

/** kube-apiserver's default --service-node-port-range (lib/kubeadm.ts does not change it). */
export const NODE_PORT_RANGE = "30000:32767";

export { METADATA_SERVICE_IPV4 };
/** The same address behind a NAT64 with the well-known prefix 64:ff9b::/96 (RFC 6052). */
export const METADATA_SERVICE_NAT64 = "64:ff9b::c050:87c";

/**
 * What pods must never reach through NAT64, in both forms: the IPv4 ranges of
 * lib/nat64.ts (the metadata service, private, link-local, loopback, shared and
 * "this network" ranges) and their 64:ff9b::/96 forms that pods would send to. The
 * nodes' nftables rules drop the same at the translator, so this holds without Calico
 * too (docs/nat64.md).
 */
export const NAT64_DENIED_IPV4: readonly string[] = NAT64_BLOCKED_IPV4.map((b) => b.net);
export const NAT64_DENIED_IPV6: readonly string[] = NAT64_DENIED_IPV4.map((net) => nat64Form(net));

/**
 * ICMPv6 a node accepts from anywhere, after RFC 4890 (sections 4.3.1 and 4.4.1, the
 * types that must not be dropped): errors, echo, neighbour discovery and multicast
 * listener discovery. ND and MLD cannot come from off-link: the kernel drops them unless
 * the hop limit is 255 (RFC 4861) or 1 with a link-local source (RFC 3810).
 */
export const ICMPV6_ALLOWED: readonly { readonly type: number; readonly name: string }[] = [
  { type: 1, name: "destination unreachable" },
  { type: 2, name: "packet too big (path MTU discovery)" },
  { type: 3, name: "time exceeded" },
  { type: 4, name: "parameter problem" },
  { type: 128, name: "echo request" },
  { type: 130, name: "multicast listener query" },
  { type: 131, name: "multicast listener report" },
  { type: 132, name: "multicast listener done" },
  { type: 133, name: "router solicitation" },
  { type: 134, name: "router advertisement" },
  { type: 135, name: "neighbor solicitation" },
  { type: 136, name: "neighbor advertisement" },
  { type: 143, name: "multicast listener report v2" },
];

/** Policy order: lower first. Ours come before anything a user adds at Calico's default (none = last). */
export const POLICY_ORDER = { publicSurface: 100, forward: 200, forwardEgress: 210, hostIngress: 300, controlPlaneIngress: 310 } as const;

export const POLICY_NAMES = {
  publicSurface: "v6fabric-public-surface",
  forward: "v6fabric-forward",
  forwardEgress: "v6fabric-forward-egress",
  hostIngress: "v6fabric-host-ingress",
  controlPlaneIngress: "v6fabric-control-plane-ingress",
} as const;

// ---------------------------------------------------------------------------
// Types: the subset of the Calico v3 API rendered here (names as in the CRDs).
// ---------------------------------------------------------------------------

export interface EntityRule {
  readonly nets?: readonly string[];
  readonly notNets?: readonly string[];
  readonly selector?: string;
  readonly notSelector?: string;
  readonly ports?: readonly (number | string)[];
}

export interface Rule {
  readonly action: "Allow" | "Deny";
  readonly protocol?: "TCP" | "UDP" | "SCTP" | "ICMPv6";
  readonly ipVersion?: 4 | 6;
  readonly icmp?: { readonly type: number };
  readonly source?: EntityRule;
  readonly destination?: EntityRule;
  readonly metadata?: { readonly annotations: Record<string, string> };
}

/** The label Calico's admission sets to a policy's tier. */
export const TIER_LABEL = "projectcalico.org/tier";

export interface GlobalNetworkPolicy {
  readonly apiVersion: string;
  readonly kind: "GlobalNetworkPolicy";
  readonly metadata: { readonly name: string; readonly labels: { readonly [TIER_LABEL]: "default" } };
  readonly spec: {
    readonly tier: "default";
    readonly order: number;
    readonly selector: string;
    readonly types: readonly ("Ingress" | "Egress")[];
    readonly applyOnForward: boolean;
    readonly preDNAT: boolean;
    readonly doNotTrack: boolean;
    readonly ingress?: readonly Rule[];
    readonly egress?: readonly Rule[];
  };
}

export interface ProtoPort {
  readonly protocol: "TCP" | "UDP";
  readonly port: number;
  readonly net: string;
}

export interface SecurityInput {
  readonly plan: AddressPlan;
  /** CLUSTER_NAME: control-plane hostnames derive from it. */
  readonly clusterName: string;
  /** API_ALLOWED_PREFIXES; empty = the API server answers the cluster only. */
  readonly apiAllowedPrefixes: readonly Ipv6Cidr[];
  /** ADMIN_ALLOWED_PREFIXES; empty = SSH closed. */
  readonly adminAllowedPrefixes: readonly Ipv6Cidr[];
  /**
   * BGP peers whose sessions reach the nodes.
   * @default METAL_IPV6_PEERS (fc00::e, fc00::f)
   */
  readonly bgpPeers?: readonly string[];
  /**
   * NAT64_ENABLED: each node forwards its translator's IPv4 (lib/nat64.ts NAT64_POOL) to
   * the IPv4 Internet, which the forward policy must then allow.
   * @default false
   */
  readonly nat64?: boolean;
}

/** One manifest for the init node to `kubectl apply --server-side`, in list order. */
export interface SecurityManifest {
  readonly path: string;
  readonly yaml: string;
}

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------

const cidr = (prefix: Ipv6Cidr) => prefix.toString();
const host128 = (address: string) => `${address}/128`;
const why = (text: string) => ({ metadata: { annotations: { "v6fabric/why": text } } });

/** Sources that are part of the cluster, as Calico entity rules (any one matches). */
function clusterSources(plan: AddressPlan): { pods: EntityRule; nodeRange: EntityRule; hosts: EntityRule } {
  return {
    pods: { nets: [cidr(plan.podCidr)] },
    // Not-yet-registered nodes (a joining node has no host endpoint) come from the node zone.
    nodeRange: { nets: [cidr(plan.nodeRange)] },
    hosts: { selector: HOST_SELECTOR },
  };
}

/**
 * Sources a node only sees from itself, over lo: ::1 (Linux drops it from any other
 * interface, RFC 4291 2.5.3) and the `kubernetes` ClusterIP that control planes hold on
 * lo (lib/kubeadm.ts), which the kernel picks as source when connecting to it.
 */
function selfSources(plan: AddressPlan): string[] {
  return ["::1/128", host128(plan.kubernetesServiceIp)];
}

/** A source outside the cluster: not a pod, not in the node zone, not a registered node, not the node itself. */
function outside(plan: AddressPlan, alsoExcept: readonly string[] = []): EntityRule {
  return { notNets: [cidr(plan.podCidr), cidr(plan.nodeRange), ...selfSources(plan), ...alsoExcept], notSelector: HOST_SELECTOR };
}

/** True if some prefix in the list is ::/0 (a catch-all cannot appear in notNets: Calico's validator rejects it). */
function includesEverything(prefixes: readonly Ipv6Cidr[]): boolean {
  return prefixes.some((p) => p.length === 0);
}

function policy(
  name: string,
  order: number,
  selector: string,
  flags: { applyOnForward: boolean; preDNAT: boolean },
  rules: Rule[],
  direction: "Ingress" | "Egress" = "Ingress",
): GlobalNetworkPolicy {
  return {
    apiVersion: CALICO_API,
    kind: "GlobalNetworkPolicy",
    // What Calico's tierlabel MutatingAdmissionPolicy writes on every create and update
    // (api/admission/tierlabel.mutatingadmissionpolicy.yaml): declared, so the
    // configuration stack's plan expects it (docs/operations.md).
    metadata: { name, labels: { [TIER_LABEL]: "default" } },
    spec: {
      tier: "default",
      order,
      selector,
      types: [direction],
      ...flags,
      doNotTrack: false,
      ...(direction === "Ingress" ? { ingress: rules } : { egress: rules }),
    },
  };
}

/**
 * preDNAT, on every node: what the Internet may address before kube-proxy rewrites it.
 * Only Service external/LoadBalancer addresses stay addressable; whether the pod behind
 * one may be reached is decided after DNAT by the forward policy.
 */
export function publicSurfacePolicy(input: SecurityInput): GlobalNetworkPolicy {
  const { plan } = input;
  const apiIp = host128(plan.kubernetesServiceIp);
  const rules: Rule[] = [];
  if (input.apiAllowedPrefixes.length === 0) {
    rules.push({
      action: "Deny",
      ipVersion: 6,
      source: outside(plan),
      destination: { nets: [cidr(plan.serviceCidr)] },
      ...why("ClusterIPs, the API server's included, are for the cluster only"),
    });
  } else {
    rules.push({
      action: "Deny",
      ipVersion: 6,
      source: outside(plan),
      destination: { nets: [cidr(plan.serviceCidr)], notNets: [apiIp] },
      ...why("ClusterIPs are for the cluster only"),
    });
    if (!includesEverything(input.apiAllowedPrefixes)) {
      rules.push({
        action: "Deny",
        ipVersion: 6,
        source: outside(plan, input.apiAllowedPrefixes.map(cidr)),
        destination: { nets: [apiIp] },
        ...why("the API server's ClusterIP answers API_ALLOWED_PREFIXES besides the cluster"),
      });
    }
  }
  rules.push({
    action: "Deny",
    ipVersion: 6,
    source: outside(plan),
    destination: { nets: [cidr(plan.podCidr)] },
    ...why("pods are never addressed directly from outside; public workloads are reached through a Service external address"),
  });
  for (const protocol of ["TCP", "UDP", "SCTP"] as const) {
    rules.push({
      action: "Deny",
      protocol,
      ipVersion: 6,
      source: outside(plan),
      // Everything but the external range: a LoadBalancer or external IP may itself use a
      // port from the NodePort range, and the forward policy decides whether its pods opted in.
      destination: { notNets: [cidr(plan.externalCidr)], ports: [NODE_PORT_RANGE] },
      ...why("NodePorts on node addresses are not a public entrance; use a LoadBalancer or external IP"),
    });
  }
  return policy(POLICY_NAMES.publicSurface, POLICY_ORDER.publicSurface, HOST_SELECTOR, { applyOnForward: true, preDNAT: true }, rules);
}

/**
 * applyOnForward, on every node: traffic the node forwards (its pods' traffic, and
 * Service traffic after DNAT), plus the API server rules that INPUT needs as well.
 * The metadata denies here catch forwarded traffic where it *arrives*: on bond0, and, on
 * the all-interfaces host endpoint, from a pod's cali interface too (felix dispatch.go
 * sends every interface without a named host endpoint to the `*` one). They touch no
 * host-originated traffic (Ingress policy sees INPUT and FORWARD only), so the IPv4 deny
 * needs no source. forwardEgressPolicy repeats the pod deny where the traffic leaves.
 */
export function forwardPolicy(input: SecurityInput): GlobalNetworkPolicy {
  const { plan } = input;
  const src = clusterSources(plan);
  const notANode: EntityRule = { notSelector: HOST_SELECTOR, notNets: [cidr(plan.serviceCidr)] };
  const apiSources: EntityRule[] = [{ nets: [cidr(plan.podCidr), cidr(plan.nodeRange), ...selfSources(plan)] }, src.hosts];
  if (input.apiAllowedPrefixes.length > 0) apiSources.push({ nets: input.apiAllowedPrefixes.map(cidr) });
  const apiDestinations: EntityRule[] = [
    { selector: controlPlaneNodeSelector(input.clusterName), ports: [PORTS.apiServer] },
    // Control planes also hold the `kubernetes` ClusterIP on lo (lib/kubeadm.ts).
    { nets: [host128(plan.kubernetesServiceIp)], ports: [PORTS.apiServer] },
  ];
  const rules: Rule[] = [
    {
      action: "Deny",
      ipVersion: 4,
      destination: { nets: [`${METADATA_SERVICE_IPV4}/32`] },
      ...why("pods must not read the node's user data from the metadata service"),
    },
    {
      action: "Deny",
      ipVersion: 6,
      destination: { nets: [...NAT64_DENIED_IPV6] },
      ...why("the metadata service and non-global IPv4 ranges behind the well-known-prefix NAT64"),
    },
    ...(input.nat64
      ? [
          {
            action: "Allow",
            ipVersion: 4,
            source: { nets: [NAT64_POOL] },
            destination: { notNets: [...NAT64_DENIED_IPV4], notSelector: HOST_SELECTOR },
            ...why("pods' NAT64 traffic, translated on their node, to the IPv4 Internet (never to a node, the metadata service or a non-global range)"),
          } satisfies Rule,
        ]
      : []),
    ...apiSources.flatMap((source) =>
      apiDestinations.map(
        (destination): Rule => ({
          action: "Allow",
          protocol: "TCP",
          ipVersion: 6,
          source,
          destination,
          ...why("the API server: from nodes, pods and API_ALLOWED_PREFIXES"),
        }),
      ),
    ),
    { action: "Allow", ipVersion: 6, source: src.pods, destination: notANode, ...why("pods' own traffic, to anything but a node") },
    { action: "Allow", ipVersion: 6, source: src.nodeRange, destination: notANode, ...why("nodes to pods (also kube-proxy's SNAT of Service traffic)") },
    { action: "Allow", ipVersion: 6, source: src.hosts, destination: notANode, ...why("registered nodes to pods") },
    {
      action: "Allow",
      ipVersion: 6,
      destination: { selector: PUBLIC_WORKLOAD_SELECTOR },
      ...why(`the opt-in: pods labelled ${PUBLIC_LABEL}=${PUBLIC_LABEL_VALUE} accept any source`),
    },
  ];
  return policy(POLICY_NAMES.forward, POLICY_ORDER.forward, HOST_SELECTOR, { applyOnForward: true, preDNAT: false }, rules);
}

/** Every node, traffic to the node itself. */
export function hostIngressPolicy(input: SecurityInput): GlobalNetworkPolicy {
  const { plan } = input;
  const src = clusterSources(plan);
  const peers = input.bgpPeers ?? METAL_IPV6_PEERS;
  const rules: Rule[] = [
    ...ICMPV6_ALLOWED.map(
      ({ type, name }): Rule => ({ action: "Allow", protocol: "ICMPv6", ipVersion: 6, icmp: { type }, ...why(`ICMPv6 ${name} (RFC 4890)`) }),
    ),
    { action: "Allow", ipVersion: 6, destination: { nets: ["::1/128"] }, ...why("loopback: local health checks, API server to local etcd") },
    { action: "Allow", ipVersion: 6, source: { nets: ["::1/128"] }, ...why("from loopback: the node talking to itself (e.g. a masqueraded connection to a local Service endpoint)") },
    { action: "Allow", ipVersion: 4, destination: { nets: ["127.0.0.0/8"] }, ...why("loopback (IPv4): scheduler, controller-manager, kubelet health") },
    { action: "Allow", ipVersion: 4, source: { nets: ["127.0.0.0/8"] }, ...why("from loopback (IPv4)") },
    {
      action: "Allow",
      protocol: "TCP",
      ipVersion: 6,
      source: { nets: peers.map(host128) },
      destination: { ports: [PORTS.bgp] },
      ...why("BGP from the Metal routers only"),
    },
    ...[src.nodeRange, src.hosts].map(
      (source): Rule => ({ action: "Allow", protocol: "TCP", ipVersion: 6, source, destination: { ports: [PORTS.typha] }, ...why("calico-node to Typha") }),
    ),
    {
      action: "Allow",
      protocol: "TCP",
      ipVersion: 6,
      source: { selector: CONTROL_PLANE_SELECTOR },
      destination: { ports: [PORTS.kubelet] },
      ...why("kubelet API from the API servers only"),
    },
  ];
  if (input.adminAllowedPrefixes.length > 0) {
    rules.push({
      action: "Allow",
      protocol: "TCP",
      ipVersion: 6,
      source: { nets: input.adminAllowedPrefixes.map(cidr) },
      destination: { ports: [PORTS.ssh] },
      ...why("SSH from ADMIN_ALLOWED_PREFIXES"),
    });
  }
  return policy(POLICY_NAMES.hostIngress, POLICY_ORDER.hostIngress, HOST_SELECTOR, { applyOnForward: false, preDNAT: false }, rules);
}

/** Control planes only: etcd. */
export function controlPlaneIngressPolicy(input: SecurityInput): GlobalNetworkPolicy {
  const servers = controlPlaneNodeSelector(input.clusterName);
  const etcd = { selector: servers, ports: [PORTS.etcdClient, PORTS.etcdPeer] };
  const rules: Rule[] = [
    {
      action: "Allow",
      protocol: "TCP",
      ipVersion: 6,
      source: { selector: CONTROL_PLANE_SELECTOR },
      destination: etcd,
      ...why("etcd between control planes"),
    },
    {
      action: "Allow",
      protocol: "TCP",
      ipVersion: 6,
      // kubeadm joins etcd before the new control plane is labelled (and, with
      // ControlPlaneKubeletLocalMode, before it is a node at all).
      source: { nets: [cidr(input.plan.nodeRange)], notSelector: registeredWorkerSelector(input.clusterName) },
      destination: etcd,
      ...why("etcd from a control plane that is still joining"),
    },
  ];
  return policy(
    POLICY_NAMES.controlPlaneIngress,
    POLICY_ORDER.controlPlaneIngress,
    servers,
    { applyOnForward: false, preDNAT: false },
    rules,
  );
}

/**
 * Felix's failsafe inbound ports: allowed to every host endpoint before any policy, so
 * a policy mistake cannot cut off what is listed. Calico's default list opens SSH, etcd
 * and the API server to every source; this one keeps each to the sources that need it.
 */
export function failsafeInboundHostPorts(input: SecurityInput): ProtoPort[] {
  const { plan } = input;
  const peers = input.bgpPeers ?? METAL_IPV6_PEERS;
  return [
    ...input.adminAllowedPrefixes.map((p): ProtoPort => ({ protocol: "TCP", port: PORTS.ssh, net: cidr(p) })),
    ...[plan.podCidr, plan.nodeRange, ...input.apiAllowedPrefixes].map((p): ProtoPort => ({ protocol: "TCP", port: PORTS.apiServer, net: cidr(p) })),
    ...peers.map((peer): ProtoPort => ({ protocol: "TCP", port: PORTS.bgp, net: host128(peer) })),
    // Felix must keep reaching Typha, or it never receives the fixed policy.
    { protocol: "TCP", port: PORTS.typha, net: cidr(plan.nodeRange) },
    // Calico's default keeps the DHCPv4 client port; harmless where nothing listens.
    { protocol: "UDP", port: 68, net: "0.0.0.0/0" },
  ];
}

export function felixConfiguration(input: SecurityInput): object {
  return {
    apiVersion: CALICO_API,
    kind: "FelixConfiguration",
    metadata: { name: "default" },
    spec: { failsafeInboundHostPorts: failsafeInboundHostPorts(input) },
  };
}

/**
 * kube-controllers' configuration with automatic host endpoints on, so every node,
 * including nodes added later, is protected with no step of its own. The rest repeats
 * the defaults kube-controllers would write itself (kube-controllers pkg/config
 * runconfig.go NewDefaultKubeControllersConfig): this document then owns the object.
 */
export function kubeControllersConfiguration(): object {
  return {
    apiVersion: CALICO_API,
    kind: "KubeControllersConfiguration",
    metadata: { name: "default" },
    spec: {
      logSeverityScreen: "Info",
      healthChecks: "Enabled",
      etcdV3CompactionPeriod: "10m",
      controllers: {
        node: {
          reconcilerPeriod: "5m",
          syncLabels: "Enabled",
          leakGracePeriod: "15m",
          hostEndpoint: { autoCreate: "Enabled", createDefaultHostEndpoint: "Enabled" },
        },
        policy: { reconcilerPeriod: "5m" },
        workloadEndpoint: { reconcilerPeriod: "5m" },
        serviceAccount: { reconcilerPeriod: "5m" },
        namespace: { reconcilerPeriod: "5m" },
        loadBalancer: { assignIPs: "AllServices" },
      },
    },
  };
}

/**
 * applyOnForward Egress, on every node: pods must not reach the metadata service, also
 * where the traffic *leaves* the node (felix cali-to-hep-forward → cali-thfw-*: the Egress
 * side of forwarded traffic). This is the direction Calico's docs name for "traffic from a
 * local workload that is forwarded out via a host endpoint" (reference/host-endpoints/
 * forwarded), and the only one a host endpoint on a named interface (bond0) would see.
 *
 * applyOnForward policies also police what the host itself sends (OUTPUT), and once one
 * Egress policy selects a host endpoint, anything no rule allows is dropped, forwarded or
 * not. So: deny only pod sources (afterburn and the BGP peer-route script on the node
 * itself keep reading the metadata service), then allow everything else, per family.
 * Pods are IPv6-only (plan.podCidr), so their way to 192.80.8.124 is the NAT64 form; the
 * IPv4 address cannot be tied to a pod source here (a rule holds one family), and the
 * Ingress-side deny in forwardPolicy already drops forwarded IPv4 to it.
 */
export function forwardEgressPolicy(input: SecurityInput): GlobalNetworkPolicy {
  const pods: EntityRule = { nets: [cidr(input.plan.podCidr)] };
  const rules: Rule[] = [
    {
      action: "Deny",
      ipVersion: 6,
      source: pods,
      destination: { nets: [...NAT64_DENIED_IPV6] },
      ...why("pods must not read the node's user data from the metadata service, nor reach non-global IPv4 ranges, through NAT64"),
    },
    { action: "Allow", ipVersion: 6, ...why("everything else leaves: other forwarded traffic and the node's own egress") },
    { action: "Allow", ipVersion: 4, ...why("the node's own IPv4 egress, the metadata service included (afterburn, BGP peer routes)") },
  ];
  return policy(
    POLICY_NAMES.forwardEgress,
    POLICY_ORDER.forwardEgress,
    HOST_SELECTOR,
    { applyOnForward: true, preDNAT: false },
    rules,
    "Egress",
  );
}

export function hostPolicies(input: SecurityInput): GlobalNetworkPolicy[] {
  return [publicSurfacePolicy(input), forwardPolicy(input), forwardEgressPolicy(input), hostIngressPolicy(input), controlPlaneIngressPolicy(input)];
}


/**
 * The security manifests, in the order the init node applies them (after Calico's):
 * 1. failsafe ports, so the first moment a host is policed the narrowed list holds;
 * 2. the policies;
 * 3. automatic host endpoints last: a node is policed only once the policies exist.
 * Identical for any number of nodes: nothing here names a node.
 */
export function securityAddonManifests(input: SecurityInput): SecurityManifest[] {
  return [
    { path: `${SECURITY_ADDON_DIR}/40-felix-failsafe-ports.yaml`, yaml: toYamlDocuments([felixConfiguration(input)]) },
    { path: `${SECURITY_ADDON_DIR}/41-host-policies.yaml`, yaml: toYamlDocuments(hostPolicies(input)) },
    { path: `${SECURITY_ADDON_DIR}/42-auto-host-endpoints.yaml`, yaml: toYamlDocuments([kubeControllersConfiguration()]) },
  ];
}
