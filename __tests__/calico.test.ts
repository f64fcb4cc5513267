import { planAddresses } from "../lib/address-plan";
import {
  AddonManifest,
  CalicoConfigError,
  CalicoInput,
  bgpFilter,
  bgpPasswordManifestPrefix,
  calicoAddonManifests,
} from "../lib/calico";
import { CALICO } from "../lib/versions";

import { calicoErrors, parseManifest } from "./support/calico-validate";

// The default block, cut by hand (zones are /60s: hex digit 3 of the 4th group):
// zone 1 -> first /64 for pods, zone 2 -> first /108 for Services, zone 3 -> first /112 external.
const BLOCK = "2001:db8:0:ab00::/56";
const POD = "2001:db8:0:ab10::/64";
const SERVICE = "2001:db8:0:ab20::/108";
const EXTERNAL = "2001:db8:0:ab30::/112";

const base: CalicoInput = { plan: planAddresses(BLOCK), asNumber: 65000 };

function docsOf(manifests: AddonManifest[]): Record<string, any>[] {
  return manifests.flatMap((m) => ("yaml" in m ? parseManifest(m.yaml) : []));
}

function byKind(docs: Record<string, any>[], kind: string): Record<string, any>[] {
  return docs.filter((d) => d.kind === kind);
}

describe("every Calico and operator document validates strictly", () => {
  test.each([
    ["defaults", base],
    ["MD5 password", { ...base, md5Password: true }],
    ["router ID by hash", { ...base, routerIdSource: "hash" as const }],
    ["ASN 64512, flexvolume None", { ...base, asNumber: 64512, flexVolumePath: "None" }],
  ])("%s", (_label, input) => {
    const docs = docsOf(calicoAddonManifests(input));
    expect(docs.map((d) => d.kind).sort()).toEqual([
      "BGPConfiguration",
      "BGPFilter",
      "BGPPeer",
      "BGPPeer",
      "IPAMConfiguration",
      "IPPool",
      "IPPool",
      "IPPool",
      "Installation",
      "ValidatingAdmissionPolicy",
      "ValidatingAdmissionPolicy",
      "ValidatingAdmissionPolicyBinding",
      "ValidatingAdmissionPolicyBinding",
    ]);
    // The admission policy is Kubernetes' own: the control-plane rehearsal checks it with the real API server.
    expect(docs.filter((d) => d.apiVersion !== "admissionregistration.k8s.io/v1").flatMap(calicoErrors)).toEqual([]);
  });

  test("the schemas reject what kubectl would (so the checks above can fail)", () => {
    const filter = bgpFilter(base) as any;
    const typo = { ...filter, spec: { exportV6: [{ action: "Accept", cidr: POD, matchOperator: "In", prefixLen: { min: 120 } }] } };
    const noOperator = { ...filter, spec: { exportV6: [{ action: "Accept", cidr: POD }] } };
    const lengthWithoutCidr = { ...filter, spec: { exportV6: [{ action: "Accept", prefixLength: { min: 120 } }] } };
    const tooLong = { ...filter, spec: { exportV6: [{ action: "Accept", cidr: POD, matchOperator: "In", prefixLength: { max: 129 } }] } };
    for (const bad of [typo, noOperator, lengthWithoutCidr, tooLong]) expect(calicoErrors(bad)).not.toEqual([]);
    const peer = byKind(docsOf(calicoAddonManifests(base)), "BGPPeer")[0];
    expect(calicoErrors({ ...peer, spec: { ...peer.spec, multihop: true } })).not.toEqual([]);
    expect(calicoErrors({ ...peer, spec: { ...peer.spec, node: "v6fabric-worker-01" } })).not.toEqual([]); // node and nodeSelector
    const ipam = byKind(docsOf(calicoAddonManifests(base)), "IPAMConfiguration")[0];
    expect(calicoErrors({ ...ipam, spec: { ...ipam.spec, maxBlockPerHost: 2 } })).not.toEqual([]);
    expect(calicoErrors({ ...ipam, spec: { maxBlocksPerHost: 2 } })).not.toEqual([]); // strictAffinity and autoAllocateBlocks are required
    // Only the group and version the pinned CRDs serve, and v3's kind names.
    expect(calicoErrors({ ...peer, apiVersion: "crd.projectcalico.org/v1" })).not.toEqual([]);
    expect(calicoErrors({ ...ipam, kind: "IPAMConfig" })).not.toEqual([]);
  });
});

