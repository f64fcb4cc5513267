/**
 * The port/peer matrix of docs/security.md, checked against the rendered manifests
 * (parsed back from YAML) with a small model of Calico's host endpoint semantics
 * (__tests__/support/calico-policy-eval.ts). Each row states who may reach what.
 */
import { Ipv6Cidr, planAddresses } from "../lib/address-plan";
import { SecurityInput, securityAddonManifests } from "../lib/policies";
import { Endpoint, ModelOptions, Packet, PolicyModel, Verdict } from "./support/calico-policy-eval";
import { parseManifest } from "./support/calico-validate";
import { fileText, ignitionFiles } from "./support/calico-userdata";
import { onlyStack, resourcesOf, synthesize } from "./support/synth";

// The default block, zones by hand: zone 0 nodes (/60), zone 1 pods, zone 2 Services, zone 3 external.
const plan = planAddresses("2001:db8:0:ab00::/56");
const API_IP = "2001:db8:0:ab20::1"; // first address of the Service range

const KC = { "projectcalico.org/created-by": "calico-kube-controllers" };
const CP = "node-role.kubernetes.io/control-plane";

// Auto host endpoints carry the node's labels plus KC; workload endpoints carry projectcalico.org/namespace.
const endpoints: Endpoint[] = [
  { name: "cp1", kind: "host", addresses: ["2001:db8:0:ab00::3", "10.70.20.3"], localOnly: [API_IP], labels: { ...KC, "kubernetes.io/hostname": "v6fabric-cp-1", [CP]: "" } },
  { name: "cp2", kind: "host", addresses: ["2001:db8:0:ab00::5"], localOnly: [API_IP], labels: { ...KC, "kubernetes.io/hostname": "v6fabric-cp-2", [CP]: "" } },
  { name: "worker1", kind: "host", addresses: ["2001:db8:0:ab00::7", "147.75.80.7"], labels: { ...KC, "kubernetes.io/hostname": "v6fabric-worker-01" } },
  // A worker someone labelled fabric.v6/public: a node must not open itself that way.
  { name: "worker2", kind: "host", addresses: ["2001:db8:0:ab00::9"], labels: { ...KC, "kubernetes.io/hostname": "v6fabric-worker-02", "fabric.v6/public": "true" } },
  // A control plane registered by `kubeadm join` but not yet labelled by it.
  { name: "cp3-joining", kind: "host", addresses: ["2001:db8:0:ab00::d"], labels: { ...KC, "kubernetes.io/hostname": "v6fabric-cp-3" } },
  { name: "web", kind: "pod", node: "worker1", addresses: ["2001:db8:0:ab10::20"], labels: { "projectcalico.org/namespace": "default", app: "web", "fabric.v6/public": "true" } },
  { name: "web2", kind: "pod", node: "worker2", addresses: ["2001:db8:0:ab10::21"], labels: { "projectcalico.org/namespace": "default", app: "web", "fabric.v6/public": "true" } },
  { name: "db", kind: "pod", node: "worker1", addresses: ["2001:db8:0:ab10::30"], labels: { "projectcalico.org/namespace": "default", app: "db" } },
  { name: "db2", kind: "pod", node: "worker2", addresses: ["2001:db8:0:ab10::31"], labels: { "projectcalico.org/namespace": "default", app: "db" } },
  // A pod that copies a control plane's labels, hoping to pass as one.
  { name: "impostor", kind: "pod", node: "worker2", addresses: ["2001:db8:0:ab10::40"], labels: { "projectcalico.org/namespace": "evil", ...KC, [CP]: "" } },
  // The same on a control plane (tolerating the taint) and on the init node, with every
  // label of a control plane's host endpoint, hostname included.
  {
    name: "impostor-cp",
    kind: "pod",
    node: "cp2",
    addresses: ["2001:db8:0:ab10::41"],
    labels: { "projectcalico.org/namespace": "evil", ...KC, "kubernetes.io/hostname": "v6fabric-cp-2", [CP]: "" },
  },
  {
    name: "impostor-init",
    kind: "pod",
    node: "cp1",
    addresses: ["2001:db8:0:ab10::42"],
    labels: { "projectcalico.org/namespace": "evil", ...KC, "kubernetes.io/hostname": "v6fabric-cp-1", [CP]: "" },
  },
];

const INTERNET = "2001:db8:ffff::1";
const ADMIN = "2001:db8:aa::5";
const API_CLIENT = "2001:db8:bb::7";
const JOINING = "2001:db8:0:ab00::b"; // a node in the node zone that is not registered yet
const INTERNET_V4 = "198.51.100.7";
const PUBLIC_LB = "2001:db8:0:ab30::10"; // Service of the web pods (opted in)
const PRIVATE_LB = "2001:db8:0:ab30::11"; // Service of the db pods (not opted in)
const CLUSTER_IP = "2001:db8:0:ab20::50";

