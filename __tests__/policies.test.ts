/**
 * lib/policies.ts: the manifests validate strictly, keep to Calico's own validator's
 * rules (which the schemas cannot express), narrow the failsafe ports, and the settings
 * behind them reject bad prefixes with a clear message. The port/peer matrix is in
 * policies-matrix.test.ts.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import YAML from "yaml";
import { Ipv6Cidr, planAddresses } from "../lib/address-plan";
import { nodeHostname } from "../lib/naming";
import {
  PUBLIC_LABEL,
  PUBLIC_LABEL_VALUE,
  SecurityInput,
  controlPlaneHostnamePrefix,
  securityAddonManifests,
} from "../lib/policies";
import { loadSettings } from "../lib/settings";
import { Endpoint, PolicyModel, inNet, ipVersion, parseSelector } from "./support/calico-policy-eval";
import { calicoErrors, parseManifest } from "./support/calico-validate";

import { settingsProblems } from "./support/settings";

const plan = planAddresses("2001:db8:0:ab00::/56");
const base: SecurityInput = { plan, clusterName: "v6fabric", apiAllowedPrefixes: [], adminAllowedPrefixes: [] };
const prefixes = (...p: string[]) => p.map((x) => Ipv6Cidr.parse(x));
const variants: [string, SecurityInput][] = [
  ["nothing open", base],
  ["admin and API prefixes", { ...base, adminAllowedPrefixes: prefixes("2001:db8:aa::/48", "2001:db8:cc::1/128"), apiAllowedPrefixes: prefixes("2001:db8:bb::/48") }],
  ["API open to every address", { ...base, apiAllowedPrefixes: prefixes("::/0") }],
];

const docsOf = (input: SecurityInput) => securityAddonManifests(input).flatMap((m) => parseManifest(m.yaml));
const rulesOf = (docs: Record<string, any>[]) =>
  docs.filter((d) => d.kind === "GlobalNetworkPolicy").flatMap((p) => [...(p.spec.ingress ?? []), ...(p.spec.egress ?? [])].map((rule: any) => ({ policy: p, rule })));

describe("every policy and configuration validates strictly against reference/schemas/calico", () => {
  test.each(variants)("%s", (_label, input) => {
    const docs = docsOf(input);
    expect(docs.map((d) => d.kind)).toEqual([
      "FelixConfiguration",
      "GlobalNetworkPolicy",
      "GlobalNetworkPolicy",
      "GlobalNetworkPolicy",
      "GlobalNetworkPolicy",
      "GlobalNetworkPolicy",
      "KubeControllersConfiguration",
    ]);
    expect(docs.flatMap(calicoErrors)).toEqual([]);
  });

  test("the schemas reject what the API server would (so the check above can fail)", () => {
    const [felix, policy, , egress, , , kcc] = docsOf(base);
    expect(calicoErrors({ ...felix, spec: { failsafeInboundHostPort: [] } })).not.toEqual([]);
    expect(calicoErrors({ ...policy, spec: { ...policy.spec, types: ["Ingress", "Egress"] } })).not.toEqual([]); // preDNAT with Egress
    expect(calicoErrors({ ...policy, spec: { ...policy.spec, applyOnForward: false } })).not.toEqual([]);
    expect(calicoErrors({ ...policy, spec: { ...policy.spec, ingress: [{ action: "Accept" }] } })).not.toEqual([]);
    expect(calicoErrors({ ...egress, spec: { ...egress.spec, egress: [{ action: "Allow", ipVersion: 5 }] } })).not.toEqual([]);
    expect(calicoErrors({ ...kcc, spec: { controllers: { node: { hostEndpoint: { autoCreate: true } } } } })).not.toEqual([]);
  });
});

describe("rules keep to Calico's validator (libcalico-go validator/v3), which Felix applies before using a policy", () => {
  test.each(variants)("%s", (_label, input) => {
    for (const { policy, rule } of rulesOf(docsOf(input))) {
      const where = `${policy.metadata.name}: ${JSON.stringify(rule)}`;
      const nets: string[] = [rule.source?.nets, rule.source?.notNets, rule.destination?.nets, rule.destination?.notNets].flat().filter(Boolean);
      const versions = new Set(nets.map((n) => ipVersion(n.split("/")[0])));
      expect([where, versions.size <= 1]).toEqual([where, true]); // "rule contains both IPv4 and IPv6 CIDRs"
      if (rule.ipVersion && versions.size === 1) expect([where, [...versions][0]]).toEqual([where, rule.ipVersion]);
      expect([where, rule.ipVersion === 4 || rule.ipVersion === 6]).toEqual([where, true]); // every rule says its family
      if (rule.source?.ports || rule.destination?.ports) expect(["TCP", "UDP", "SCTP"]).toContain(rule.protocol);
      if (rule.icmp) expect([where, rule.protocol, rule.ipVersion]).toEqual([where, "ICMPv6", 6]);
      for (const n of [rule.source?.notNets, rule.destination?.notNets].flat().filter(Boolean)) {
        expect([where, n]).not.toEqual([where, "::/0"]); // "catch-all CIDR in negation"
      }
      for (const key of Object.keys(rule.metadata?.annotations ?? {})) {
        // Rule annotations are checked like object annotations: a qualified name.
        expect(key).toMatch(/^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/);
      }
      for (const s of [rule.source?.selector, rule.source?.notSelector, rule.destination?.selector, rule.destination?.notSelector].filter(Boolean)) {
        expect(() => parseSelector(s)).not.toThrow();
      }
    }
  });

  test("policies spell out what the API server would default, and preDNAT policies only deny", () => {
    for (const p of docsOf(base).filter((d) => d.kind === "GlobalNetworkPolicy")) {
      expect(p.apiVersion).toBe("projectcalico.org/v3");
      // One direction per policy, and its rules under the matching key only.
      expect(p.spec).toEqual(expect.objectContaining({ tier: "default", doNotTrack: false }));
      expect([["Ingress"], ["Egress"]]).toContainEqual(p.spec.types);
      expect(Object.keys(p.spec).filter((k) => k === "ingress" || k === "egress")).toEqual([p.spec.types[0].toLowerCase()]);
      expect(typeof p.spec.order).toBe("number");
      expect(typeof p.spec.applyOnForward).toBe("boolean");
      expect(typeof p.spec.preDNAT).toBe("boolean");
      expect(() => parseSelector(p.spec.selector)).not.toThrow();
      // A preDNAT allow would skip the forward check that enforces the opt-in.
      if (p.spec.preDNAT) expect(p.spec.ingress.map((r: any) => r.action)).toEqual(p.spec.ingress.map(() => "Deny"));
    }
  });
});

describe("failsafe ports: kept, but never open to everyone", () => {
  const failsafe = (input: SecurityInput) => docsOf(input).find((d) => d.kind === "FelixConfiguration")!.spec.failsafeInboundHostPorts as any[];

  test("each entry names its sources; etcd and SSH are not open by default", () => {
    const entries = failsafe(base);
    for (const e of entries) expect(e.net).toBeDefined();
    // The only IPv4 entry is DHCP's client port, as in Calico's default list.
    expect(entries.filter((e) => ipVersion(e.net.split("/")[0]) === 4)).toEqual([{ protocol: "UDP", port: 68, net: "0.0.0.0/0" }]);
    const ports = entries.map((e) => e.port);
    for (const port of [22, 2379, 2380, 6443, 6666, 6667, 10250]) expect(ports).not.toContain(port);
    expect(entries.filter((e) => e.port === 179).map((e) => e.net).sort()).toEqual(["fc00::e/128", "fc00::f/128"]);
    expect(entries.filter((e) => e.port === 443).map((e) => e.net).sort()).toEqual(["2001:db8:0:ab00::/60", "2001:db8:0:ab10::/64"]);
  });

  test("admin and API prefixes are added to SSH and the API server", () => {
    const entries = failsafe(variants[1][1]);
    expect(entries.filter((e) => e.port === 22).map((e) => e.net)).toEqual(["2001:db8:aa::/48", "2001:db8:cc::1/128"]);
    expect(entries.filter((e) => e.port === 443).map((e) => e.net)).toContain("2001:db8:bb::/48");
  });
});

describe("the manifests", () => {
  test("are applied in order: failsafe ports, policies, then automatic host endpoints", () => {
    const manifests = securityAddonManifests(base);
    expect(manifests.map((m) => path.posix.basename(m.path))).toEqual(["40-felix-failsafe-ports.yaml", "41-host-policies.yaml", "42-auto-host-endpoints.yaml"]);
    for (const m of manifests) expect(m.path.startsWith("/etc/kubernetes/addons/")).toBe(true);
    const kcc = parseManifest(manifests[2].yaml)[0];
    expect(kcc.spec.controllers.node.hostEndpoint).toEqual({ autoCreate: "Enabled", createDefaultHostEndpoint: "Enabled" });
  });

  test("name no node, so nodes added later are protected with no change to any user data", () => {
    const text = securityAddonManifests(base).map((m) => m.yaml).join("\n");
    expect(text).not.toMatch(/v6fabric-(cp|worker)-\d/);
    expect(text).not.toMatch(/2001:db8:0:ab00::[1-9a-f]/); // no node address
  });

  test("survive a YAML 1.1 reader: every address stays a string", () => {
    for (const doc of docsOf(variants[1][1])) {
      const walk = (v: unknown): void => {
        if (Array.isArray(v)) v.forEach(walk);
        else if (v && typeof v === "object") Object.values(v).forEach(walk);
        else if (typeof v === "number") expect(Number.isInteger(v)).toBe(true);
      };
      walk(doc);
    }
    const nets = rulesOf(docsOf(base)).flatMap(({ rule }) => [rule.source?.nets, rule.destination?.nets].flat().filter(Boolean));
    for (const n of nets) expect(typeof n).toBe("string");
  });

  test("the control-plane hostname prefix matches lib/naming.ts", () => {
    for (const i of [0, 1, 2, 3, 4]) expect(nodeHostname("v6fabric", "control-plane", i).startsWith(controlPlaneHostnamePrefix("v6fabric"))).toBe(true);
    expect(nodeHostname("v6fabric", "worker", 0).startsWith(controlPlaneHostnamePrefix("v6fabric"))).toBe(false);
  });
});

describe("the matrix model can fail: it notices when a rule goes missing", () => {
  const endpoints: Endpoint[] = [
    { name: "w", kind: "host", addresses: ["2001:db8:0:ab00::7"], labels: { "projectcalico.org/created-by": "calico-kube-controllers" } },
    { name: "web", kind: "pod", node: "w", addresses: ["2001:db8:0:ab10::20"], labels: { "projectcalico.org/namespace": "d", [PUBLIC_LABEL]: PUBLIC_LABEL_VALUE } },
  ];
  const ssh = { src: "2001:db8:ffff::1", dst: "2001:db8:0:ab00::7", protocol: "TCP" as const, port: 22 };
  const lb = { src: "2001:db8:ffff::1", dst: "2001:db8:0:ab30::10", protocol: "TCP" as const, port: 80 };

  test("with Calico's default failsafe list, SSH would be open to the Internet", () => {
    const docs = docsOf(base).filter((d) => d.kind !== "FelixConfiguration");
    expect(new PolicyModel(docsOf(base), endpoints).arrive("w", ssh)).toBe("deny");
    expect(new PolicyModel(docs, endpoints).arrive("w", ssh)).toBe("allow");
  });

  test("without the opt-in rule, the public Service would be closed; without the forward policy, every Service would be open", () => {
    const docs = docsOf(base);
    const dnat = { to: "2001:db8:0:ab10::20", port: 8080 };
    expect(new PolicyModel(docs, endpoints).arrive("w", lb, dnat)).toBe("allow");
    const noOptIn = docs.map((d) =>
      d.kind === "GlobalNetworkPolicy" && d.spec.applyOnForward && !d.spec.preDNAT && d.spec.ingress
        ? { ...d, spec: { ...d.spec, ingress: d.spec.ingress.filter((r: any) => !r.destination?.selector?.includes(PUBLIC_LABEL)) } }
        : d,
    );
    expect(new PolicyModel(noOptIn, endpoints).arrive("w", lb, dnat)).toBe("deny");
    const unlabelled = endpoints.map((e) => (e.kind === "pod" ? { ...e, labels: { "projectcalico.org/namespace": "d" } } : e));
    expect(new PolicyModel(docs, unlabelled).arrive("w", lb, dnat)).toBe("deny");
    const noForward = docs.filter((d) => !(d.kind === "GlobalNetworkPolicy" && d.spec.applyOnForward && !d.spec.preDNAT));
    expect(new PolicyModel(noForward, unlabelled).arrive("w", lb, dnat)).toBe("allow");
  });

  test("the selector and address helpers", () => {
    const sel = parseSelector("a == 'x' && (has(b) || !has(c)) && d starts with 'v6'");
    expect(sel({ a: "x", b: "", d: "v6fabric" })).toBe(true);
    expect(sel({ a: "x", c: "", d: "v6fabric" })).toBe(false);
    expect(sel({ a: "y", b: "", d: "v6fabric" })).toBe(false);
    expect(() => parseSelector("a === 'x'")).toThrow();
    expect(inNet("2001:db8:0:ab10::1", "2001:db8:0:ab10::/64")).toBe(true);
    expect(inNet("2001:db8:0:ab11::1", "2001:db8:0:ab10::/64")).toBe(false);
    expect(inNet("10.0.0.1", "2001:db8::/32")).toBe(false);
  });
});

describe("ADMIN_ALLOWED_PREFIXES and API_ALLOWED_PREFIXES", () => {

  test("default to nothing", () => {
    const s = loadSettings({});
    expect(s.adminAllowedPrefixes).toEqual([]);
    expect(s.apiAllowedPrefixes).toEqual([]);
  });

  test("take comma-separated IPv6 prefixes of any length", () => {
    const s = loadSettings({ ADMIN_ALLOWED_PREFIXES: " 2001:db8:aa::/48 , 2001:DB8:CC:0::1/128", API_ALLOWED_PREFIXES: "::/0", API_ALLOWED_INTERNET_WIDE: "true" });
    expect(s.adminAllowedPrefixes.map(String)).toEqual(["2001:db8:aa::/48", "2001:db8:cc::1/128"]);
    expect(s.apiAllowedPrefixes.map(String)).toEqual(["::/0"]);
  });

  test.each([
    ["ADMIN_ALLOWED_PREFIXES", "not-a-cidr", 'ADMIN_ALLOWED_PREFIXES=not-a-cidr is not valid: "not-a-cidr" has no prefix length'],
    ["ADMIN_ALLOWED_PREFIXES", "192.0.2.0/24", 'ADMIN_ALLOWED_PREFIXES=192.0.2.0/24 is not valid: "192.0.2.0/24" is not an IPv6 prefix'],
    ["ADMIN_ALLOWED_PREFIXES", "2001:db8:aa::/48,198.51.100.7/32", '"198.51.100.7/32" is not an IPv6 prefix'],
    ["ADMIN_ALLOWED_PREFIXES", "2001:db8:aa::1/48", '"2001:db8:aa::1/48" has host bits set: the /48 that contains it is 2001:db8:aa::/48'],
    ["API_ALLOWED_PREFIXES", "not-a-cidr", 'API_ALLOWED_PREFIXES=not-a-cidr is not valid: "not-a-cidr" has no prefix length'],
    ["API_ALLOWED_PREFIXES", "10.0.0.0/8", 'API_ALLOWED_PREFIXES=10.0.0.0/8 is not valid: "10.0.0.0/8" is not an IPv6 prefix'],
    ["API_ALLOWED_PREFIXES", "2001:db8::/129", 'has an invalid prefix length "129"'],
  ])("%s=%s is rejected, naming the setting, the value and what is valid", (name, value, message) => {
    const problems = settingsProblems({ [name]: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(message);
    expect(problems[0]).toContain("use comma-separated IPv6 prefixes (address/length, /0 to /128, no host bits)");
  });
});

describe("the documented opt-in", () => {
  const root = path.join(__dirname, "..");

  test("the example Service's pods carry the label the policy keys on, and the Service selects them", () => {
    const docs = YAML.parseAllDocuments(fs.readFileSync(path.join(root, "examples", "public-service.yaml"), "utf8"), { version: "1.1" }).map((d) => d.toJS());
    const deployment = docs.find((d) => d.kind === "Deployment");
    const service = docs.find((d) => d.kind === "Service");
    const podLabels = deployment.spec.template.metadata.labels;
    expect(podLabels[PUBLIC_LABEL]).toBe(PUBLIC_LABEL_VALUE);
    expect(service.spec.type).toBe("LoadBalancer");
    expect(service.spec.ipFamilies).toEqual(["IPv6"]);
    for (const [k, v] of Object.entries(service.spec.selector)) expect(podLabels[k]).toBe(v);
    // The forward policy's opt-in selector matches these pods' workload endpoints.
    const forward = docsOf(base).find((d) => d.metadata.name === "v6fabric-forward")!;
    const optIn = forward.spec.ingress.find((r: any) => r.destination?.selector?.includes(PUBLIC_LABEL));
    expect(parseSelector(optIn.destination.selector)({ ...podLabels, "projectcalico.org/namespace": "default" })).toBe(true);
  });

  test("README links the threat model, which documents the opt-in and both settings", () => {
    expect(fs.readFileSync(path.join(root, "README.md"), "utf8")).toContain("docs/security.md");
    const threatModel = fs.readFileSync(path.join(root, "docs", "security.md"), "utf8");
    for (const word of [`${PUBLIC_LABEL}: "${PUBLIC_LABEL_VALUE}"`, "ADMIN_ALLOWED_PREFIXES", "API_ALLOWED_PREFIXES", "failsafe", "examples/public-service.yaml"]) {
      expect(threatModel).toContain(word);
    }
  });
});
