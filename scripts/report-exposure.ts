/**
 * The report's exposure table (scripts/report.ts): who may reach what, read from Felix's
 * failsafe ports and the Calico and Kubernetes policies in the synthesized documents.
 * A rule is "internet" unless it names its sources positively, as Calico reads it.
 */
import { Ipv6Cidr } from "../lib/address-plan";
import { HOST_SELECTOR } from "../lib/policies";
import { JsonObject, KubernetesDocument, arr, obj, ofKind, str } from "./synthesized";

/** Who a rule admits: any source on the Internet, named prefixes outside the cluster, or only the cluster. */
export type Exposure = "internet" | "outside prefixes" | "cluster";

export interface ExposureRule {
  readonly policy: string;
  /** Markdown: "all nodes", "nodes with `<selector>`" or the selector in backticks, and "(to ...)". */
  readonly appliesTo: string;
  /** Protocols, one rule each, merged when everything else is the same (ICMPv6 types). */
  readonly protocol: string;
  readonly ports: string;
  readonly from: string;
  readonly exposure: Exposure;
}

/** Whether `inner` lies inside `outer` (false for anything unparsable). */
export function within(inner: string, outer: string): boolean {
  try {
    return Ipv6Cidr.parse(outer).contains(Ipv6Cidr.parse(inner));
  } catch {
    return false;
  }
}

/** Where a prefix lies, seen from the cluster. `block` is the project's block when known. */
function netKind(net: string, block: string | undefined): "anywhere" | "loopback" | "cluster" | "outside" {
  if (net === "::/0" || net === "0.0.0.0/0") return "anywhere";
  if (net.startsWith("127.") || net === "::1/128") return "loopback";
  if (!net.includes(":")) return "outside";
  // The Metal routers' fc00::e/f are ULA (fc00::/7): not reachable from the Internet.
  if (within(net, "fc00::/7") || (block !== undefined && within(net, block))) return "cluster";
  return "outside";
}

/** How the report names the nodes' automatic host endpoints (HOST_SELECTOR), explained once above the exposure table. */
export const ALL_NODES = "all nodes";

/**
 * A Calico selector as Markdown. The host-endpoint selector every host policy starts
 * with (lib/policies.ts HOST_SELECTOR) is named once instead of repeated in every row:
 * `HOST_SELECTOR` is "all nodes", `HOST_SELECTOR && X` is "nodes with `X`".
 */
function selectorText(selector: string): string {
  const s = selector.trim();
  if (s === HOST_SELECTOR) return ALL_NODES;
  if (s.startsWith(`${HOST_SELECTOR} && `)) return `nodes with \`${s.slice(HOST_SELECTOR.length + 4)}\``;
  return `selector \`${s}\``;
}

function describeSource(source: JsonObject, block: string | undefined): { from: string; exposure: Exposure } {
  const nets = arr(source.nets).map(String);
  const included: string[] = [];
  if (nets.length > 0) included.push(nets.join(", "));
  if (str(source.selector)) included.push(selectorText(str(source.selector)!));
  if (str(source.namespaceSelector)) included.push(`namespaces \`${str(source.namespaceSelector)}\``);
  if (source.serviceAccounts) included.push("service accounts");
  const excluded: string[] = [];
  if (arr(source.notNets).length > 0) excluded.push(arr(source.notNets).map(String).join(", "));
  if (str(source.notSelector)) excluded.push(selectorText(str(source.notSelector)!));
  // Outside sources are admitted unless the rule names its sources positively: notNets and
  // notSelector only carve the cluster out of "anywhere".
  const positive = included.length > 0;
  const kinds = nets.map((n) => netKind(n, block));
  const exposure: Exposure = !positive || kinds.includes("anywhere") ? "internet" : kinds.includes("outside") ? "outside prefixes" : "cluster";
  const from = positive ? [...included, ...excluded.map((e) => `not ${e}`)].join("; ") : excluded.length > 0 ? `anywhere except ${excluded.join("; ")}` : "anywhere";
  return { from, exposure };
}

function ruleProtocol(rule: JsonObject): string {
  const icmp = obj(rule.icmp);
  const protocol = str(rule.protocol) ?? "any";
  return icmp.type !== undefined ? `${protocol} type ${icmp.type}` : protocol;
}