function model(overrides: Partial<SecurityInput> = {}, options: ModelOptions = {}): PolicyModel {
  const input: SecurityInput = { plan, clusterName: "v6fabric", apiAllowedPrefixes: [], adminAllowedPrefixes: [], ...overrides };
  return new PolicyModel(securityAddonManifests(input).flatMap((m) => parseManifest(m.yaml)), endpoints, options);
}

const closed = model();
const open = model({ adminAllowedPrefixes: [Ipv6Cidr.parse("2001:db8:aa::/48")], apiAllowedPrefixes: [Ipv6Cidr.parse("2001:db8:bb::/48")] });

/** The model built from what a deploy sends: the security manifests decoded from the synthesized init node's user data. */
function synthesizedModel(env: Record<string, string>): PolicyModel {
  const [[, init]] = resourcesOf(onlyStack(synthesize(env)), "metal_device").filter(([, d]) => d.hostname === "v6fabric-cp-1");
  const docs = ignitionFiles(init.user_data, () => "abcdef.0123456789abcdef")
    .filter((f) => f.path.startsWith("/etc/kubernetes/addons/security/"))
    .flatMap((f) => parseManifest(fileText(f)));
  expect(docs.length).toBeGreaterThan(0);
  return new PolicyModel(docs, endpoints);
}

const addr = (name: string) => closed.endpoint(name).addresses[0];
const tcp = (src: string, dst: string, port: number): Packet => ({ src, dst, protocol: "TCP", port });
const icmp = (src: string, dst: string, type: number): Packet => ({ src, dst, protocol: "ICMPv6", icmpType: type });

/** Who sends to a node's own port, and how the packet gets there. */
function toHost(m: PolicyModel, from: string, host: string, port: number, protocol: "TCP" | "UDP" = "TCP"): Verdict {
  const fromEndpoint = m.endpoints.find((e) => e.name === from);
  if (fromEndpoint?.kind === "pod") return m.fromPod(from, { dst: addr(host), protocol, port });
  if (fromEndpoint?.kind === "host") return m.fromHost(from, { dst: addr(host), protocol, port });
  return m.arrive(host, { src: from, dst: addr(host), protocol, port });
}

