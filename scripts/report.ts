/**
 * `npm run report [-- <outdir>] [--out <file>]`: a Markdown summary of the synthesized
 * cluster for operators and reviewers. Reads only `<outdir>/stacks/*\/cdk.tf.json`
 * (default `cdktf.out`), including the documents inside the nodes' Ignition user data,
 * and writes the report to stdout and to `<outdir>/report.md`. It refuses a tree that is
 * not a complete synth (no manifest.json: the last synth failed), so it never describes
 * a cluster that was not synthesized.
 *
 * Facts come from where a deploy takes them: devices and BGP sessions from the
 * resources, the address plan and versions from the `fabric_summary` output
 * (lib/fabric-summary.ts), peers and announcements from the Calico documents, API
 * endpoints from the outputs and the kubeadm ClusterConfiguration, exposure from Felix's
 * failsafe ports and the Calico policies. Boot placeholders (lib/boot-values.ts) are
 * shown as what the node fills in. Whatever is absent is listed under "Not found"
 * instead of guessed.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Ipv6Cidr } from "../lib/address-plan";
import { FABRIC_SUMMARY_OUTPUT, FabricSummary } from "../lib/fabric-summary";
import {
  Json,
  JsonObject,
  TerraformJson,
  devicesOf,
  kubernetesDocuments,
  arr,
  obj,
  ofKind,
  readSynthesized,
  redactSecrets,
  str,
} from "./synthesized";
import { ExposureRule, exposureOf, within } from "./report-exposure";
import { renderReport } from "./report-render";

export type { Exposure, ExposureRule } from "./report-exposure";
export { renderDiagram, renderReport } from "./report-render";

export type Role = "control-plane" | "worker" | "unknown";

export interface ReportNode {
  readonly stack: string;
  readonly hostname: string;
  readonly role: Role;
  readonly plan: string;
  readonly metro: string;
  readonly operatingSystem: string;
  /** Address families of the node's metal_bgp_session resources. */
  readonly bgpSessions: readonly string[];
  /** Terraform address of the device, for `terraform apply -replace=...` (docs/operations.md). */
  readonly address: string;
}

export interface ReportPeer {
  readonly name: string;
  /** Peer address without a port. */
  readonly address: string;
  readonly asn?: number;
  /** Which nodes peer: a Calico selector, a node name, or "all nodes". */
  readonly selects: string;
  readonly md5: boolean;
  /** Hostnames of the nodes that peer with it. */
  readonly nodes: readonly string[];
}

export interface Announcement {
  /** The range the route lies in (or is). */
  readonly prefix: string;
  /** Prefix length of the routes announced; the range's own length for the whole range. */
  readonly length?: number;
  readonly what: string;
  readonly from: string;
  /** Names of the peers the export filters let it through to. */
  readonly exportedTo: readonly string[];
}

/** A route Calico may announce: the whole `prefix` (exact) or routes of `length` inside it. */
interface Route {
  readonly prefix: string;
  readonly length: number;
  readonly exact: boolean;
  what: string;
  readonly from: string;
}


/**
 * Whether Calico's BGPFilter export rules (in order, first match wins) let `route`
 * through. A route no rule matches is left to Calico's own export logic, which exports
 * every candidate listed here (a node's blocks, the Service ranges, Local /128s).
 * Calico matches `In` as "inside the CIDR, or equal".
 */
function exported(route: Route, rules: readonly JsonObject[]): boolean {
  for (const rule of rules) {
    const cidr = str(rule.cidr);
    const op = str(rule.matchOperator);
    const equal = route.exact && cidr !== undefined && Ipv6Cidr.parse(cidr).toString() === Ipv6Cidr.parse(route.prefix).toString();
    const inside = cidr !== undefined && within(route.prefix, cidr);
    const cidrMatch = cidr === undefined || (op === "Equal" ? equal : op === "NotEqual" ? !equal : op === "NotIn" ? !inside : inside);
    const len = obj(rule.prefixLength);
    const lengthMatch = (typeof len.min !== "number" || route.length >= len.min) && (typeof len.max !== "number" || route.length <= len.max);
    if (cidrMatch && lengthMatch) return str(rule.action) !== "Reject";
  }
  return true;
}