describe("what the manifests say", () => {
  const manifests = calicoAddonManifests(base);
  const docs = docsOf(manifests);
  const [installation] = byKind(docs, "Installation");
  const [bgpConfig] = byKind(docs, "BGPConfiguration");
  const peers = byKind(docs, "BGPPeer");
  const pools = byKind(docs, "IPPool");

  test("the native v3 CRDs come first, then the operator, both pinned and verified", () => {
    expect(manifests[0]).toEqual({ path: expect.stringMatching(/^\/etc\/kubernetes\/addons\//), remote: CALICO.v3Crds });
    expect(CALICO.v3Crds.url).toContain(`/${CALICO.version}/manifests/v3_projectcalico_org.yaml`);
    expect(CALICO.v3Crds.hash).toMatch(/^sha512-[0-9a-f]{128}$/);
    expect(manifests[1]).toEqual({ path: expect.stringMatching(/^\/etc\/kubernetes\/addons\//), remote: CALICO.operatorManifest });
    expect(CALICO.operatorManifest.url).toContain(`/${CALICO.version}/manifests/tigera-operator.yaml`);
    expect(CALICO.operatorManifest.hash).toMatch(/^sha512-[0-9a-f]{128}$/);
  });

  test("node-to-node mesh off; the project ASN; the Metal routers' ASN", () => {
    expect(bgpConfig.metadata.name).toBe("default");
    expect(bgpConfig.spec.nodeToNodeMeshEnabled).toBe(false);
    expect(bgpConfig.spec.asNumber).toBe(65000);
    expect(peers.map((p) => p.spec.asNumber)).toEqual([65530, 65530]);
    expect(byKind(docsOf(calicoAddonManifests({ ...base, asNumber: 64600 })), "BGPConfiguration")[0].spec.asNumber).toBe(64600);
  });

  test("advertised ranges equal the address plan's", () => {
    expect(bgpConfig.spec.serviceClusterIPs).toEqual([{ cidr: SERVICE }]);
    expect(bgpConfig.spec.serviceExternalIPs).toEqual([{ cidr: EXTERNAL }]);
    expect(bgpConfig.spec.serviceLoadBalancerIPs).toEqual([{ cidr: EXTERNAL }]);
    expect(bgpConfig.spec.serviceLoadBalancerAggregation).toBe("Enabled");
  });

  test("pools: pods = the pod range; the external range's first half for Cluster Services, LOCAL_SERVICE_ROUTES addresses for Local ones; no encapsulation, no NAT", () => {
    expect(installation.spec.calicoNetwork.ipPools).toEqual([]);
    const [pod, lb, local] = pools;
    expect(pod.spec).toMatchObject({ cidr: POD, blockSize: 120, allowedUses: ["Workload"], nodeSelector: "all()", assignmentMode: "Automatic" });
    expect(lb.spec).toMatchObject({ cidr: "2001:db8:0:ab30::/113", allowedUses: ["LoadBalancer"], nodeSelector: "all()", assignmentMode: "Automatic" });
    // Manual: Calico assigns from it only to Services that name it.
    expect(local.metadata.name).toBe("local-services-ipv6");
    expect(local.spec).toMatchObject({ cidr: "2001:db8:0:ab30::8000/126", blockSize: 126, allowedUses: ["LoadBalancer"], nodeSelector: "all()", assignmentMode: "Manual" });
    const two = byKind(docsOf(calicoAddonManifests({ ...base, localServiceRoutes: 2 })), "IPPool");
    expect(two[2].spec).toMatchObject({ cidr: "2001:db8:0:ab30::8000/127", blockSize: 127 });
    expect(byKind(docsOf(calicoAddonManifests({ ...base, localServiceRoutes: 0 })), "IPPool").map((p) => p.metadata.name)).toEqual(["pods-ipv6", "loadbalancer-ipv6"]);
    for (const p of pools) {
      expect(p.spec.ipipMode).toBe("Never");
      expect(p.spec.vxlanMode).toBe("Never");
      // Absent means false, the form Calico stores (no NAT; every pool exported over BGP).
      expect([p.metadata.name, p.spec.natOutgoing, p.spec.disableBGPExport]).toEqual([p.metadata.name, undefined, undefined]);
      expect(p.spec.cidr).toContain(":"); // no IPv4 pool anywhere
    }
  });

  test("Installation: IPv6 node address from the kubelet, BGP on, iptables, writable flexvolume dir", () => {
    const network = installation.spec.calicoNetwork;
    expect(network.bgp).toBe("Enabled");
    expect(network.linuxDataplane).toBe("Iptables");
    expect(network.nodeAddressAutodetectionV6).toEqual({ kubernetes: "NodeInternalIP" });
    // Router ID from the private IPv4 only; the hash variant has no IPv4 detection at all.
    expect(network.nodeAddressAutodetectionV4).toEqual({ cidrs: ["10.0.0.0/8"] });
    const hashed = byKind(docsOf(calicoAddonManifests({ ...base, routerIdSource: "hash" })), "Installation")[0];
    expect(hashed.spec.calicoNetwork.nodeAddressAutodetectionV4).toBeUndefined();
    // The kubelet's volumePluginDir (docs/control-plane.md, "FlexVolume directory").
    expect(installation.spec.flexVolumePath).toBe("/var/lib/kubelet/volumeplugins/");
  });

  test("peers are global: every node, no per-hostname object", () => {
    expect(peers.map((p) => p.spec.peerIP).sort()).toEqual(["fc00::e", "fc00::f"]);
    for (const p of peers) {
      expect(p.spec.nodeSelector).toBe("all()");
      expect(p.spec.node).toBeUndefined();
      expect(p.spec.filters).toEqual(["metal-export"]);
      expect(p.spec.password).toBeUndefined();
    }
    const text = manifests.map((m) => ("yaml" in m ? m.yaml : "")).join("\n");
    expect(text).not.toMatch(/v6fabric-(cp|worker)-/);
  });

  test("with MD5 the peers read the password from a Secret calico-node may read", () => {
    const withPassword = calicoAddonManifests({ ...base, md5Password: true });
    for (const p of byKind(docsOf(withPassword), "BGPPeer")) {
      expect(p.spec.password).toEqual({ secretKeyRef: { name: "metal-bgp-password", key: "password" } });
    }
    const last = withPassword[withPassword.length - 1];
    expect("secretPrefix" in last).toBe(true);
    const prefix = bgpPasswordManifestPrefix();
    expect(Buffer.byteLength(prefix) % 3).toBe(0);
    // What the node gets once Terraform appended base64(password): base64 of prefix, then of the value.
    const value = Buffer.from("s3cr3t:\"+/x").toString("base64");
    const fileBase64 = Buffer.from(prefix).toString("base64") + Buffer.from(value).toString("base64");
    const [role, binding, secret] = parseManifest(Buffer.from(fileBase64, "base64").toString("utf8"));
    expect(secret).toMatchObject({ kind: "Secret", metadata: { name: "metal-bgp-password", namespace: "calico-system" }, data: { password: value } });
    expect(Buffer.from(secret.data.password, "base64").toString()).toBe("s3cr3t:\"+/x");
    expect(role.rules).toEqual([{ apiGroups: [""], resources: ["secrets"], resourceNames: ["metal-bgp-password"], verbs: ["get", "list", "watch"] }]);
    expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name: "calico-node", namespace: "calico-system" }]);
    expect(binding.roleRef).toEqual({ apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: role.metadata.name });
  });

  test("apply order: v3 CRDs before the operator (its API group is chosen at start-up), Installation, BGP before pools (mesh never on), Local addresses policed and IPAM set before any pool, password last", () => {
    const kinds = calicoAddonManifests({ ...base, md5Password: true }).map((m) =>
      "yaml" in m ? [...new Set(parseManifest(m.yaml).map((d) => d.kind))].join("+") : "remote" in m ? m.remote.url.split("/").at(-1) : "password",
    );
    expect(kinds).toEqual([
      "v3_projectcalico_org.yaml",
      "tigera-operator.yaml",
      "Installation",
      "BGPConfiguration+BGPFilter+BGPPeer",
      "ValidatingAdmissionPolicy+ValidatingAdmissionPolicyBinding",
      "IPAMConfiguration+IPPool",
      "password",
    ]);
  });

  test.each([
    [{ flexVolumePath: "/var/lib/kubelet/volumeplugins" }, /ending in "\/"/],
    [{ flexVolumePath: "/usr/libexec/kubernetes/kubelet-plugins/volume/exec/" }, /read-only/],
    [{ blockPrefixLength: 115 }, /116 to \/128/],
    // The CRD's asNumber is int32; 32-bit private ASNs would be refused by the API server.
    [{ asNumber: 4200000001 }, /int32/],
  ])("rejects %j", (extra, message) => {
    expect(() => calicoAddonManifests({ ...base, ...extra })).toThrow(CalicoConfigError);
    expect(() => calicoAddonManifests({ ...base, ...extra })).toThrow(message);
  });
});

describe("examples/services.yaml", () => {
  const docs = parseManifest(require("node:fs").readFileSync(require("node:path").join(__dirname, "..", "examples", "services.yaml"), "utf8"));
  const services = docs.filter((d) => d.kind === "Service");
  const deployment = docs.find((d) => d.kind === "Deployment")!;

  test("one Local and one Cluster LoadBalancer Service, IPv6 only, selecting the example pods", () => {
    expect(services.map((s) => [s.spec.type, s.spec.externalTrafficPolicy])).toEqual([
      ["LoadBalancer", "Local"],
      ["LoadBalancer", "Cluster"],
    ]);
    for (const s of services) {
      expect(s.spec.ipFamilies).toEqual(["IPv6"]);
      expect(s.spec.ipFamilyPolicy).toBe("SingleStack");
      expect(s.spec.selector).toEqual(deployment.spec.template.metadata.labels);
      expect(s.spec.loadBalancerClass).toBeUndefined(); // Calico's LoadBalancer IPAM assigns classless Services
      // The Local one asks for the Local pool (the admission policy refuses it otherwise); the Cluster one must not.
      expect(s.metadata.annotations?.["projectcalico.org/ipv6pools"]).toBe(s.spec.externalTrafficPolicy === "Local" ? '["local-services-ipv6"]' : undefined);
      for (const p of s.spec.ports) expect(deployment.spec.template.spec.containers[0].ports.map((c: any) => c.name)).toContain(p.targetPort);
    }
  });
});