type Row = [string, string, string, number, Verdict, Verdict];
// [who, source, target host, TCP port, with nothing set, with ADMIN_ALLOWED_PREFIXES and API_ALLOWED_PREFIXES set]
const hostPorts: Row[] = [
  // API server: the cluster always, the Internet only from API_ALLOWED_PREFIXES.
  ["Internet → API server", INTERNET, "cp1", 443, "deny", "deny"],
  ["API_ALLOWED_PREFIXES client → API server", API_CLIENT, "cp1", 443, "deny", "allow"],
  ["admin network → API server (a separate list)", ADMIN, "cp1", 443, "deny", "deny"],
  ["pod → API server", "db", "cp1", 443, "allow", "allow"],
  ["worker → API server", "worker1", "cp1", 443, "allow", "allow"],
  ["unregistered node (joining) → API server", JOINING, "cp1", 443, "allow", "allow"],
  ["API server port on a worker (nothing listens) from the Internet", INTERNET, "worker1", 443, "deny", "deny"],
  // etcd: control planes only (and a control plane that is joining).
  ["Internet → etcd client", INTERNET, "cp1", 2379, "deny", "deny"],
  ["Internet → etcd peer", INTERNET, "cp1", 2380, "deny", "deny"],
  ["API_ALLOWED client → etcd", API_CLIENT, "cp1", 2379, "deny", "deny"],
  ["admin → etcd", ADMIN, "cp1", 2379, "deny", "deny"],
  ["pod → etcd", "db", "cp1", 2379, "deny", "deny"],
  ["pod with a control plane's labels → etcd", "impostor", "cp1", 2379, "deny", "deny"],
  ["worker → etcd client", "worker1", "cp1", 2379, "deny", "deny"],
  ["worker → etcd peer", "worker1", "cp1", 2380, "deny", "deny"],
  ["control plane → etcd peer", "cp2", "cp1", 2380, "allow", "allow"],
  ["control plane → etcd client", "cp2", "cp1", 2379, "allow", "allow"],
  ["registered, unlabelled control plane (joining) → etcd peer", "cp3-joining", "cp1", 2380, "allow", "allow"],
  ["unregistered node (joining control plane) → etcd client", JOINING, "cp1", 2379, "allow", "allow"],
  ["control plane → etcd peer of a control plane still joining (not labelled yet)", "cp1", "cp3-joining", 2380, "allow", "allow"],
  ["worker → etcd of a control plane still joining", "worker1", "cp3-joining", 2379, "deny", "deny"],
  ["pod → API server of a control plane still joining", "db", "cp3-joining", 443, "allow", "allow"],
  // kubelet: the API servers only.
  ["Internet → kubelet", INTERNET, "worker1", 10250, "deny", "deny"],
  ["admin → kubelet", ADMIN, "worker1", 10250, "deny", "deny"],
  ["pod → kubelet", "db2", "worker1", 10250, "deny", "deny"],
  ["pod with a control plane's labels → kubelet", "impostor", "worker1", 10250, "deny", "deny"],
  ["worker → another worker's kubelet", "worker2", "worker1", 10250, "deny", "deny"],
  ["control plane → kubelet", "cp1", "worker1", 10250, "allow", "allow"],
  ["control plane → control plane kubelet", "cp2", "cp1", 10250, "allow", "allow"],
  // BGP: the Metal routers only.
  ["router fc00::e → BGP", "fc00::e", "worker1", 179, "allow", "allow"],
  ["router fc00::f → BGP", "fc00::f", "cp1", 179, "allow", "allow"],
  ["another fc00:: address → BGP", "fc00::1", "worker1", 179, "deny", "deny"],
  ["Internet → BGP", INTERNET, "worker1", 179, "deny", "deny"],
  ["node → node BGP (no mesh)", "worker2", "worker1", 179, "deny", "deny"],
  // Typha: nodes only.
  ["node → Typha", "worker2", "worker1", 5473, "allow", "allow"],
  ["joining node → Typha", JOINING, "worker1", 5473, "allow", "allow"],
  ["pod → Typha", "db2", "worker1", 5473, "deny", "deny"],
  ["Internet → Typha", INTERNET, "worker1", 5473, "deny", "deny"],
  // SSH: ADMIN_ALLOWED_PREFIXES only; closed by default.
  ["Internet → SSH", INTERNET, "worker1", 22, "deny", "deny"],
  ["admin network → SSH on a worker", ADMIN, "worker1", 22, "deny", "allow"],
  ["admin network → SSH on a control plane", ADMIN, "cp1", 22, "deny", "allow"],
  ["API_ALLOWED client → SSH", API_CLIENT, "cp1", 22, "deny", "deny"],
  ["pod → SSH", "db2", "worker1", 22, "deny", "deny"],
  // Whatever else listens on a node.
  ["Internet → kube-proxy health", INTERNET, "worker1", 10256, "deny", "deny"],
  ["Internet → a NodePort on the node address", INTERNET, "worker1", 30080, "deny", "deny"],
  ["Internet → a node labelled fabric.v6/public (SSH)", INTERNET, "worker2", 22, "deny", "deny"],
  ["Internet → a node labelled fabric.v6/public (kubelet)", INTERNET, "worker2", 10250, "deny", "deny"],
];

