/**
 * `npm run report`: the Markdown summary of the synthesized cluster.
 *
 * - A hand-written stack with known content (fixtures/report/stack.ts): every table's
 *   rows, literally.
 * - The default example, synthesized: the init node carries the Calico documents, and
 *   the report states the peers and prefixes they configure, literally.
 * - Real synths of two sizes: nodes, prefixes and peers against the synthesized JSON,
 *   decoded here with this test's own reading of Ignition (not the report's).
 * - A failed synth after a good one leaves nothing the report accepts.
 *
 * Every directory a test makes is removed in afterAll.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as zlib from "node:zlib";
import YAML from "yaml";
import { planAddresses } from "../lib/address-plan";
import { buildReport, renderReport, reportFromOutdir } from "../scripts/report";
import { SynthesizedTreeError, TerraformJson as ReportTerraformJson } from "../scripts/synthesized";
import { REPORT_FIXTURE_STACK } from "./fixtures/report/stack";
import { IgnConfig, unpackMerges } from "./support/ignition";
import { Synthesized, TerraformJson, synthesize } from "./support/synth";
import { writeSynthesizedTree } from "./support/synthesized-tree";

const root = path.resolve(__dirname, "..");

/** The host-endpoint selector as the policies write it (lib/policies.ts HOST_SELECTOR), spelled out. */
const HOST_ENDPOINTS = "projectcalico.org/created-by == 'calico-kube-controllers' && !has(projectcalico.org/namespace)";

const scratch: string[] = [];
afterAll(() => {
  for (const dir of scratch) fs.rmSync(dir, { recursive: true, force: true });
});

function synth(env: Record<string, string> = {}): Synthesized {
  const s = synthesize(env);
  scratch.push(s.outdir);
  return s;
}

function tree(stacks: Record<string, unknown>): string {
  const dir = writeSynthesizedTree(stacks);
  scratch.push(dir);
  return dir;
}

/** Rows (cells) of the first Markdown table after `heading`. */
function tableAfter(markdown: string, heading: string): string[][] {
  const lines = markdown.split("\n");
  const start = lines.findIndex((l) => l.trim() === heading);
  if (start < 0) throw new Error(`no "${heading}" in the report`);
  const rows: string[][] = [];
  let i = start + 1;
  while (i < lines.length && !lines[i].startsWith("|")) {
    if (lines[i].startsWith("#")) return rows;
    i++;
  }
  for (; i < lines.length && lines[i].startsWith("|"); i++) {
    rows.push(lines[i].slice(1, -1).split(/(?<!\\)\|/).map((c) => c.trim()));
  }
  return rows.slice(2); // header and separator
}

const unquote = (cell: string) => cell.replace(/^`|`$/g, "");

/**
 * Replaces each Terraform interpolation `${...}` (not the `$${` escape) with `replacement(i)`,
 * so the rest parses as JSON: interpolations may hold quotes until Terraform renders them.
 */
function replaceInterpolations(text: string, replacement: (expression: string) => string, keepEscapes = false): string {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    if (text.startsWith("$${", i)) {
      out += keepEscapes ? "$${" : "${";
      i += 2;
    } else if (text.startsWith("${", i)) {
      let depth = 0;
      let j = i + 1;
      for (; j < text.length; j++) {
        if (text[j] === "{") depth++;
        if (text[j] === "}" && --depth === 0) break;
      }
      out += replacement(text.slice(i, j + 1));
      i = j;
    } else out += text[i];
  }
  return out;
}

const withoutInterpolations = (text: string) => replaceInterpolations(text, () => "TFREF");

/** `userData` (Ignition JSON with Terraform interpolations) after `edit`, interpolations and escapes kept. */
function editUserData(userData: string, edit: (config: any) => void): string {
  const expressions: string[] = [];
  const masked = replaceInterpolations(userData, (e) => `TFEXPR${expressions.push(e) - 1}END`, true);
  // The merged boot config folded in (a plain config without merges is user data too).
  const config = unpackMerges(JSON.parse(masked) as IgnConfig);
  edit(config);
  return JSON.stringify(config).replace(/TFEXPR(\d+)END/g, (_m, i: string) => expressions[Number(i)]);
}

/** Kubernetes documents in a device's user data, decoded independently of scripts/synthesized.ts. */
function documentsInUserData(userData: string): any[] {
  const config: any = unpackMerges(JSON.parse(withoutInterpolations(userData)) as IgnConfig);
  const docs: any[] = [];
  for (const file of config.storage?.files ?? []) {
    const source: string = file.contents?.source ?? "";
    if (!source.startsWith("data:")) continue;
    const [header, payload] = [source.slice(5, source.indexOf(",")), source.slice(source.indexOf(",") + 1)];
    let text: string;
    if (header.endsWith(";base64")) {
      if (payload.includes("TFREF")) continue;
      const bytes = Buffer.from(payload, "base64");
      text = (file.contents.compression === "gzip" ? zlib.gunzipSync(bytes) : bytes).toString("utf8");
    } else {
      text = payload.replace(/%(?![0-9A-Fa-f]{2})/g, "%25");
      text = decodeURIComponent(text);
    }
    if (!text.includes("apiVersion")) continue;
    for (const doc of YAML.parseAllDocuments(text, { version: "1.1" })) {
      const value = doc.toJSON();
      if (value?.apiVersion && value?.kind) docs.push(value);
    }
  }
  return docs;
}