export function exposureOf(docs: readonly KubernetesDocument[], block: string | undefined): ExposureRule[] {
  const rules: ExposureRule[] = [];
  // Felix's failsafe ports come first: every host endpoint accepts them before any policy.
  for (const felix of ofKind(docs, "FelixConfiguration")) {
    for (const port of arr(obj(felix.body.spec).failsafeInboundHostPorts).map(obj)) {
      // Calico's defaults: protocol tcp, and no net means any source.
      const source = describeSource(str(port.net) ? { nets: [str(port.net)!] } : {}, block);
      rules.push({
        policy: `FelixConfiguration ${felix.name ?? "?"}: failsafe port, open whatever the policies say`,
        appliesTo: ALL_NODES,
        protocol: str(port.protocol) ?? "TCP",
        ports: str(port.port) ?? "?",
        from: source.from,
        exposure: source.exposure,
      });
    }
  }
  for (const doc of docs) {
    const spec = obj(doc.body.spec);
    if (doc.apiVersion.includes("projectcalico.org") && (doc.kind === "GlobalNetworkPolicy" || doc.kind === "NetworkPolicy")) {
      const types = arr(spec.types).map(String);
      if (types.length > 0 && !types.includes("Ingress")) continue;
      for (const rule of arr(spec.ingress).map(obj)) {
        if (str(rule.action) !== "Allow") continue;
        const source = describeSource(obj(rule.source), block);
        const destination = obj(rule.destination);
        const ports = arr(destination.ports).map(String);
        const destNets = arr(destination.nets).map(String);
        const to = [...destNets, ...(str(destination.selector) ? [selectorText(str(destination.selector)!)] : [])];
        // Traffic to loopback never comes from outside the node (RFC 4291 2.5.3).
        const loopbackOnly = destNets.length > 0 && destNets.every((n) => netKind(n, block) === "loopback");
        rules.push({
          policy: `${doc.kind} ${doc.namespace ? `${doc.namespace}/` : ""}${doc.name ?? "?"}${spec.preDNAT === true ? " (preDNAT)" : spec.applyOnForward === true ? " (forwarded traffic)" : ""}`,
          appliesTo: selectorText(str(spec.selector) ?? "all()") + (to.length > 0 ? ` (to ${to.join(", ")})` : ""),
          protocol: ruleProtocol(rule),
          ports: ports.length > 0 ? ports.join(", ") : "all",
          from: source.from,
          exposure: loopbackOnly ? "cluster" : source.exposure,
        });
      }
    }
    if (doc.apiVersion === "networking.k8s.io/v1" && doc.kind === "NetworkPolicy") {
      for (const rule of arr(spec.ingress).map(obj)) {
        const peers = arr(rule.from).map(obj);
        const blocks = peers.flatMap((p) => (str(obj(p.ipBlock).cidr) ? [str(obj(p.ipBlock).cidr)!] : []));
        const kinds = blocks.map((b) => netKind(b, block));
        const ports = arr(rule.ports).map(obj);
        rules.push({
          policy: `NetworkPolicy ${doc.namespace ?? "default"}/${doc.name ?? "?"}`,
          appliesTo: `pods \`${JSON.stringify(obj(spec.podSelector))}\``,
          protocol: ports.map((p) => str(p.protocol) ?? "TCP").join(", ") || "any",
          ports: ports.map((p) => str(p.port) ?? "all").join(", ") || "all",
          from: peers.length === 0 ? "anywhere" : blocks.join(", ") || "selected pods/namespaces",
          exposure: peers.length === 0 || kinds.includes("anywhere") ? "internet" : kinds.includes("outside") ? "outside prefixes" : "cluster",
        });
      }
    }
  }
  // One row for rules that differ only in protocol (the ICMPv6 types of one policy).
  const merged = new Map<string, ExposureRule>();
  for (const r of rules) {
    const key = [r.policy, r.appliesTo, r.ports, r.from, r.exposure].join("\u0000");
    const known = merged.get(key);
    merged.set(key, known ? { ...known, protocol: `${known.protocol}, ${r.protocol.replace(/^ICMPv6 type /, known.protocol.startsWith("ICMPv6 type") ? "" : "ICMPv6 type ")}` } : r);
  }
  return [...merged.values()];
}