export interface ClusterReport {
  readonly stacks: readonly { readonly name: string; readonly state: string }[];
  readonly nodes: readonly ReportNode[];
  readonly summary?: FabricSummary;
  readonly addressPlan: readonly { readonly range: string; readonly prefix: string; readonly note: string }[];
  readonly localAsn?: number;
  readonly peers: readonly ReportPeer[];
  readonly announcements: readonly Announcement[];
  readonly exportFilters: readonly string[];
  readonly perNode: readonly {
    readonly hostname: string;
    readonly announces: readonly string[];
    readonly peers: readonly string[];
    /** The most prefixes the node can announce (pod blocks at IPAM's maxBlocksPerHost), or undefined if unknown. */
    readonly maxPrefixes?: number;
  }[];
  readonly endpoints: readonly { readonly name: string; readonly value: string; readonly note: string }[];
  readonly exposure: readonly ExposureRule[];
  readonly exposedServices: readonly string[];
  readonly versions: readonly { readonly component: string; readonly version: string; readonly source: string }[];
  readonly downloads: readonly { readonly url: string; readonly hash: string; readonly nodes: number }[];
  /** What the report looked for and did not find, with the part of the project that provides it. */
  readonly notFound: readonly string[];
}

// ---------------------------------------------------------------------------------


function roleOf(device: JsonObject): Role {
  const tags = arr(device.tags).map(String);
  if (tags.includes("k8s-role-control-plane")) return "control-plane";
  if (tags.includes("k8s-role-worker")) return "worker";
  const hostname = String(device.hostname);
  if (/-cp-\d+$/.test(hostname)) return "control-plane";
  if (/-worker-\d+$/.test(hostname)) return "worker";
  return "unknown";
}

function stateOf(name: string, json: TerraformJson): string {
  const tf = obj(json.terraform);
  const cloud = obj(tf.cloud);
  if (cloud.organization) return `Terraform Cloud: organization \`${str(cloud.organization)}\`, workspace \`${str(obj(cloud.workspaces).name) ?? "(tags)"}\` on ${str(cloud.hostname) ?? "app.terraform.io"}`;
  const backend = obj(tf.backend);
  const [kind] = Object.keys(backend);
  if (kind === "local") return `local file \`${str(obj(backend.local).path) ?? `terraform.${name}.tfstate`}\``;
  return kind ? `backend \`${kind}\`` : "local (default)";
}

/** Strips the port from a Calico peerIP (`[fc00::e]:179` -> `fc00::e`). */
function peerAddress(peerIP: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(peerIP);
  return bracketed ? bracketed[1] : peerIP;
}

/**
 * Nodes a Calico node selector picks. Understands the selectors a fabric uses
 * (`all()`, `has(l)`, `!has(l)`, `l == 'v'`, `l != 'v'`, joined by `&&`) over the labels
 * kubeadm puts on nodes; returns undefined for anything else.
 */
function selectNodes(selector: string | undefined, nodes: readonly ReportNode[]): string[] | undefined {
  const labelsOf = (n: ReportNode): Record<string, string> => ({
    "kubernetes.io/hostname": n.hostname,
    ...(n.role === "control-plane" ? { "node-role.kubernetes.io/control-plane": "" } : {}),
  });
  const s = (selector ?? "").trim();
  if (s === "" || s === "all()") return nodes.map((n) => n.hostname);
  const terms = s.split("&&").map((t) => t.trim());
  const tests: ((labels: Record<string, string>) => boolean)[] = [];
  for (const term of terms) {
    let m: RegExpExecArray | null;
    if ((m = /^(!?)has\(\s*([\w./-]+)\s*\)$/.exec(term))) {
      const [, not, label] = m;
      tests.push((l) => (label in l) !== (not === "!"));
    } else if ((m = /^([\w./-]+)\s*(==|!=)\s*['"]([^'"]*)['"]$/.exec(term))) {
      const [, label, op, value] = m;
      tests.push((l) => (l[label] === value) === (op === "=="));
    } else if (term === "all()") {
      continue;
    } else return undefined;
  }
  return nodes.filter((n) => tests.every((t) => t(labelsOf(n)))).map((n) => n.hostname);
}

function cidrsOf(list: Json | undefined): string[] {
  return arr(list).flatMap((e) => (str(obj(e).cidr) ? [str(obj(e).cidr)!] : []));
}


// ---------------------------------------------------------------------------------