function allDocuments(stack: TerraformJson): any[] {
  const docs = Object.values(stack.resource?.metal_device ?? {}).flatMap((d) => documentsInUserData(d.user_data));
  for (const m of Object.values(stack.resource?.kubernetes_manifest ?? {})) docs.push(m.manifest);
  return docs;
}

describe.each([
  ["the default example", {}],
  ["CONTROL_PLANE_COUNT=3 WORKER_COUNT=5", { CONTROL_PLANE_COUNT: "3", WORKER_COUNT: "5" }],
])("report of %s", (_label, env) => {
  const synthesized = synth(env);
  const [stackName] = Object.keys(synthesized.stacks);
  const stack = synthesized.stacks[stackName];
  const report = reportFromOutdir(synthesized.outdir);
  const devices = Object.values(stack.resource?.metal_device ?? {});
  const docs = allDocuments(stack);

  test("lists every device with its role, plan, metro and OS, and nothing else", () => {
    const rows = tableAfter(report, "## Nodes");
    expect(rows.map((r) => r[0]).sort()).toEqual(devices.map((d) => d.hostname).sort());
    for (const [id, d] of Object.entries(stack.resource?.metal_device ?? {})) {
      const row = rows.find((r) => r[0] === d.hostname)!;
      expect(row[6]).toBe(`\`metal_device.${id}\``);
      const role = (d.tags as string[]).find((t) => t.startsWith("k8s-role-"))!.replace("k8s-role-", "");
      expect(row.slice(1, 6)).toEqual([role, d.plan, d.metro, d.operating_system, "ipv6"]);
    }
    const cp = Number((env as Record<string, string>).CONTROL_PLANE_COUNT ?? 1);
    expect(rows.filter((r) => r[1] === "control-plane")).toHaveLength(cp);
  });

  test("the address plan is the fabric_summary output, which matches the plan for the block", () => {
    const rows = tableAfter(report, "## Address plan");
    const prefixes = Object.fromEntries(rows.map((r) => [r[0], unquote(r[1])]));
    const summary = stack.output!.fabric_summary.value;
    expect(prefixes["Pods"]).toBe(summary.addressPlan.podCidr);
    expect(prefixes["Service ClusterIPs"]).toBe(summary.addressPlan.serviceCidr);
    expect(prefixes["Service external / LoadBalancer IPs"]).toBe(summary.addressPlan.externalCidr);
    // Independently: the pod range is the first /64 of zone 1, i.e. the block's 5th hex digit group set to 1.
    expect(prefixes["Pods"]).toBe("2001:db8:0:ab10::/64");
    expect(prefixes["Service ClusterIPs"]).toBe(planAddresses("2001:db8:0:ab00::/56").serviceCidr.toString());
    expect(rows.some((r) => r[0].startsWith("⚠"))).toBe(false);
  });

  test("announced prefixes are the ones the Calico documents in the stack configure", () => {
    const rows = tableAfter(report, "### Announced prefixes");
    const reported = [...new Set(rows.map((r) => unquote(r[0])))].sort();
    // Pools that hand out pod addresses (not LoadBalancer-only pools) and the Service ranges.
    const pools = docs
      .filter((d) => d.kind === "IPPool" && !d.spec?.disabled && !d.spec?.disableBGPExport && (!d.spec?.allowedUses || d.spec.allowedUses.includes("Workload")))
      .map((d) => d.spec.cidr);
    const bgp = docs.find((d) => d.kind === "BGPConfiguration");
    expect(pools).toEqual(["2001:db8:0:ab10::/64"]);
    expect(bgp).toBeDefined();
    const ranges = ["serviceClusterIPs", "serviceExternalIPs", "serviceLoadBalancerIPs"].flatMap((k) => (bgp.spec[k] ?? []).map((e: any) => e.cidr));
    // Local /128s are listed per LoadBalancer pool.
    const loadBalancerPools = docs.filter((d) => d.kind === "IPPool" && d.spec?.allowedUses?.includes("LoadBalancer")).map((d) => d.spec.cidr);
    expect(loadBalancerPools.sort()).toEqual(["2001:db8:0:ab30::/113", "2001:db8:0:ab30::8000/126"]);
    expect(reported).toEqual([...new Set([...pools, ...ranges, ...loadBalancerPools])].sort());
    // Every range the address plan routes is exported to both peers; /128s of the Cluster pool to none.
    for (const row of rows) {
      const clusterPool128 = unquote(row[0]) === "2001:db8:0:ab30::/113" && row[1] === "/128";
      expect([row[0], row[1], row[4]]).toEqual([row[0], row[1], clusterPool128 ? "**none** (filtered)" : "metal-router-fc00-e, metal-router-fc00-f"]);
    }
    // The budget per node: 2 pod blocks (maxBlocksPerHost) + /108 + /112 + 4 Local pool addresses.
    for (const row of tableAfter(report, "### Per node")) expect([row[0], row[3]]).toEqual([row[0], "8"]);
    expect(report).not.toContain("## Not found in the synthesized stacks");
  });

  test("peers are the BGPPeers in the stack, and every node peers with the ones that select it", () => {
    const peerDocs = docs.filter((d) => d.kind === "BGPPeer");
    expect(peerDocs.map((p) => p.metadata.name).sort()).toEqual(["metal-router-fc00-e", "metal-router-fc00-f"]);
    const rows = tableAfter(report, "### Peers");
    const expected = peerDocs.map((p) => String(p.spec.peerIP).replace(/^\[(.*)\](:\d+)?$/, "$1")).sort();
    expect(rows.map((r) => unquote(r[1])).sort()).toEqual(expected);
    for (const p of peerDocs) {
      const row = rows.find((r) => r[0] === p.metadata.name)!;
      if (p.spec.asNumber !== undefined) expect(row[2]).toBe(String(p.spec.asNumber));
    }
    const perNode = tableAfter(report, "### Per node");
    expect(perNode.map((r) => r[0]).sort()).toEqual(devices.map((d) => d.hostname).sort());
    for (const p of peerDocs.filter((x) => !x.spec.node && (!x.spec.nodeSelector || x.spec.nodeSelector === "all()"))) {
      const address = String(p.spec.peerIP).replace(/^\[(.*)\](:\d+)?$/, "$1");
      for (const row of perNode) expect(row[2]).toContain(address);
    }
  });

  test("has a Mermaid diagram with every node and peer", () => {
    const block = /```mermaid\n([\s\S]*?)\n```/.exec(report);
    expect(block).not.toBeNull();
    const diagram = block![1];
    expect(diagram.split("\n")[0]).toBe("flowchart LR");
    for (const d of devices) expect(diagram).toContain(`["${d.hostname}<br/>`);
    for (const p of docs.filter((d) => d.kind === "BGPPeer")) expect(diagram).toContain(String(p.spec.peerIP).replace(/^\[(.*)\](:\d+)?$/, "$1"));
    // Every node has an edge to a peer.
    devices.forEach((_d, i) => expect(diagram).toMatch(new RegExp(`^  node${i} -->`, "m")));
    // Labels are quoted, so IPv6 colons and slashes cannot break the syntax.
    for (const line of diagram.split("\n").filter((l) => /\[/.test(l))) expect(line).toMatch(/\["[^"]*"\]/);
  });

  test("shows the pinned versions, Kubernetes once, and the local state file", () => {
    const rows = tableAfter(report, "## Pinned versions");
    const summary = stack.output!.fabric_summary.value;
    expect(rows).toContainEqual(["Flatcar", "`flatcar_stable`", "metal_device.operating_system"]);
    // fabric_summary and kubeadm's ClusterConfiguration agree: one row naming both.
    expect(rows.filter((r) => r[0].includes("Kubernetes"))).toEqual([["Kubernetes", `\`${summary.versions.kubernetes}\``, "fabric_summary (lib/versions.ts), kubeadm ClusterConfiguration"]]);
    expect(rows.find((r) => r[0] === "Calico")?.[1]).toBe(`\`${summary.versions.calico}\``);
    expect(report).toContain(`local file \`terraform.${stackName}.tfstate\``);
  });

  test("shows no boot placeholder: the init node's API address is named for what it is", () => {
    expect(report).not.toMatch(/__[A-Z0-9_]+__/);
    expect(tableAfter(report, "## API endpoints and outputs")).toContainEqual(["init node API", "`(the node's public IPv6, filled in at boot) port 443`", "InitConfiguration localAPIEndpoint"]);
  });

  test("names the host-endpoint selector once, not in every row", () => {
    expect(report.split(HOST_ENDPOINTS).length - 1).toBe(1);
    expect(report).toContain(`"all nodes" are Calico's automatic host endpoints, one per node: selector \`${HOST_ENDPOINTS}\`.`);
    const rows = [...tableAfter(report, "## Open to the Internet"), ...tableAfter(report, "<details><summary>Allow rules that only admit the cluster</summary>")];
    expect(rows).toContainEqual(["GlobalNetworkPolicy v6fabric-host-ingress", "all nodes", "TCP", "10250", "nodes with `has(node-role.kubernetes.io/control-plane)`", "cluster"]);
  });

  test("lists Calico's failsafe DHCPv4 client port, open to any IPv4 source, as open to the Internet", () => {
    expect(tableAfter(report, "## Open to the Internet")).toContainEqual([
      "FelixConfiguration default: failsafe port, open whatever the policies say",
      "all nodes",
      "UDP",
      "68",
      "0.0.0.0/0",
      "**Internet**",
    ]);
  });

  test("prints no secret: no private key, no bootstrap-token-shaped value, no sensitive output value", () => {
    expect(report).not.toMatch(/-----BEGIN [A-Z ]*PRIVATE KEY-----\n(?!\(redacted\))/);
    expect(report).not.toMatch(/\b[a-z0-9]{6}\.[a-z0-9]{16}\b/);
    for (const [name, output] of Object.entries(stack.output ?? {})) {
      if (output.sensitive) expect(report).toMatch(new RegExp(`output \`${name}\` \\| \`\\(sensitive\\)\``));
    }
  });
});

describe("report of a stack with Calico, kubeadm and policy documents (fixture)", () => {
  const dataUrl = (text: string) => `data:;base64,${Buffer.from(text).toString("base64")}`;
  const calico = [
    { apiVersion: "projectcalico.org/v3", kind: "IPPool", metadata: { name: "pods" }, spec: { cidr: "2001:db8:0:ab10::/64", blockSize: 122 } },
    {
      apiVersion: "projectcalico.org/v3",
      kind: "BGPConfiguration",
      metadata: { name: "default" },
      spec: { asNumber: 65000, serviceClusterIPs: [{ cidr: "2001:db8:0:ab20::/108" }], serviceExternalIPs: [{ cidr: "2001:db8:0:ab30::/112" }] },
    },
    { apiVersion: "projectcalico.org/v3", kind: "BGPPeer", metadata: { name: "metal-e" }, spec: { peerIP: "[fc00::e]:179", asNumber: 65530, password: { secretKeyRef: { name: "bgp", key: "md5" } } } },
    { apiVersion: "projectcalico.org/v3", kind: "BGPPeer", metadata: { name: "cp-only" }, spec: { peerIP: "fc00::f", asNumber: 65530, nodeSelector: "has(node-role.kubernetes.io/control-plane)", filters: ["no-services"] } },
    {
      apiVersion: "projectcalico.org/v3",
      kind: "BGPFilter",
      metadata: { name: "no-services" },
      spec: { exportV6: [{ action: "Reject", matchOperator: "Equal", cidr: "2001:db8:0:ab20::/108" }, { action: "Accept", matchOperator: "In", cidr: "2001:db8:0:ab10::/64", prefixLength: { min: 122, max: 122 } }, { action: "Reject" }] },
    },
    {
      apiVersion: "projectcalico.org/v3",
      kind: "GlobalNetworkPolicy",
      metadata: { name: "host" },
      spec: {
        selector: "has(kubernetes-host)",
        types: ["Ingress"],
        ingress: [
          { action: "Allow", protocol: "TCP", destination: { ports: [6443] }, source: { nets: ["::/0"] } },
          { action: "Allow", protocol: "TCP", destination: { ports: [22] }, source: { nets: ["2001:db8:ff::/48"] } },
          { action: "Deny", protocol: "TCP", destination: { ports: [2379] } },
          { action: "Allow", protocol: "TCP", destination: { ports: [179] }, source: { nets: ["fc00::e/128", "fc00::f/128"] } },
          { action: "Allow", destination: { nets: ["::1/128"] } },
          { action: "Allow", protocol: "ICMPv6", icmp: { type: 135 } },
          { action: "Allow", protocol: "ICMPv6", icmp: { type: 136 } },
          { action: "Allow", protocol: "ICMPv6", icmp: { type: 2 } },
        ],
      },
    },
  ];
  const kubeadm = [{ apiVersion: "kubeadm.k8s.io/v1beta4", kind: "ClusterConfiguration", controlPlaneEndpoint: "[2001:db8:0:ab20::1]:443", networking: { podSubnet: "2001:db8:0:ab10::/64", serviceSubnet: "2001:db8:0:ab20::/108" } }];
  const userData = (hostname: string) =>
    JSON.stringify({
      ignition: { version: "3.3.0" },
      storage: {
        files: [
          { path: "/etc/kubernetes/addons/calico.yaml", contents: { source: dataUrl(calico.map((d) => YAML.stringify(d)).join("---\n")) } },
          { path: "/etc/kubeadm/config.yaml", contents: { source: `data:,${encodeURIComponent(YAML.stringify(kubeadm[0]))}token%3A%20\${random_password.token.result}` } },
          { path: "/etc/kubernetes/pki/ca.key", contents: { source: dataUrl("-----BEGIN RSA PRIVATE KEY-----\nMIIEsecretsecret\n-----END RSA PRIVATE KEY-----\n") } },
          { path: "/opt/bin/kubeadm", contents: { source: "https://dl.k8s.io/release/v1.36.3/bin/linux/amd64/kubeadm", verification: { hash: "sha256-abc" } } },
          { path: "/etc/hostname", contents: { source: dataUrl(`${hostname}\n`) } },
        ],
      },
    });
  const device = (hostname: string, role: string) => ({ hostname, plan: "c3.small.x86", metro: "da", operating_system: "flatcar_stable", tags: [`k8s-role-${role}`], user_data: userData(hostname) });
  const stack = {
    resource: {
      metal_device: { cp: device("t-cp-1", "control-plane"), w1: device("t-worker-01", "worker") },
      metal_bgp_session: { cp: { device_id: "${metal_device.cp.id}", address_family: "ipv6" }, w1: { device_id: "${metal_device.w1.id}", address_family: "ipv6" } },
    },
    output: {
      admin_kubeconfig: { value: "${local.kubeconfig}", sensitive: true, description: "admin kubeconfig" },
      api_endpoint: { value: "https://[2001:db8:0:ab20::1]:443" },
    },
  } as unknown as ReportTerraformJson;
  const model = buildReport({ t: stack });
  const markdown = renderReport(model);

  test("peers, selectors and MD5 come from the BGPPeers", () => {
    expect(model.peers).toEqual([
      { name: "metal-e", address: "fc00::e", asn: 65530, selects: "all nodes", md5: true, nodes: ["t-cp-1", "t-worker-01"] },
      { name: "cp-only", address: "fc00::f", asn: 65530, selects: "selector `has(node-role.kubernetes.io/control-plane)`", md5: false, nodes: ["t-cp-1"] },
    ]);
    const perNode = tableAfter(markdown, "### Per node");
    expect(perNode.find((r) => r[0] === "t-worker-01")![2]).toBe("fc00::e (AS 65530)");
    expect(perNode.find((r) => r[0] === "t-cp-1")![2]).toBe("fc00::e (AS 65530), fc00::f (AS 65530)");
    expect(model.localAsn).toBe(65000);
  });

  test("announcements: the pool's blocks per node, the Service ranges from every node, /128s for Local, through the export filters", () => {
    expect(model.announcements.map((a) => [a.prefix, a.length, a.exportedTo])).toEqual([
      ["2001:db8:0:ab10::/64", 122, ["metal-e", "cp-only"]],
      ["2001:db8:0:ab20::/108", 108, ["metal-e"]], // cp-only's filter rejects it
      ["2001:db8:0:ab30::/112", 112, ["metal-e"]], // cp-only's filter ends in Reject
      ["2001:db8:0:ab30::/112", 128, ["metal-e"]],
    ]);
    expect(model.announcements[0].what).toContain("/122 block");
    const perNode = tableAfter(markdown, "### Per node");
    expect(perNode.find((r) => r[0] === "t-worker-01")![1]).toBe("`/122s in 2001:db8:0:ab10::/64`, `2001:db8:0:ab20::/108`, `2001:db8:0:ab30::/112`, `/128s in 2001:db8:0:ab30::/112`");
  });

  test("exposure: ::/0 and unrestricted sources are Internet, an admin prefix is outside, routers and loopback are cluster; deny rules not listed", () => {
    expect(model.exposure.map((r) => [r.ports, r.from, r.exposure])).toEqual([
      ["6443", "::/0", "internet"],
      ["22", "2001:db8:ff::/48", "outside prefixes"],
      ["179", "fc00::e/128, fc00::f/128", "cluster"],
      ["all", "anywhere", "cluster"], // to ::1 only
      ["all", "anywhere", "internet"],
    ]);
    expect(model.exposure[4].protocol).toBe("ICMPv6 type 135, 136, 2");
    expect(markdown).toContain("2 allow rule(s) admit any source on the Internet, 1 admit named prefixes outside the cluster; 2 more only admit the cluster");
  });

  test("endpoints: outputs (sensitive ones masked) and kubeadm's controlPlaneEndpoint", () => {
    const rows = tableAfter(markdown, "## API endpoints and outputs");
    expect(rows).toContainEqual(["output `admin_kubeconfig`", "`(sensitive)`", "admin kubeconfig (`terraform output -raw admin_kubeconfig` in stack t)"]);
    expect(rows).toContainEqual(["output `api_endpoint`", "`https://[2001:db8:0:ab20::1]:443`", ""]);
    expect(rows).toContainEqual(["kubeadm controlPlaneEndpoint", "`[2001:db8:0:ab20::1]:443`", "what kubelets and joining nodes use"]);
  });

  test("downloads with their hashes; no private key text", () => {
    expect(model.downloads).toEqual([{ url: "https://dl.k8s.io/release/v1.36.3/bin/linux/amd64/kubeadm", hash: "sha256-abc", nodes: 2 }]);
    expect(markdown).not.toContain("MIIEsecretsecret");
    expect(markdown).not.toContain("random_password.token.result}"); // reports show facts, not kubeadm files
  });

  test("the diagram links each node to the peers that select it", () => {
    const diagram = /```mermaid\n([\s\S]*?)\n```/.exec(markdown)![1];
    expect(diagram).toContain('peer0["fc00::e"]');
    expect(diagram).toContain("node0 -->|BGP| peer1");
    expect(diagram).not.toContain("node1 -->|BGP| peer1");
    expect(diagram).toContain("2001:db8:0:ab20::/108: Service ClusterIPs");
  });
});

describe("report of a hand-written stack with known content (fixtures/report/stack.ts)", () => {
  const outdir = tree({ t: REPORT_FIXTURE_STACK });
  const markdown = reportFromOutdir(outdir);
  const HOST_CP = "nodes with `(has(node-role.kubernetes.io/control-plane) \\|\\| kubernetes.io/hostname starts with 't-cp-')`";
  const FAILSAFE = "FelixConfiguration default: failsafe port, open whatever the policies say";

  test("title, stacks and state", () => {
    expect(markdown.split("\n")[0]).toBe("# Cluster report: t");
    expect(markdown).toContain("- State of `t`: local file `terraform.t.tfstate`");
  });

  test("nodes", () => {
    expect(tableAfter(markdown, "## Nodes")).toEqual([
      ["t-cp-1", "control-plane", "m3.small.x86", "am", "flatcar_beta", "ipv6", "`metal_device.cp1`"],
      ["t-worker-01", "worker", "m3.small.x86", "am", "flatcar_beta", "ipv6", "`metal_device.w1`"],
    ]);
  });

  test("address plan", () => {
    expect(tableAfter(markdown, "## Address plan")).toEqual([
      ["Project block", "`2001:db8:1:c00::/56`", "CLUSTER_IPV6_BLOCK"],
      ["Node addresses", "`2001:db8:1:c00::/60`", "Metal assigns each device a /127 here; not announced"],
      ["Pods", "`2001:db8:1:c10::/64`", "kubeadm podSubnet, Calico IPPool"],
      ["Service ClusterIPs", "`2001:db8:1:c20::/108`", "`kubernetes` Service 2001:db8:1:c20::1, cluster DNS 2001:db8:1:c20::a"],
      ["Service external / LoadBalancer IPs", "`2001:db8:1:c30::/112`", "Calico serviceExternalIPs / serviceLoadBalancerIPs"],
    ]);
  });

  test("BGP: local ASN, peers, announced prefixes and what each node announces", () => {
    expect(markdown).toContain("Local ASN: 65001.");
    expect(tableAfter(markdown, "### Peers")).toEqual([
      ["metal-router-fc00-e", "`fc00::e`", "65530", "all nodes (2)", "no"],
      ["metal-router-fc00-f", "`fc00::f`", "65530", "all nodes (2)", "no"],
    ]);
    const both = "metal-router-fc00-e, metal-router-fc00-f";
    expect(tableAfter(markdown, "### Announced prefixes")).toEqual([
      ["`2001:db8:1:c10::/64`", "/120", "pod addresses: each /120 block a node holds (IPPool pods-ipv6)", "each node, its own blocks", both],
      ["`2001:db8:1:c20::/108`", "/108", "Service ClusterIPs", "every node (ECMP at the routers)", both],
      ["`2001:db8:1:c30::/112`", "/112", "Service external IPs and Service LoadBalancer IPs", "every node (ECMP at the routers)", both],
      ["`2001:db8:1:c30::/112`", "/128", "/128 of a Service with `externalTrafficPolicy: Local` and an address from IPPool loadbalancer-ipv6", "only nodes with a local endpoint", both],
    ]);
    const announces = "`/120s in 2001:db8:1:c10::/64`, `2001:db8:1:c20::/108`, `2001:db8:1:c30::/112`, `/128s in 2001:db8:1:c30::/112`";
    expect(tableAfter(markdown, "### Per node")).toEqual([
      // The hand-written stack has no IPAMConfiguration, so the block cap and the node's maximum are unknown.
      ["t-cp-1", announces, "fc00::e (AS 65530), fc00::f (AS 65530)", "?"],
      ["t-worker-01", announces, "fc00::e (AS 65530), fc00::f (AS 65530)", "?"],
    ]);
  });

  test("API endpoints: outputs, kubeadm's endpoint and SANs, the init node's address named, not its boot placeholder", () => {
    expect(tableAfter(markdown, "## API endpoints and outputs")).toEqual([
      ["output `admin_kubeconfig`", "`(sensitive)`", "admin kubeconfig (`terraform output -raw admin_kubeconfig` in stack t)"],
      ["output `api_server_url`", "`https://[2001:db8:1:c20::1]:443`", "Kubernetes API URL"],
      ["kubeadm controlPlaneEndpoint", "`[2001:db8:1:c20::1]:443`", "what kubelets and joining nodes use"],
      ["API server certificate SANs", "`2001:db8:1:c20::1, kubernetes`", ""],
      ["init node API", "`(the node's public IPv6, filled in at boot) port 443`", "InitConfiguration localAPIEndpoint"],
      ["`kubernetes` Service", "`https://[2001:db8:1:c20::1]:443`", "ClusterIP, reachable where the Service range is routed"],
    ]);
    expect(markdown).not.toContain("__NODE_IPV6__");
  });

  test("open to the Internet: the failsafe ports with the policies' allow rules, the host-endpoint selector named once", () => {
    expect(markdown).toContain("2 allow rule(s) admit any source on the Internet, 1 admit named prefixes outside the cluster; 5 more only admit the cluster (below).");
    expect(markdown).toContain(`"all nodes" are Calico's automatic host endpoints, one per node: selector \`${HOST_ENDPOINTS}\`. "nodes with \`X\`" are those that also match X.`);
    expect(markdown.split(HOST_ENDPOINTS).length - 1).toBe(1);
    expect(tableAfter(markdown, "## Open to the Internet")).toEqual([
      [FAILSAFE, "all nodes", "TCP", "22", "2001:db8:ff::/48", "outside prefixes"],
      [FAILSAFE, "all nodes", "UDP", "68", "0.0.0.0/0", "**Internet**"],
      ["GlobalNetworkPolicy t-host-ingress", "all nodes", "ICMPv6 type 128, 135", "all", "anywhere", "**Internet**"],
    ]);
    expect(tableAfter(markdown, "<details><summary>Allow rules that only admit the cluster</summary>")).toEqual([
      [FAILSAFE, "all nodes", "TCP", "443", "2001:db8:1:c10::/64", "cluster"],
      [FAILSAFE, "all nodes", "TCP", "179", "fc00::e/128", "cluster"],
      ["GlobalNetworkPolicy t-host-ingress", "all nodes", "TCP", "179", "fc00::e/128, fc00::f/128", "cluster"],
      ["GlobalNetworkPolicy t-host-ingress", "all nodes", "TCP", "10250", "nodes with `has(node-role.kubernetes.io/control-plane)`", "cluster"],
      ["GlobalNetworkPolicy t-control-plane-ingress", HOST_CP, "TCP", "2379, 2380", "nodes with `has(node-role.kubernetes.io/control-plane)`", "cluster"],
    ]);
  });

  test("pinned versions (Kubernetes once) and downloads", () => {
    expect(tableAfter(markdown, "## Pinned versions")).toEqual([
      ["Flatcar", "`flatcar_beta`", "metal_device.operating_system"],
      ["Kubernetes", "`1.35.2`", "fabric_summary (lib/versions.ts), kubeadm ClusterConfiguration"],
      ["Calico", "`v3.31.0`", "fabric_summary (lib/versions.ts)"],
      ["Tigera operator", "`quay.io/tigera/operator:v1.40.0`", "fabric_summary (lib/versions.ts)"],
    ]);
    expect(tableAfter(markdown, "Downloads at first boot (Ignition checks each hash):")).toEqual([
      ["https://dl.k8s.io/release/v1.35.2/bin/linux/amd64/kubeadm", "`sha256-0011223344556…`", "2"],
    ]);
  });

  test("nothing is missing and no placeholder or secret shows", () => {
    expect(markdown).not.toContain("## Not found in the synthesized stacks");
    expect(markdown).not.toMatch(/__[A-Z0-9_]+__/);
    expect(markdown).not.toContain("local.admin_kubeconfig");
  });

  test("a kubeadm Kubernetes version that differs from fabric_summary gets its own flagged row", () => {
    const stack = JSON.parse(JSON.stringify(REPORT_FIXTURE_STACK));
    stack.output.fabric_summary.value.versions.kubernetes = "1.35.3";
    const rows = tableAfter(renderReport(buildReport({ t: stack })), "## Pinned versions");
    expect(rows.filter((r) => r[0].includes("Kubernetes"))).toEqual([
      ["Kubernetes", "`1.35.3`", "fabric_summary (lib/versions.ts)"],
      ["⚠ Kubernetes", "`v1.35.2`", "kubeadm ClusterConfiguration, differs from fabric_summary"],
    ]);
  });
});

/** Files under /etc/kubernetes/addons in a device's user data, decoded by this test. */
function addonFiles(userData: string): string[] {
  const config: any = unpackMerges(JSON.parse(withoutInterpolations(userData)) as IgnConfig);
  return (config.storage?.files ?? []).map((f: any) => f.path as string).filter((p: string) => p.startsWith("/etc/kubernetes/addons/"));
}

/** The Calico (and security) documents a stack's init node carries, and the report's BGP rows, must be the default example's. */
function expectInitNodeCarriesCalico(stack: TerraformJson, report: string): void {
  const devices = Object.values(stack.resource?.metal_device ?? {});
  const init = devices.filter((d) => documentsInUserData(d.user_data).some((doc) => doc.kind === "InitConfiguration"));
  expect(init.map((d) => d.hostname)).toEqual(["v6fabric-cp-1"]);
  expect(addonFiles(init[0].user_data)).toEqual([
    "/etc/kubernetes/addons/calico/00-calico-v3-crds.yaml",
    "/etc/kubernetes/addons/calico/00-tigera-operator.yaml",
    "/etc/kubernetes/addons/calico/10-installation.yaml",
    "/etc/kubernetes/addons/calico/20-bgp.yaml",
    "/etc/kubernetes/addons/calico/25-local-service-admission.yaml",
    "/etc/kubernetes/addons/calico/30-ippools.yaml",
    "/etc/kubernetes/addons/api-path/05-node-endpointslice-reader.yaml",
    "/etc/kubernetes/addons/security/40-felix-failsafe-ports.yaml",
    "/etc/kubernetes/addons/security/41-host-policies.yaml",
    "/etc/kubernetes/addons/security/42-auto-host-endpoints.yaml",
    "/etc/kubernetes/addons/dns/50-coredns-corefile.yaml",
  ]);
  const calicoKinds = ["Installation", "BGPConfiguration", "BGPFilter", "BGPPeer", "IPPool", "FelixConfiguration", "KubeControllersConfiguration"];
  const carried = documentsInUserData(init[0].user_data)
    .filter((d) => calicoKinds.includes(d.kind))
    .map((d) => `${d.kind} ${d.metadata.name}`)
    .sort();
  expect(carried).toEqual([
    "BGPConfiguration default",
    "BGPFilter metal-export",
    "BGPPeer metal-router-fc00-e",
    "BGPPeer metal-router-fc00-f",
    "FelixConfiguration default",
    "IPPool loadbalancer-ipv6",
    "IPPool local-services-ipv6",
    "IPPool pods-ipv6",
    "Installation default",
    "KubeControllersConfiguration default",
  ]);
  // Only the init node applies add-ons: the other nodes carry none.
  for (const d of devices.filter((x) => x !== init[0])) expect([d.hostname, addonFiles(d.user_data)]).toEqual([d.hostname, []]);
  expect(tableAfter(report, "### Peers")).toEqual([
    ["metal-router-fc00-e", "`fc00::e`", "65530", "all nodes (3)", "no"],
    ["metal-router-fc00-f", "`fc00::f`", "65530", "all nodes (3)", "no"],
  ]);
  const both = "metal-router-fc00-e, metal-router-fc00-f";
  expect(tableAfter(report, "### Announced prefixes")).toEqual([
    ["`2001:db8:0:ab10::/64`", "/120", "pod addresses: each /120 block a node holds (IPPool pods-ipv6)", "each node, its own blocks", both],
    ["`2001:db8:0:ab20::/108`", "/108", "Service ClusterIPs", "every node (ECMP at the routers)", both],
    ["`2001:db8:0:ab30::/112`", "/112", "Service external IPs and Service LoadBalancer IPs", "every node (ECMP at the routers)", both],
    ["`2001:db8:0:ab30::/113`", "/128", "/128 of a Service with `externalTrafficPolicy: Local` and an address from IPPool loadbalancer-ipv6", "only nodes with a local endpoint", "**none** (filtered)"],
    ["`2001:db8:0:ab30::8000/126`", "/128", "/128 of a Service with `externalTrafficPolicy: Local` and an address from IPPool local-services-ipv6", "only nodes with a local endpoint", both],
  ]);
  expect(report).toContain("Local ASN: 65000.");
}

describe("the default example: the init node carries Calico's documents, and the report states what they configure", () => {
  const synthesized = synth();
  const stack = onlyStackOf(synthesized);
  const report = reportFromOutdir(synthesized.outdir);

  test("v6fabric-cp-1 carries the Calico and security add-ons; the report's peers and prefixes are the Metal routers and the plan's ranges", () => {
    expectInitNodeCarriesCalico(stack, report);
  });

  test("the check above fails when the init node's Calico files are gone (the report alone would only list them as not found)", () => {
    const stripped: TerraformJson = JSON.parse(JSON.stringify(stack));
    for (const device of Object.values(stripped.resource!.metal_device)) {
      device.user_data = editUserData(device.user_data, (config) => {
        config.storage.files = config.storage.files.filter((f: any) => !String(f.path).startsWith("/etc/kubernetes/addons/calico/"));
      });
    }
    const strippedReport = renderReport(buildReport({ v6fabric: stripped as unknown as ReportTerraformJson }));
    expect(strippedReport).toContain("## Not found in the synthesized stacks");
    expect(() => expectInitNodeCarriesCalico(stripped, strippedReport)).toThrow();
  });
});

function onlyStackOf(s: Synthesized): TerraformJson {
  const names = Object.keys(s.stacks);
  expect(names).toEqual(["v6fabric"]);
  return s.stacks[names[0]];
}

test("`npm run report -- <outdir>` prints the report and writes <outdir>/report.md; a directory without a synth is refused", () => {
  const synthesized = synth();
  const result = spawnSync("npm", ["run", "--silent", "report", "--", synthesized.outdir], { cwd: root, encoding: "utf8", timeout: 120_000 });
  expect(result.status).toBe(0);
  expect(result.stdout).toContain("# Cluster report: v6fabric");
  expect(fs.readFileSync(path.join(synthesized.outdir, "report.md"), "utf8")).toBe(result.stdout);
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), "report-empty-"));
  scratch.push(empty);
  const missing = spawnSync("npm", ["run", "--silent", "report", "--", empty], { cwd: root, encoding: "utf8", timeout: 120_000 });
  expect(missing.status).toBe(1);
  expect(missing.stdout).toBe("");
  expect(missing.stderr).toContain(`${empty}: no manifest.json`);
  expect(missing.stderr).toContain("stacks/<name>/cdk.tf.json");
  expect(missing.stderr).toContain("run `npm run synth` first");
});

