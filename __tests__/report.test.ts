/**
 * `npm run report`: the Markdown summary of the synthesized cluster. Node list,
 * prefixes and peers are checked against the synthesized JSON, decoded here with
 * this test's own reading of Ignition (not the report's).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as zlib from "node:zlib";
import YAML from "yaml";
import { planAddresses } from "../lib/address-plan";
import { buildReport, renderReport, reportFromOutdir } from "../scripts/report";
import { TerraformJson as ReportTerraformJson } from "../scripts/synthesized";
import { TerraformJson, synthesize } from "./support/synth";

const root = path.resolve(__dirname, "..");

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
 * Replaces each Terraform interpolation `${...}` (not the `$${` escape) with "TFREF", so the
 * rest parses as JSON: interpolations may hold quotes until Terraform renders them.
 */
function withoutInterpolations(text: string): string {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    if (text.startsWith("$${", i)) {
      out += "${";
      i += 2;
    } else if (text.startsWith("${", i)) {
      let depth = 0;
      let j = i + 1;
      for (; j < text.length; j++) {
        if (text[j] === "{") depth++;
        if (text[j] === "}" && --depth === 0) break;
      }
      out += "TFREF";
      i = j;
    } else out += text[i];
  }
  return out;
}

/** Kubernetes documents in a device's user data, decoded independently of scripts/synthesized.ts. */
function documentsInUserData(userData: string): any[] {
  const config = JSON.parse(withoutInterpolations(userData));
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
  const synth = synthesize(env);
  const [stackName] = Object.keys(synth.stacks);
  const stack = synth.stacks[stackName];
  const report = reportFromOutdir(synth.outdir);
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
    const ranges = ["serviceClusterIPs", "serviceExternalIPs", "serviceLoadBalancerIPs"].flatMap((k) => (bgp?.spec?.[k] ?? []).map((e: any) => e.cidr));
    if (bgp || pools.length > 0) {
      expect(reported).toEqual([...new Set([...pools, ...ranges])].sort());
      // Every range the address plan routes is exported to at least one peer, unless filtered on purpose.
      for (const row of rows.filter((r) => r[1] === `/${unquote(r[0]).split("/")[1]}`)) expect(row[4]).not.toContain("none");
    } else {
      // Calico (issue 5) not in the stack yet: the report shows the plan and says so.
      expect(report).toContain("Calico BGPPeer documents (issue 5");
      expect(rows.every((r) => r[2].includes("planned"))).toBe(true);
    }
  });

  test("peers are the BGPPeers in the stack, and every node peers with the ones that select it", () => {
    const peerDocs = docs.filter((d) => d.kind === "BGPPeer");
    const rows = tableAfter(report, "### Peers").length ? tableAfter(report, "### Peers") : [];
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
    if (peerDocs.length === 0) expect(report).toContain("No BGP peers found");
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

  test("shows the pinned versions and the local state file", () => {
    const rows = tableAfter(report, "## Pinned versions");
    const summary = stack.output!.fabric_summary.value;
    expect(rows).toContainEqual(["Flatcar", "`flatcar_stable`", "metal_device.operating_system"]);
    expect(rows.find((r) => r[0] === "Kubernetes")?.[1]).toBe(`\`${summary.versions.kubernetes}\``);
    expect(rows.find((r) => r[0] === "Calico")?.[1]).toBe(`\`${summary.versions.calico}\``);
    expect(report).toContain(`local file \`terraform.${stackName}.tfstate\``);
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

test("`npm run report -- <outdir>` prints the report and writes <outdir>/report.md", () => {
  const synth = synthesize();
  const result = spawnSync("npm", ["run", "--silent", "report", "--", synth.outdir], { cwd: root, encoding: "utf8", timeout: 120_000 });
  expect(result.status).toBe(0);
  expect(result.stdout).toContain("# Cluster report: v6fabric");
  expect(fs.readFileSync(path.join(synth.outdir, "report.md"), "utf8")).toBe(result.stdout);
  const missing = spawnSync("npm", ["run", "--silent", "report", "--", fs.mkdtempSync(path.join(os.tmpdir(), "empty-"))], { cwd: root, encoding: "utf8", timeout: 120_000 });
  expect(missing.status).toBe(1);
  expect(missing.stderr).toContain("run `npm run synth` first");
});