describe("node ports: who may reach what", () => {
  test.each(hostPorts)("%s (%s → %s:%d): %s by default, %s with admin and API prefixes", (_what, from, host, port, closedVerdict, openVerdict) => {
    expect(toHost(closed, from, host, port)).toBe(closedVerdict);
    expect(toHost(open, from, host, port)).toBe(openVerdict);
  });

  // The same rows on the documents the init node really carries, settings as a user sets them.
  describe("as synthesized: the init node's user data, with the default settings and with ADMIN_ and API_ALLOWED_PREFIXES", () => {
    const closedSynth = synthesizedModel({});
    const openSynth = synthesizedModel({ ADMIN_ALLOWED_PREFIXES: "2001:db8:aa::/48", API_ALLOWED_PREFIXES: "2001:db8:bb::/48" });
    test.each(hostPorts)("%s (%s → %s:%d): %s by default, %s with admin and API prefixes", (_what, from, host, port, closedVerdict, openVerdict) => {
      expect(toHost(closedSynth, from, host, port)).toBe(closedVerdict);
      expect(toHost(openSynth, from, host, port)).toBe(openVerdict);
    });
  });

  test.each([
    [1, "allow"],
    [2, "allow"], // packet too big: path MTU discovery
    [3, "allow"],
    [4, "allow"],
    [128, "allow"],
    [133, "allow"],
    [134, "allow"],
    [135, "allow"], // neighbor solicitation
    [136, "allow"], // neighbor advertisement
    [130, "allow"],
    [143, "allow"],
    [137, "deny"], // redirect: not needed on Metal's routed network
    [200, "deny"],
  ] as const)("ICMPv6 type %d from anywhere to a node: %s", (type, verdict) => {
    for (const m of [closed, open]) {
      expect(m.arrive("worker1", icmp(INTERNET, addr("worker1"), type))).toBe(verdict);
      expect(m.arrive("cp1", icmp("fe80::1", addr("cp1"), type))).toBe(verdict);
    }
  });

  test("IPv4 reaches nothing new on a node (only Calico's DHCPv4 failsafe port)", () => {
    for (const m of [closed, open]) {
      for (const port of [22, 443, 2379, 10250, 179]) expect(m.arrive("worker1", { src: INTERNET_V4, dst: "147.75.80.7", protocol: "TCP", port })).toBe("deny");
      expect(m.arrive("worker1", { src: INTERNET_V4, dst: "147.75.80.7", protocol: "UDP", port: 68 })).toBe("allow");
    }
  });

  test("a control plane reaches its own API server through the ClusterIP it holds on lo", () => {
    // The kernel picks the local address itself as source.
    expect(closed.arrive("cp1", tcp(API_IP, API_IP, 443))).toBe("allow");
    expect(closed.arrive("cp1", tcp("::1", addr("cp1"), 443))).toBe("allow");
    expect(closed.arrive("cp1", tcp(addr("cp1"), API_IP, 443))).toBe("allow");
    expect(closed.arrive("cp1", tcp(API_IP, API_IP, 2379))).toBe("deny");
  });

  test("loopback stays open (health checks, API server to local etcd)", () => {
    const cp1 = closed.endpoint("cp1");
    expect(closed.hook("input", cp1, { src: "::1", dst: "::1", protocol: "TCP", port: 2379 })).toBe("allow");
    expect(closed.hook("input", cp1, { src: "127.0.0.1", dst: "127.0.0.1", protocol: "TCP", port: 10259 })).toBe("allow");
  });
});

/**
 * A pod is never a node, whatever labels it carries: every node selector of the policies
 * requires !has(projectcalico.org/namespace), a label every workload endpoint has. Rows
 * for impostors on a control plane and on the init node, to another node's etcd,
 * kubelet and API server, in all four models: with the automatic all-interfaces host
 * endpoints the forward policy of the pod's own node already drops pod traffic to
 * another node's etcd or kubelet; with host endpoints on the uplink only (the named
 * reading) that drop is missing and the namespace clause is what keeps the impostor
 * out. Without the clause the named-model rows fail.
 */
describe("a pod with a control plane's labels passes for no node", () => {
  const withPrefixes = { adminAllowedPrefixes: [Ipv6Cidr.parse("2001:db8:aa::/48")], apiAllowedPrefixes: [Ipv6Cidr.parse("2001:db8:bb::/48")] };
  const models: [string, PolicyModel][] = [
    ["closed, all-interfaces host endpoints", closed],
    ["open, all-interfaces host endpoints", open],
    ["closed, uplink-only host endpoints", model({}, { hepInterfaces: "named" })],
    ["open, uplink-only host endpoints", model(withPrefixes, { hepInterfaces: "named" })],
  ];
  // [what, pod, target host, TCP port, verdict]
  const rows: [string, string, string, number, Verdict][] = [
    ["impostor on a control plane → another control plane's etcd client port", "impostor-cp", "cp1", 2379, "deny"],
    ["impostor on a control plane → another control plane's etcd peer port", "impostor-cp", "cp1", 2380, "deny"],
    ["impostor on a control plane → a control plane still joining, etcd", "impostor-cp", "cp3-joining", 2379, "deny"],
    ["impostor on a control plane → a worker's kubelet", "impostor-cp", "worker1", 10250, "deny"],
    ["impostor on a control plane → another control plane's kubelet", "impostor-cp", "cp1", 10250, "deny"],
    ["impostor on the init node → a control plane's etcd client port", "impostor-init", "cp2", 2379, "deny"],
    ["impostor on the init node → a control plane's etcd peer port", "impostor-init", "cp2", 2380, "deny"],
    ["impostor on the init node → a worker's kubelet", "impostor-init", "worker1", 10250, "deny"],
    ["impostor on the init node → a control plane's kubelet", "impostor-init", "cp2", 10250, "deny"],
    ["impostor on a worker → a control plane's etcd", "impostor", "cp1", 2379, "deny"],
    ["impostor on a worker → a worker's kubelet", "impostor", "worker1", 10250, "deny"],
    // The API server listens on 443 (docs/control-plane.md): pods are API clients like any pod.
    ["impostor on a control plane → another control plane's API server (pods may)", "impostor-cp", "cp1", 443, "allow"],
    ["impostor on the init node → a control plane's API server (pods may)", "impostor-init", "cp2", 443, "allow"],
    // 6443, kubeadm's default port, is not used; Calico's default failsafe list would open it.
    ["impostor on a control plane → 6443 of another control plane", "impostor-cp", "cp1", 6443, "deny"],
    ["impostor on the init node → 6443 of a control plane", "impostor-init", "cp2", 6443, "deny"],
  ];
  describe.each(models)("%s", (_label, m) => {
    test.each(rows)("%s (%s → %s:%d): %s", (_what, pod, host, port, verdict) => {
      expect(m.fromPod(pod, { dst: addr(host), protocol: "TCP", port })).toBe(verdict);
    });
  });

  // Residual risk (docs/security.md): a pod's packets to its own node pass Felix's
  // DefaultEndpointToHostAction (ACCEPT, set by the operator) and never meet host policy,
  // so labels play no part there; control planes are tainted against ordinary pods.
  test.each([
    ["impostor on the init node → its own node's etcd", "impostor-init", "cp1", 2379],
    ["impostor on a control plane → its own node's kubelet", "impostor-cp", "cp2", 10250],
    ["ordinary pod → its own node's kubelet", "db", "worker1", 10250],
  ])("%s (%s → %s:%d): allowed by DefaultEndpointToHostAction, not by any policy", (_what, pod, host, port) => {
    for (const [, m] of models) expect(m.fromPod(pod, { dst: addr(host), protocol: "TCP", port })).toBe("allow");
    const dropping = new PolicyModel(securityAddonManifests({ plan, clusterName: "v6fabric", apiAllowedPrefixes: [], adminAllowedPrefixes: [] }).flatMap((x) => parseManifest(x.yaml)), endpoints, {
      endpointToHostAction: "DROP",
    });
    expect(dropping.fromPod(pod, { dst: addr(host), protocol: "TCP", port })).toBe("deny");
  });
});