test("a synth with a bad setting after a good one leaves nothing the report accepts, and keeps the Terraform state", () => {
  // The good synth: a complete tree, with local state and a report beside it, as after a deploy.
  const outdir = synth().outdir;
  const state = path.join(outdir, "stacks", "v6fabric", "terraform.v6fabric.tfstate");
  fs.writeFileSync(state, '{"version": 4}\n');
  fs.writeFileSync(path.join(outdir, "report.md"), "# Cluster report: v6fabric\n");
  expect(() => reportFromOutdir(outdir)).not.toThrow();

  // The bad one, run as `cdktf synth` runs the app: cdktf.json's command, with CDKTF_OUTDIR.
  const app: string = JSON.parse(fs.readFileSync(path.join(root, "cdktf.json"), "utf8")).app;
  const bad = spawnSync(app, {
    shell: true,
    cwd: root,
    env: { ...process.env, CDKTF_OUTDIR: outdir, CONTROL_PLANE_COUNT: "2" },
    encoding: "utf8",
    timeout: 300_000,
  });
  expect(bad.status).not.toBe(0);
  expect(bad.stdout + bad.stderr).toContain("CONTROL_PLANE_COUNT=2 is not valid");

  expect(fs.existsSync(path.join(outdir, "manifest.json"))).toBe(false);
  expect(fs.existsSync(path.join(outdir, "stacks", "v6fabric", "cdk.tf.json"))).toBe(false);
  expect(fs.existsSync(path.join(outdir, "report.md"))).toBe(false);
  expect(fs.readFileSync(state, "utf8")).toBe('{"version": 4}\n');
  expect(() => reportFromOutdir(outdir)).toThrow(SynthesizedTreeError);
  expect(() => reportFromOutdir(outdir)).toThrow(`${outdir}: no manifest.json`);
});