export function buildReport(stacks: Record<string, TerraformJson>): ClusterReport {
  const notFound: string[] = [];
  const devices = devicesOf(stacks);
  const docs = kubernetesDocuments(stacks);

  const sessionFamilies = new Map<string, string[]>();
  for (const json of Object.values(stacks)) {
    for (const session of Object.values(json.resource?.metal_bgp_session ?? {})) {
      const ref = /^\$\{metal_device\.([^.]+)\.id\}$/.exec(String(session.device_id));
      if (!ref) continue;
      const key = `metal_device.${ref[1]}`;
      sessionFamilies.set(key, [...(sessionFamilies.get(key) ?? []), String(session.address_family)]);
    }
  }
  const nodes: ReportNode[] = devices.map((d) => ({
    stack: d.stack,
    hostname: d.hostname,
    role: roleOf(d.body),
    plan: String(d.body.plan),
    metro: String(d.body.metro ?? d.body.facilities ?? "?"),
    operatingSystem: String(d.body.operating_system),
    bgpSessions: sessionFamilies.get(d.address) ?? [],
    address: d.address,
  }));
  if (nodes.length === 0) notFound.push("no `metal_device` resources or Matchbox machines: nothing to deploy, or synth did not run");
  for (const d of devices) {
    if (d.userData && "error" in d.userData) notFound.push(`${d.hostname}: ${d.userData.error} (Ignition, issue 3: ignition/)`);
  }

  // fabric_summary: the address plan, ASN and versions from their owners.
  const summaries = Object.values(stacks).flatMap((json) => {
    const output = json.output?.[FABRIC_SUMMARY_OUTPUT];
    return output && typeof output.value === "object" ? [output.value as unknown as FabricSummary] : [];
  });
  const summary = summaries[0];
  if (!summary) notFound.push(`the \`${FABRIC_SUMMARY_OUTPUT}\` output (constructs/cluster-stack.ts): address plan and versions`);

  const clusterConfig = ofKind(docs, "ClusterConfiguration")[0];
  const initConfig = ofKind(docs, "InitConfiguration")[0];
  if (!clusterConfig) notFound.push("a kubeadm ClusterConfiguration in the nodes' user data (issue 4: lib/kubeadm.ts)");

  const addressPlan: { range: string; prefix: string; note: string }[] = [];
  if (summary) {
    const p = summary.addressPlan;
    addressPlan.push(
      { range: "Project block", prefix: p.block, note: "CLUSTER_IPV6_BLOCK" },
      { range: "Node addresses", prefix: p.nodeRange, note: "Metal assigns each device a /127 here; not announced" },
      { range: "Pods", prefix: p.podCidr, note: "kubeadm podSubnet, Calico IPPool" },
      { range: "Service ClusterIPs", prefix: p.serviceCidr, note: `\`kubernetes\` Service ${p.kubernetesServiceIp}, cluster DNS ${p.clusterDnsIp}` },
      { range: "Service external / LoadBalancer IPs", prefix: p.externalCidr, note: "Calico serviceExternalIPs / serviceLoadBalancerIPs" },
    );
  }
  // Cross-checks: the documents a node applies must agree with the plan.
  const networking = obj(clusterConfig ? clusterConfig.body.networking : undefined);
  if (summary && str(networking.podSubnet) && str(networking.podSubnet) !== summary.addressPlan.podCidr) {
    addressPlan.push({ range: "⚠ kubeadm podSubnet", prefix: str(networking.podSubnet)!, note: "differs from the address plan's pod range" });
  }
  if (summary && str(networking.serviceSubnet) && str(networking.serviceSubnet) !== summary.addressPlan.serviceCidr) {
    addressPlan.push({ range: "⚠ kubeadm serviceSubnet", prefix: str(networking.serviceSubnet)!, note: "differs from the address plan's Service range" });
  }

  // BGP: Calico's documents say what the nodes announce and to whom.
  const bgpConfig = ofKind(docs, "BGPConfiguration").find((d) => d.name === "default") ?? ofKind(docs, "BGPConfiguration")[0];
  const bgpSpec = obj(bgpConfig?.body.spec);
  const localAsn = typeof bgpSpec.asNumber === "number" ? bgpSpec.asNumber : summary?.bgp.localAsn;
  const peerDocs = ofKind(docs, "BGPPeer");
  if (!bgpConfig) notFound.push("a Calico BGPConfiguration (issue 5: lib/calico.ts): Service ranges announced, ASN, mesh");
  if (peerDocs.length === 0) notFound.push("Calico BGPPeer documents (issue 5: lib/calico.ts): the routers each node peers with");
  const peers: ReportPeer[] = peerDocs.map((doc) => {
    const spec = obj(doc.body.spec);
    const selector = str(spec.nodeSelector);
    const node = str(spec.node);
    const selected = node ? nodes.filter((n) => n.hostname === node).map((n) => n.hostname) : selectNodes(selector, nodes) ?? [];
    return {
      name: doc.name ?? "?",
      address: peerAddress(str(spec.peerIP) ?? str(spec.peerSelector) ?? "?"),
      asn: typeof spec.asNumber === "number" ? spec.asNumber : undefined,
      selects: node ? `node ${node}` : selector && selector !== "all()" ? `selector \`${selector}\`` : "all nodes",
      md5: spec.password !== undefined,
      nodes: selected,
    };
  });

  const pools = ofKind(docs, "IPPool").filter((d) => obj(d.body.spec).disabled !== true);
  if (pools.length === 0) notFound.push("a Calico IPPool (issue 5: lib/calico.ts): pod block size");
  const candidates: Route[] = [];
  const loadBalancerPools = pools.filter((p) => arr(obj(p.body.spec).allowedUses).map(String).includes("LoadBalancer"));
  const ipam = obj(ofKind(docs, "IPAMConfiguration")[0]?.body.spec);
  const maxBlocks = typeof ipam.maxBlocksPerHost === "number" && ipam.maxBlocksPerHost > 0 ? ipam.maxBlocksPerHost : undefined;
  for (const pool of pools) {
    const spec = obj(pool.body.spec);
    const uses = arr(spec.allowedUses).map(String);
    // Pools only for LoadBalancer IPAM hand out Service addresses: announced as serviceLoadBalancerIPs below.
    if (spec.disableBGPExport === true || (uses.length > 0 && !uses.includes("Workload"))) continue;
    const blockSize = typeof spec.blockSize === "number" ? spec.blockSize : 122; // Calico's IPv6 default
    candidates.push({ prefix: str(spec.cidr) ?? "?", length: blockSize, exact: false, what: `pod addresses: each /${blockSize} block a node holds (IPPool ${pool.name ?? "?"})`, from: "each node, its own blocks" });
  }
  const serviceRanges = [
    ["serviceClusterIPs", "Service ClusterIPs", false],
    ["serviceExternalIPs", "Service external IPs", true],
    ["serviceLoadBalancerIPs", "Service LoadBalancer IPs", true],
  ] as const;
  const seen = new Set<string>();
  for (const [field, what, local] of serviceRanges) {
    for (const cidr of cidrsOf(bgpSpec[field])) {
      const key = Ipv6Cidr.parse(cidr).toString();
      if (seen.has(key)) {
        // The same range in two roles (external and LoadBalancer IPs): one route.
        const known = candidates.find((c) => c.exact && c.prefix === cidr);
        if (known) known.what += ` and ${what}`;
        continue;
      }
      candidates.push({ prefix: cidr, length: Ipv6Cidr.parse(cidr).length, exact: true, what, from: "every node (ECMP at the routers)" });
      if (local) {
        // Local /128s: per LoadBalancer pool inside the range, so the report shows which pool's addresses may leave.
        const inRange = loadBalancerPools.filter((p) => within(str(obj(p.body.spec).cidr) ?? "::/128", cidr));
        for (const pool of inRange) {
          candidates.push({
            prefix: str(obj(pool.body.spec).cidr) ?? "?",
            length: 128,
            exact: false,
            what: `/128 of a Service with \`externalTrafficPolicy: Local\` and an address from IPPool ${pool.name ?? "?"}`,
            from: "only nodes with a local endpoint",
          });
        }
        if (inRange.length === 0) {
          candidates.push({ prefix: cidr, length: 128, exact: false, what: `/128 of a Service with \`externalTrafficPolicy: Local\` in ${what}`, from: "only nodes with a local endpoint" });
        }
      }
      seen.add(key);
    }
  }
  const filters = new Map(ofKind(docs, "BGPFilter").map((f) => [f.name ?? "?", arr(obj(f.body.spec).exportV6).map(obj)]));
  const peerFilters = new Map(peerDocs.map((d) => [d.name ?? "?", arr(obj(d.body.spec).filters).map(String)]));
  const announcements: Announcement[] = candidates.map((route) => ({
    prefix: route.prefix,
    length: route.length,
    what: route.what,
    from: route.from,
    exportedTo: peers.filter((p) => exported(route, (peerFilters.get(p.name) ?? []).flatMap((f) => filters.get(f) ?? []))).map((p) => p.name),
  }));
  if (!bgpConfig && summary) {
    announcements.push(
      { prefix: summary.addressPlan.podCidr, what: "pods (planned; no Calico IPPool/BGPConfiguration found)", from: "?", exportedTo: [] },
      { prefix: summary.addressPlan.serviceCidr, what: "Service ClusterIPs (planned)", from: "?", exportedTo: [] },
      { prefix: summary.addressPlan.externalCidr, what: "Service external IPs (planned)", from: "?", exportedTo: [] },
    );
  }
  const exportFilters = [...filters.entries()].flatMap(([name, rules]) =>
    rules.map((rule) => {
      const len = obj(rule.prefixLength);
      const lengths = len.min !== undefined || len.max !== undefined ? ` prefix length ${str(len.min) ?? "any"}-${str(len.max) ?? "any"}` : "";
      return `BGPFilter ${name}: ${str(rule.action)} ${str(rule.matchOperator) ?? ""} ${str(rule.cidr) ?? "(any route)"}${lengths}`.replace(/\s+/g, " ");
    }),
  );
  const routeText = (a: Announcement) => (a.length === undefined || a.length === Number(a.prefix.split("/")[1]) ? a.prefix : `/${a.length}s in ${a.prefix}`);
  // How many routes an announcement row can be on one node: 1 for an exact prefix, IPAM's
  // block cap for pod blocks, every address of a pool for Local /128s.
  const routesOf = (a: Announcement): number | undefined => {
    if (a.length === undefined || a.length === Ipv6Cidr.parse(a.prefix).length) return 1;
    if (a.length === 128) return Number(Ipv6Cidr.parse(a.prefix).size);
    return maxBlocks;
  };
  const perNode = nodes.map((n) => {
    const mine = peers.filter((p) => p.nodes.includes(n.hostname));
    const announced = announcements.filter((a) => a.from !== "?" && a.exportedTo.some((name) => mine.some((p) => p.name === name)));
    const counts = announced.map(routesOf);
    return {
      hostname: n.hostname,
      announces: announced.map(routeText),
      peers: mine.map((p) => `${p.address}${p.asn ? ` (AS ${p.asn})` : ""}`),
      maxPrefixes: counts.every((c) => c !== undefined) && counts.length > 0 ? counts.reduce((x, y) => x! + y!, 0) : undefined,
    };
  });

  // API endpoints: outputs (issue 4) and the kubeadm configuration.
  const endpoints: { name: string; value: string; note: string }[] = [];
  for (const [stack, json] of Object.entries(stacks)) {
    for (const [name, output] of Object.entries(json.output ?? {})) {
      if (name === FABRIC_SUMMARY_OUTPUT) continue;
      const value = output.sensitive === true ? "(sensitive)" : redactSecrets(typeof output.value === "string" ? output.value : JSON.stringify(output.value));
      endpoints.push({
        name: `output \`${name}\``,
        value,
        note: `${str(output.description) ?? ""}${output.sensitive === true ? ` (\`terraform output -raw ${name}\` in stack ${stack})` : ""}`.trim(),
      });
    }
  }
  if (!Object.values(stacks).some((j) => Object.keys(j.output ?? {}).some((n) => /endpoint|api|kubeconfig/i.test(n)))) {
    notFound.push("API endpoint / kubeconfig outputs (issue 4: constructs/kubeadm-control-plane.ts)");
  }
  if (clusterConfig) {
    const spec = clusterConfig.body;
    if (str(spec.controlPlaneEndpoint)) endpoints.push({ name: "kubeadm controlPlaneEndpoint", value: str(spec.controlPlaneEndpoint)!, note: "what kubelets and joining nodes use" });
    const sans = arr(obj(spec.apiServer).certSANs).map(String);
    if (sans.length > 0) endpoints.push({ name: "API server certificate SANs", value: sans.join(", "), note: "" });
  }
  if (initConfig) {
    const api = obj(initConfig.body.localAPIEndpoint);
    if (str(api.advertiseAddress) || api.bindPort) endpoints.push({ name: "init node API", value: `${str(api.advertiseAddress) ?? "(node address)"} port ${str(api.bindPort) ?? "6443"}`, note: "InitConfiguration localAPIEndpoint" });
  }
  if (summary) endpoints.push({ name: "`kubernetes` Service", value: `https://[${summary.addressPlan.kubernetesServiceIp}]:443`, note: "ClusterIP, reachable where the Service range is routed" });

  // Exposure: Calico policies (issue 6).
  const exposure = exposureOf(docs, summary?.addressPlan.block);
  const policyKinds = docs.filter((d) => /NetworkPolicy$/.test(d.kind));
  if (policyKinds.length === 0) notFound.push("network policies (issue 6: lib/policies.ts): without them every node, pod and Service address is reachable from the Internet");
  const exposedServices = ofKind(docs, "Service")
    .filter((d) => {
      const spec = obj(d.body.spec);
      return str(spec.type) === "LoadBalancer" || arr(spec.externalIPs).length > 0;
    })
    .map((d) => {
      const spec = obj(d.body.spec);
      const ports = arr(spec.ports).map((p) => `${str(obj(p).port)}/${str(obj(p).protocol) ?? "TCP"}`);
      const labels = obj(obj(d.body.metadata).labels);
      return `Service ${d.namespace ?? "default"}/${d.name}: ${str(spec.type) ?? "ClusterIP"} ports ${ports.join(", ")}, externalTrafficPolicy ${str(spec.externalTrafficPolicy) ?? "Cluster"}${Object.keys(labels).length ? `, labels ${JSON.stringify(labels)}` : ""}`;
    });

  // Versions.
  const versions: { component: string; version: string; source: string }[] = [];
  for (const os of [...new Set(nodes.map((n) => n.operatingSystem))]) versions.push({ component: "Flatcar", version: os, source: "metal_device.operating_system" });
  // One Kubernetes row when fabric_summary and kubeadm agree (kubeadm writes a leading v); a second, flagged, when not.
  const kubeadmVersion = clusterConfig ? str(clusterConfig.body.kubernetesVersion) : undefined;
  const sameKubernetes = summary !== undefined && kubeadmVersion !== undefined && kubeadmVersion.replace(/^v/, "") === summary.versions.kubernetes.replace(/^v/, "");
  if (summary) {
    versions.push({ component: "Kubernetes", version: summary.versions.kubernetes, source: `fabric_summary (lib/versions.ts)${sameKubernetes ? ", kubeadm ClusterConfiguration" : ""}` });
    versions.push({ component: "Calico", version: summary.versions.calico, source: "fabric_summary (lib/versions.ts)" });
    versions.push({ component: "Tigera operator", version: summary.versions.calicoOperatorImage, source: "fabric_summary (lib/versions.ts)" });
  }
  if (kubeadmVersion !== undefined && !sameKubernetes) {
    versions.push({ component: summary ? "⚠ Kubernetes" : "Kubernetes", version: kubeadmVersion, source: `kubeadm ClusterConfiguration${summary ? ", differs from fabric_summary" : ""}` });
  }
  const downloadCount = new Map<string, { hash: string; nodes: number }>();
  for (const d of devices) {
    if (!d.userData || !("ignition" in d.userData)) continue;
    for (const f of d.userData.ignition.files) {
      if (!f.remote) continue;
      const known = downloadCount.get(f.remote.url);
      downloadCount.set(f.remote.url, { hash: f.remote.hash ?? "(no hash!)", nodes: (known?.nodes ?? 0) + 1 });
    }
  }
  const downloads = [...downloadCount.entries()].map(([url, v]) => ({ url, ...v })).sort((a, b) => a.url.localeCompare(b.url));

  return {
    stacks: Object.entries(stacks).map(([name, json]) => ({ name, state: stateOf(name, json) })),
    nodes,
    summary,
    addressPlan,
    localAsn,
    peers,
    announcements,
    exportFilters,
    perNode,
    endpoints,
    exposure,
    exposedServices,
    versions,
    downloads,
    notFound,
  };
}


/** The report for `<outdir>`, a complete synth (throws SynthesizedTreeError otherwise). */
export function reportFromOutdir(outdir: string): string {
  return renderReport(buildReport(readSynthesized(outdir)));
}

function main(argv: string[]): void {
  const positional: string[] = [];
  let outFile: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--out") outFile = argv[++i];
    else positional.push(argv[i]);
  }
  const outdir = positional[0] ?? "cdktf.out";
  try {
    const markdown = reportFromOutdir(outdir);
    const target = outFile ?? path.join(outdir, "report.md");
    fs.writeFileSync(target, markdown);
    process.stdout.write(markdown);
    process.stderr.write(`report written to ${target}\n`);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  }
}

if (require.main === module) main(process.argv.slice(2));