describe("workloads: default deny from outside, explicit opt-in", () => {
  test("a Service of opted-in pods is reachable through its external address, with either externalTrafficPolicy", () => {
    for (const m of [closed, open]) {
      // Local: the node announcing the /128 holds the pod; no SNAT.
      expect(m.arrive("worker1", tcp(INTERNET, PUBLIC_LB, 80), { to: addr("web"), port: 8080 })).toBe("allow");
      // Cluster: the router picked another node; kube-proxy DNATs and masquerades to the pod's node.
      expect(m.arrive("cp1", tcp(INTERNET, PUBLIC_LB, 80), { to: addr("web"), port: 8080, snat: true })).toBe("allow");
      expect(m.arrive("worker1", tcp(INTERNET, PUBLIC_LB, 80), { to: addr("web2"), port: 8080, snat: true })).toBe("allow");
    }
  });

  test("a Service of pods without the label is not, with either policy, even though the pod's node sees a node address after SNAT", () => {
    for (const m of [closed, open]) {
      expect(m.arrive("worker1", tcp(INTERNET, PRIVATE_LB, 80), { to: addr("db"), port: 5432 })).toBe("deny");
      expect(m.arrive("worker1", tcp(INTERNET, PRIVATE_LB, 80), { to: addr("db2"), port: 5432, snat: true })).toBe("deny");
      expect(m.arrive("cp1", tcp(INTERNET, PRIVATE_LB, 80), { to: addr("db"), port: 5432, snat: true })).toBe("deny");
    }
  });

  test("from outside, pods are never addressed directly, ClusterIPs and NodePorts are closed, even for opted-in pods", () => {
    for (const m of [closed, open]) {
      expect(m.arrive("worker1", tcp(INTERNET, addr("web"), 8080))).toBe("deny");
      expect(m.arrive("worker1", tcp(INTERNET, addr("db"), 5432))).toBe("deny");
      expect(m.arrive("worker1", tcp(INTERNET, CLUSTER_IP, 80), { to: addr("web"), port: 8080 })).toBe("deny");
      expect(m.arrive("worker1", tcp(INTERNET, addr("worker1"), 30080), { to: addr("web"), port: 8080 })).toBe("deny");
      expect(m.arrive("worker2", { src: INTERNET, dst: addr("worker2"), protocol: "UDP", port: 30053 }, { to: addr("web"), port: 53 })).toBe("deny");
    }
  });

  test("a port from the NodePort range on an external address is public only for opted-in pods; the same port on a node address is not", () => {
    for (const m of [closed, open]) {
      expect(m.arrive("worker1", tcp(INTERNET, PUBLIC_LB, 31000), { to: addr("web"), port: 8080 })).toBe("allow");
      expect(m.arrive("cp1", tcp(INTERNET, PUBLIC_LB, 31000), { to: addr("web"), port: 8080, snat: true })).toBe("allow");
      expect(m.arrive("worker1", tcp(INTERNET, PRIVATE_LB, 31000), { to: addr("db"), port: 5432 })).toBe("deny");
      expect(m.arrive("worker1", tcp(INTERNET, addr("worker1"), 31000), { to: addr("web"), port: 8080 })).toBe("deny");
      expect(m.arrive("cp1", tcp(INTERNET, addr("cp1"), 31000), { to: addr("web"), port: 8080, snat: true })).toBe("deny");
    }
  });

  test("a hostPort mapping is public only for an opted-in pod", () => {
    expect(closed.arrive("worker1", tcp(INTERNET, addr("worker1"), 8443), { to: addr("web"), port: 8443 })).toBe("allow");
    expect(closed.arrive("worker1", tcp(INTERNET, addr("worker1"), 5432), { to: addr("db"), port: 5432 })).toBe("deny");
  });

  test("the API server's ClusterIP: the cluster, and API_ALLOWED_PREFIXES when set", () => {
    // Through a worker (kube-proxy DNAT to a control plane) and straight to a control plane's lo.
    expect(closed.arrive("worker1", tcp(INTERNET, API_IP, 443), { to: addr("cp1"), snat: true })).toBe("deny");
    expect(closed.arrive("cp2", tcp(API_CLIENT, API_IP, 443))).toBe("deny");
    expect(open.arrive("worker1", tcp(API_CLIENT, API_IP, 443), { to: addr("cp1"), snat: true })).toBe("allow");
    expect(open.arrive("worker1", tcp(API_CLIENT, API_IP, 443), { to: addr("cp1") })).toBe("allow");
    expect(open.arrive("cp2", tcp(API_CLIENT, API_IP, 443))).toBe("allow");
    expect(open.arrive("worker1", tcp(INTERNET, API_IP, 443), { to: addr("cp1") })).toBe("deny");
    // A joining worker, before its kube-proxy runs: routed to any node, DNATed there.
    expect(closed.arrive("worker2", tcp(JOINING, API_IP, 443), { to: addr("cp1"), snat: true })).toBe("allow");
    expect(closed.arrive("cp1", tcp(JOINING, API_IP, 443))).toBe("allow");
    // Other ports on the ClusterIP a control plane holds on lo stay closed, even to nodes.
    expect(closed.arrive("cp1", tcp("2001:db8:0:ab00::7", API_IP, 10250))).toBe("deny");
    expect(closed.arrive("cp1", tcp(JOINING, API_IP, 2379))).toBe("deny");
  });

  test("in-cluster traffic and DNS keep working", () => {
    for (const m of [closed, open]) {
      expect(m.fromPod("db", { dst: addr("db2"), protocol: "TCP", port: 5432 })).toBe("allow"); // pod → pod, other node
      expect(m.fromPod("db", { dst: addr("web"), protocol: "TCP", port: 8080 })).toBe("allow"); // same node
      expect(m.fromPod("db2", { dst: CLUSTER_IP, protocol: "UDP", port: 53 }, { to: addr("db"), port: 53 })).toBe("allow"); // DNS via a ClusterIP
      expect(m.fromPod("db2", { dst: API_IP, protocol: "TCP", port: 443 }, { to: addr("cp1") })).toBe("allow"); // in-cluster API client
      expect(m.fromPod("db", { dst: "2001:db8:ffff::53", protocol: "UDP", port: 53 })).toBe("allow"); // egress to the Internet
      expect(m.fromPod("db", { dst: PRIVATE_LB, protocol: "TCP", port: 80 }, { to: addr("db2"), port: 5432 })).toBe("allow");
      expect(m.fromHost("cp1", { dst: addr("db2"), protocol: "TCP", port: 8443 })).toBe("allow"); // API server → webhook pod
      expect(m.fromHost("worker1", { dst: addr("db2"), protocol: "TCP", port: 9100 })).toBe("allow");
    }
  });

  // Both host endpoint models: what runs (kube-controllers' `*` host endpoints) and host
  // endpoints on the uplink only, where a pod's traffic meets only the Egress side on its
  // way out. The deny must hold in both, so it cannot rest on one reading of Calico.
  const named = (m: "closed" | "open") =>
    model(m === "open" ? { adminAllowedPrefixes: [Ipv6Cidr.parse("2001:db8:aa::/48")], apiAllowedPrefixes: [Ipv6Cidr.parse("2001:db8:bb::/48")] } : {}, { hepInterfaces: "named" });
  const allModels: [string, PolicyModel][] = [
    ["closed, all-interfaces host endpoints", closed],
    ["open, all-interfaces host endpoints", open],
    ["closed, uplink-only host endpoints", named("closed")],
    ["open, uplink-only host endpoints", named("open")],
  ];
  const METADATA_NAT64 = "64:ff9b::c050:87c";
  const METADATA_V4 = "192.80.8.124";

  type EgressRow = [string, (m: PolicyModel) => Verdict, Verdict];
  const egressRows: EgressRow[] = [
    ["pod → metadata service (NAT64)", (m) => m.fromPod("db", { dst: METADATA_NAT64, protocol: "TCP", port: 80 }), "deny"],
    ["pod → metadata service (NAT64), HTTPS", (m) => m.fromPod("db2", { dst: METADATA_NAT64, protocol: "TCP", port: 443 }), "deny"],
    ["pod → another IPv4 host behind NAT64", (m) => m.fromPod("db", { dst: "64:ff9b::c633:6407", protocol: "TCP", port: 443 }), "allow"],
    ["pod → Internet (egress is not default-denied)", (m) => m.fromPod("db", { dst: INTERNET, protocol: "TCP", port: 443 }), "allow"],
    ["pod → Internet DNS", (m) => m.fromPod("web", { dst: "2001:db8:ffff::53", protocol: "UDP", port: 53 }), "allow"],
    ["node → metadata service (afterburn, BGP peer routes)", (m) => m.fromHost("worker1", { dst: METADATA_V4, protocol: "TCP", port: 80 }), "allow"],
    ["control plane → metadata service", (m) => m.fromHost("cp1", { dst: METADATA_V4, protocol: "TCP", port: 443 }), "allow"],
    ["node → metadata service over NAT64", (m) => m.fromHost("worker1", { dst: METADATA_NAT64, protocol: "TCP", port: 80 }), "allow"],
    ["node → Internet (IPv6)", (m) => m.fromHost("worker1", { dst: INTERNET, protocol: "TCP", port: 443 }), "allow"],
    ["node → Internet (IPv4)", (m) => m.fromHost("worker1", { dst: INTERNET_V4, protocol: "TCP", port: 443 }), "allow"],
    ["node → Internet, a port no failsafe lists", (m) => m.fromHost("cp2", { dst: INTERNET, protocol: "UDP", port: 123 }), "allow"],
    ["node → another node's kubelet-free port (egress side only decides nothing)", (m) => m.fromHost("cp1", { dst: addr("worker1"), protocol: "TCP", port: 10250 }), "allow"],
  ];

  describe.each(allModels)("pods cannot reach the metadata service; everything else still leaves (%s)", (_label, m) => {
    test.each(egressRows)("%s", (_row, send, expected) => {
      expect(send(m)).toBe(expected);
    });
  });

  test("should a pod ever get an IPv4 address, the node still drops its packets to the metadata service", () => {
    for (const [, m] of allModels) {
      const node = m.endpoint(m.endpoint("db").node!);
      expect(m.hook("forwardIn", node, { src: "10.244.0.5", dst: METADATA_V4, protocol: "TCP", port: 443 })).toBe("deny");
    }
  });

  test("the egress side is what makes the pod deny independent of the host endpoint model (mutations)", () => {
    const docs = securityAddonManifests({ plan, clusterName: "v6fabric", apiAllowedPrefixes: [], adminAllowedPrefixes: [] }).flatMap((m) => parseManifest(m.yaml));
    const isEgress = (d: Record<string, any>) => d.kind === "GlobalNetworkPolicy" && d.spec.types.includes("Egress");
    expect(docs.filter(isEgress)).toHaveLength(1);
    const toMetadata = (m: PolicyModel) => m.fromPod("db", { dst: METADATA_NAT64, protocol: "TCP", port: 80 });
    // The ingress-only rendering (before the Egress policy): holds only where cali* is a host endpoint side.
    const ingressOnly = docs.filter((d) => !isEgress(d));
    expect(toMetadata(new PolicyModel(ingressOnly, endpoints))).toBe("deny");
    expect(toMetadata(new PolicyModel(ingressOnly, endpoints, { hepInterfaces: "named" }))).toBe("allow");
    // Without the Ingress-side denies, the Egress policy alone still holds, in both models.
    const egressOnlyDeny = docs.map((d) =>
      d.kind === "GlobalNetworkPolicy" && d.spec.ingress
        ? { ...d, spec: { ...d.spec, ingress: d.spec.ingress.filter((r: any) => !JSON.stringify(r.destination ?? {}).includes(METADATA_NAT64)) } }
        : d,
    );
    expect(toMetadata(new PolicyModel(egressOnlyDeny, endpoints))).toBe("deny");
    expect(toMetadata(new PolicyModel(egressOnlyDeny, endpoints, { hepInterfaces: "named" }))).toBe("deny");
    // Without the closing Allow rules, an Egress policy drops everything it does not allow:
    // the model must show that, or the "still leaves" rows above could not fail.
    const noAllow = docs.map((d) => (isEgress(d) ? { ...d, spec: { ...d.spec, egress: d.spec.egress.filter((r: any) => r.action !== "Allow") } } : d));
    for (const opts of [{}, { hepInterfaces: "named" as const }]) {
      const m = new PolicyModel(noAllow, endpoints, opts);
      expect(m.fromPod("db", { dst: INTERNET, protocol: "TCP", port: 443 })).toBe("deny");
      expect(m.fromHost("worker1", { dst: INTERNET, protocol: "TCP", port: 443 })).toBe("deny");
      expect(m.fromHost("worker1", { dst: METADATA_V4, protocol: "TCP", port: 80 })).toBe("deny");
      // Failsafe outbound ports still leave (Calico's default list: DNS, BGP, etcd, Typha, API server).
      expect(m.fromHost("worker1", { dst: "2001:db8:ffff::53", protocol: "UDP", port: 53 })).toBe("allow");
    }
  });


  describe("NAT64 (docs/nat64.md): pods reach the IPv4 Internet, never the metadata service or a non-global range", () => {
    // The 64:ff9b::/96 forms (RFC 6052) written out: 10.0.0.5, 172.16.0.1, 192.168.1.1,
    // 169.254.255.1 (Metal's IPv4 BGP peer), 127.0.0.1, 100.64.0.1 (the translator itself).
    const nonGlobal = ["64:ff9b::a00:5", "64:ff9b::ac10:1", "64:ff9b::c0a8:101", "64:ff9b::a9fe:ff01", "64:ff9b::7f00:1", "64:ff9b::6440:1"];
    const withNat64 = model({ nat64: true });
    const withNat64Named = model({ nat64: true }, { hepInterfaces: "named" });
    test.each(nonGlobal)("pod → %s: denied on the IPv6 side, in both host endpoint models", (dst) => {
      for (const m of [closed, withNat64, withNat64Named, ...allModels.map(([, x]) => x)]) {
        expect(m.fromPod("db", { dst, protocol: "TCP", port: 80 })).toBe("deny");
      }
    });

    test("pod → an IPv4-only Internet host through NAT64: allowed", () => {
      for (const m of [withNat64, withNat64Named]) expect(m.fromPod("db", { dst: "64:ff9b::c633:6407", protocol: "TCP", port: 443 })).toBe("allow");
    });

    // The translator's IPv4 leg: tayga writes the packet on the pod's node from its pool;
    // Felix sees it as forwarded IPv4 arriving on the TUN device (the `*` host endpoint).
    const POOL_SOURCE = "100.64.0.9";
    const leg = (m: PolicyModel, dst: string) => m.hook("forwardIn", m.endpoint("worker1"), { src: POOL_SOURCE, dst, protocol: "TCP", port: 443 });
    test.each([
      [INTERNET_V4, "allow"],
      ["192.80.8.124", "deny"], // the metadata service
      ["10.70.20.3", "deny"], // Metal's private network (cp1's private IPv4)
      ["172.16.0.1", "deny"],
      ["192.168.1.1", "deny"],
      ["169.254.255.1", "deny"],
      ["127.0.0.1", "deny"],
      ["147.75.80.7", "deny"], // a node's own public IPv4
    ])("with NAT64, pool → %s: %s", (dst, verdict) => {
      expect(leg(withNat64, dst)).toBe(verdict);
      expect(leg(withNat64Named, dst)).toBe(verdict);
    });

    test("without NAT64 (NAT64_ENABLED=false) no IPv4 is forwarded for pods at all", () => {
      expect(leg(closed, INTERNET_V4)).toBe("deny");
      expect(leg(model({ nat64: false }), INTERNET_V4)).toBe("deny");
    });

    test("as synthesized: on by default, off with NAT64_ENABLED=false", () => {
      expect(leg(synthesizedModel({}), INTERNET_V4)).toBe("allow");
      expect(leg(synthesizedModel({ NAT64_ENABLED: "false" }), INTERNET_V4)).toBe("deny");
      expect(leg(synthesizedModel({}), "192.80.8.124")).toBe("deny");
    });

    test("the nodes' own IPv4 traffic is unchanged: the metadata service and the Internet still leave", () => {
      for (const m of [withNat64, withNat64Named]) {
        expect(m.fromHost("worker1", { dst: METADATA_V4, protocol: "TCP", port: 80 })).toBe("allow");
        expect(m.fromHost("worker1", { dst: INTERNET_V4, protocol: "TCP", port: 443 })).toBe("allow");
      }
    });
  });
});

