/**
 * A small model of how Calico (v3.32, iptables data plane) decides a new connection
 * against GlobalNetworkPolicies on all-interfaces host endpoints, written from Calico's
 * documentation and felix/rules (endpoints.go, static.go, dispatch.go), independently of
 * lib/policies.ts. It reads the rendered documents (parsed YAML), not the renderer's
 * objects.
 *
 * Modelled: selectors (the subset: all(), has(), !, ==, !=, starts with, &&, ||,
 * parentheses); rule matching on ipVersion, protocol, ICMP type, nets/notNets,
 * selector/notSelector (an address matches a selector when an endpoint that owns it does)
 * and ports; policy order; failsafe inbound ports (before policy, also in preDNAT);
 * the hooks, each with its direction (felix rules/static.go, dispatch.go, endpoints.go):
 * - preDNAT: only preDNAT Ingress policies, no default drop;
 * - input (to the host itself): non-preDNAT Ingress policies; if any selects the host and
 *   none decides, drop (end of tier); if none selects it, the auto host endpoint's
 *   projectcalico-default-allow profile allows;
 * - output (sent by the host itself, not to a local pod: filterOutputChain skips those):
 *   failsafe outbound ports, then non-preDNAT Egress policies, defaults as for input;
 * - forwardIn: applyOnForward Ingress policies of the host endpoint the packet *arrives*
 *   on (cali-from-hep-forward → cali-fhfw-*);
 * - forwardOut: applyOnForward Egress policies of the host endpoint it *leaves* by
 *   (cali-to-hep-forward → cali-thfw-*). Each forward direction allows when no policy of
 *   that direction selects the host endpoint and drops when some does and none decides
 *   (docs: reference/host-endpoints/forwarded). No failsafe ports on forward chains.
 * Which side of a forwarded packet is a host endpoint: the uplink always. A pod's cali
 * interface is one only for an all-interfaces (`*`) host endpoint, which felix makes the
 * default of both forward dispatch chains with no exclusion of workload interfaces
 * (dispatch.go hostDispatchChains; felix fv hostendpoints_test.go: traffic from a pod out
 * of eth0 passes "AOF ingress policy on the all-interfaces HEP" and "AOF egress policy
 * on the all-interfaces HEP"). `hepInterfaces: "named"` models a host endpoint on the
 * uplink only, where pod traffic meets just the Egress side on the way out and just the
 * Ingress side on the way in.
 * A pod's packet to its own node never meets host endpoint policy: felix sends what
 * arrives from a workload interface to cali-wl-to-host (rules/static.go filterInputChain,
 * a goto), which applies the pod's own egress policy and then DefaultEndpointToHostAction,
 * ACCEPT as tigera/operator sets it (render/node.go); docs/security.md lists this as a
 * residual risk.
 * Not modelled: conntrack (every packet here starts a connection), workload policies
 * (none are rendered; the namespace profile allows), tiers other than default.
 */
import { Address4, Address6 } from "ip-address";

// ---------------------------------------------------------------------------
// Selectors
// ---------------------------------------------------------------------------

type Labels = Readonly<Record<string, string>>;
type Sel = (labels: Labels) => boolean;

export function parseSelector(text: string): Sel {
  const tokens = text.match(/\s*(\(|\)|&&|\|\||!=|==|!|'[^']*'|"[^"]*"|[A-Za-z0-9_./-]+)/g)?.map((t) => t.trim()) ?? [];
  if (tokens.join("").replace(/\s/g, "") !== text.replace(/\s/g, "")) throw new Error(`selector has characters outside the modelled subset: ${text}`);
  let i = 0;
  const peek = () => tokens[i];
  const next = () => tokens[i++];
  const expect = (t: string) => {
    if (next() !== t) throw new Error(`selector ${text}: expected ${t} at token ${i}`);
  };
  const literal = () => {
    const t = next();
    if (!t || !/^['"]/.test(t)) throw new Error(`selector ${text}: expected a string literal`);
    return t.slice(1, -1);
  };
  function or(): Sel {
    let left = and();
    while (peek() === "||") {
      next();
      const l = left;
      const r = and();
      left = (x) => l(x) || r(x);
    }
    return left;
  }
  function and(): Sel {
    let left = unary();
    while (peek() === "&&") {
      next();
      const l = left;
      const r = unary();
      left = (x) => l(x) && r(x);
    }
    return left;
  }
  function unary(): Sel {
    if (peek() === "!") {
      next();
      const inner = unary();
      return (x) => !inner(x);
    }
    return primary();
  }
  function primary(): Sel {
    const t = next();
    if (t === "(") {
      const inner = or();
      expect(")");
      return inner;
    }
    if (t === "all") {
      expect("(");
      expect(")");
      return () => true;
    }
    if (t === "has") {
      expect("(");
      const key = next();
      expect(")");
      return (x) => key in x;
    }
    if (!t || !/^[A-Za-z0-9_./-]+$/.test(t)) throw new Error(`selector ${text}: unexpected ${t}`);
    const key = t;
    const op = next();
    if (op === "==") {
      const v = literal();
      return (x) => x[key] === v;
    }
    if (op === "!=") {
      const v = literal();
      return (x) => x[key] !== v;
    }
    if (op === "starts" && next() === "with") {
      const v = literal();
      return (x) => key in x && x[key].startsWith(v);
    }
    throw new Error(`selector ${text}: unsupported operator ${op}`);
  }
  const sel = or();
  if (i !== tokens.length) throw new Error(`selector ${text}: trailing tokens`);
  return sel;
}

// ---------------------------------------------------------------------------
// Addresses
// ---------------------------------------------------------------------------

export function ipVersion(address: string): 4 | 6 {
  return address.includes(":") ? 6 : 4;
}

export function inNet(address: string, net: string): boolean {
  if (ipVersion(address) !== ipVersion(net.split("/")[0])) return false;
  return ipVersion(address) === 6
    ? new Address6(address).isInSubnet(new Address6(net))
    : new Address4(address).isInSubnet(new Address4(net));
}

// ---------------------------------------------------------------------------
// The cluster: endpoints and the packets between them
// ---------------------------------------------------------------------------

export interface Endpoint {
  readonly name: string;
  readonly kind: "host" | "pod";
  readonly addresses: readonly string[];
  readonly labels: Labels;
  /** For pods: the host they run on. */
  readonly node?: string;
  /** For hosts: further local addresses that are not in the host endpoint (the `kubernetes` ClusterIP on lo). */
  readonly localOnly?: readonly string[];
}

export type Protocol = "TCP" | "UDP" | "SCTP" | "ICMPv6";

export interface Packet {
  readonly src: string;
  readonly dst: string;
  readonly protocol: Protocol;
  readonly port?: number;
  readonly icmpType?: number;
}

export type Verdict = "allow" | "deny";

export type Hook = "preDNAT" | "input" | "output" | "forwardIn" | "forwardOut";

export interface ModelOptions {
  /**
   * "all": kube-controllers' automatic host endpoints (`interfaceName: "*"`), what the
   * cluster runs; "named": host endpoints on the uplink only (cali* never a host endpoint).
   * @default "all"
   */
  readonly hepInterfaces?: "all" | "named";
  /**
   * Felix's DefaultEndpointToHostAction: the verdict on a pod's packet to its own node
   * (after the pod's own egress policy, which allows here). "ACCEPT" is what
   * tigera/operator configures; Calico's own default without the operator is "DROP".
   * @default "ACCEPT"
   */
  readonly endpointToHostAction?: "ACCEPT" | "DROP";
}

type FailsafeEntry = { protocol: string; port: number; net?: string };

type Doc = Record<string, any>;

export class PolicyModel {
  private readonly policies: Doc[];
  private readonly failsafe: FailsafeEntry[];
  private readonly failsafeOut: FailsafeEntry[];
  private readonly allInterfaces: boolean;
  private readonly endpointToHost: Verdict;

  constructor(
    docs: readonly Doc[],
    readonly endpoints: readonly Endpoint[],
    options: ModelOptions = {},
  ) {
    this.allInterfaces = (options.hepInterfaces ?? "all") === "all";
    this.endpointToHost = (options.endpointToHostAction ?? "ACCEPT") === "ACCEPT" ? "allow" : "deny";
    this.policies = docs.filter((d) => d.kind === "GlobalNetworkPolicy");
    const felix = docs.find((d) => d.kind === "FelixConfiguration" && d.metadata.name === "default");
    // Calico's documented default when the field is unset.
    this.failsafe = felix?.spec?.failsafeInboundHostPorts ?? [
      { protocol: "TCP", port: 22 },
      { protocol: "UDP", port: 68 },
      { protocol: "TCP", port: 179 },
      { protocol: "TCP", port: 2379 },
      { protocol: "TCP", port: 2380 },
      { protocol: "TCP", port: 5473 },
      { protocol: "TCP", port: 6443 },
      { protocol: "TCP", port: 6666 },
      { protocol: "TCP", port: 6667 },
    ];
    // Calico's documented default failsafeOutboundHostPorts (the net matches the destination).
    this.failsafeOut = felix?.spec?.failsafeOutboundHostPorts ?? [
      { protocol: "UDP", port: 53 },
      { protocol: "UDP", port: 67 },
      { protocol: "TCP", port: 179 },
      { protocol: "TCP", port: 2379 },
      { protocol: "TCP", port: 2380 },
      { protocol: "TCP", port: 5473 },
      { protocol: "TCP", port: 6443 },
      { protocol: "TCP", port: 6666 },
      { protocol: "TCP", port: 6667 },
    ];
    for (const p of this.policies) {
      parseSelector(p.spec.selector);
      for (const r of [...(p.spec.ingress ?? []), ...(p.spec.egress ?? [])]) for (const e of [r.source, r.destination]) for (const s of [e?.selector, e?.notSelector]) if (s) parseSelector(s);
    }
  }

  endpoint(name: string): Endpoint {
    const e = this.endpoints.find((x) => x.name === name);
    if (!e) throw new Error(`no endpoint ${name}`);
    return e;
  }

  /** Does `address` belong to an endpoint whose labels match `selector`? (Calico's selector IP sets.) */
  private addressMatches(address: string, selector: string): boolean {
    const sel = parseSelector(selector);
    return this.endpoints.some((e) => e.addresses.includes(address) && sel(e.labels));
  }

  private entityMatches(entity: Doc | undefined, address: string, port: number | undefined): boolean {
    if (!entity) return true;
    if (entity.nets && !entity.nets.some((n: string) => inNet(address, n))) return false;
    if (entity.notNets && entity.notNets.some((n: string) => inNet(address, n))) return false;
    if (entity.selector && !this.addressMatches(address, entity.selector)) return false;
    if (entity.notSelector && this.addressMatches(address, entity.notSelector)) return false;
    if (entity.ports) {
      if (port === undefined) return false;
      const hit = entity.ports.some((p: number | string) => {
        if (typeof p === "number") return p === port;
        const [lo, hi] = p.split(":").map(Number);
        return port >= lo && port <= (hi ?? lo);
      });
      if (!hit) return false;
    }
    return true;
  }

  private ruleMatches(rule: Doc, pkt: Packet): boolean {
    const v = ipVersion(pkt.src);
    if (rule.ipVersion && rule.ipVersion !== v) return false;
    // A rule with CIDRs of one family is only rendered into that family's tables.
    const nets = [rule.source?.nets, rule.source?.notNets, rule.destination?.nets, rule.destination?.notNets].flat().filter(Boolean) as string[];
    if (nets.some((n) => ipVersion(n.split("/")[0]) !== v)) return false;
    if (rule.protocol && rule.protocol !== pkt.protocol) return false;
    if (rule.icmp && rule.icmp.type !== pkt.icmpType) return false;
    return this.entityMatches(rule.source, pkt.src, undefined) && this.entityMatches(rule.destination, pkt.dst, pkt.port);
  }

  private failsafeAllows(entries: readonly FailsafeEntry[], pkt: Packet, peer: string): boolean {
    return entries.some((f) => (f.protocol ?? "TCP") === pkt.protocol && f.port === pkt.port && (!f.net || inNet(peer, f.net)));
  }

  /** One hook on the host endpoint of `host`: "allow", "deny", or undefined (preDNAT: no decision). */
  hook(kind: Hook, host: Endpoint, pkt: Packet): Verdict | undefined {
    if (host.kind !== "host") throw new Error(`${host.name} is not a host`);
    if ((kind === "preDNAT" || kind === "input") && this.failsafeAllows(this.failsafe, pkt, pkt.src)) return "allow";
    if (kind === "output" && this.failsafeAllows(this.failsafeOut, pkt, pkt.dst)) return "allow";
    const direction = kind === "output" || kind === "forwardOut" ? "Egress" : "Ingress";
    const selected = this.policies
      .filter((p) => parseSelector(p.spec.selector)(host.labels))
      .filter((p) => (p.spec.types ?? []).includes(direction))
      .filter((p) =>
        kind === "preDNAT"
          ? p.spec.preDNAT
          : kind === "forwardIn" || kind === "forwardOut"
            ? p.spec.applyOnForward && !p.spec.preDNAT
            : !p.spec.preDNAT && !p.spec.doNotTrack,
      )
      .sort((a, b) => (a.spec.order ?? Infinity) - (b.spec.order ?? Infinity) || a.metadata.name.localeCompare(b.metadata.name));
    for (const p of selected) {
      for (const rule of (direction === "Egress" ? p.spec.egress : p.spec.ingress) ?? []) {
        if (this.ruleMatches(rule, pkt)) return rule.action === "Allow" ? "allow" : "deny";
      }
    }
    if (kind === "preDNAT") return undefined;
    // End of tier drop when some policy applied; otherwise the default-allow profile
    // (input, output) or the forward default (forwardIn, forwardOut) lets it through.
    return selected.length > 0 ? "deny" : "allow";
  }

  /**
   * A packet `host` forwards: the Ingress side of where it arrives, then the Egress side of
   * where it leaves. A pod's interface is a host endpoint side only with all-interfaces
   * host endpoints.
   */
  forward(host: Endpoint, pkt: Packet, sides: { fromLocalPod: boolean; toLocalPod: boolean }): Verdict {
    if ((!sides.fromLocalPod || this.allInterfaces) && this.hook("forwardIn", host, pkt) === "deny") return "deny";
    if ((!sides.toLocalPod || this.allInterfaces) && this.hook("forwardOut", host, pkt) === "deny") return "deny";
    return "allow";
  }

  private hostOwning(address: string): Endpoint | undefined {
    return this.endpoints.find((e) => e.kind === "host" && (e.addresses.includes(address) || (e.localOnly ?? []).includes(address)));
  }

  private podOwning(address: string): Endpoint | undefined {
    return this.endpoints.find((e) => e.kind === "pod" && e.addresses.includes(address));
  }

  /**
   * A packet arriving from the network at host `ingressName`, addressed to pkt.dst.
   * `dnat` is what kube-proxy makes of it (a Service address or NodePort), and `snat`
   * whether kube-proxy also masquerades it to the ingress node's address
   * (externalTrafficPolicy: Cluster with the endpoint on another node).
   */
  arrive(ingressName: string, pkt: Packet, dnat?: { to: string; port?: number; snat?: boolean }): Verdict {
    const ingress = this.endpoint(ingressName);
    if (this.hook("preDNAT", ingress, pkt) === "deny") return "deny";
    const after: Packet = dnat ? { ...pkt, dst: dnat.to, port: dnat.port ?? pkt.port } : pkt;
    if ([...ingress.addresses, ...(ingress.localOnly ?? [])].includes(after.dst)) return this.hook("input", ingress, after)!;
    // Forwarded by the ingress node.
    const pod = this.podOwning(after.dst);
    const local = pod?.node === ingress.name;
    if (this.forward(ingress, after, { fromLocalPod: false, toLocalPod: local }) === "deny") return "deny";
    if (local) return "allow"; // a local pod: its own policy is the namespace profile (allow)
    const next = pod ? this.endpoint(pod.node!) : this.hostOwning(after.dst);
    if (!next) return "allow"; // leaves the cluster
    const again: Packet = dnat?.snat ? { ...after, src: ingress.addresses.find((a) => ipVersion(a) === 6)! } : after;
    if (!pod) return this.arrive(next.name, again);
    if (this.hook("preDNAT", next, again) === "deny") return "deny";
    return this.forward(next, again, { fromLocalPod: false, toLocalPod: true });
  }

  /** A packet from a pod (forwarded by its node), optionally DNATed by kube-proxy on that node. */
  fromPod(podName: string, pkt: Omit<Packet, "src">, dnat?: { to: string; port?: number }): Verdict {
    const pod = this.endpoint(podName);
    const node = this.endpoint(pod.node!);
    const sent: Packet = { ...pkt, src: pod.addresses[0] };
    const after: Packet = dnat ? { ...sent, dst: dnat.to, port: dnat.port ?? sent.port } : sent;
    const targetPod = this.podOwning(after.dst);
    const targetHost = this.hostOwning(after.dst);
    // To its own node: INPUT from a workload interface, cali-wl-to-host, never host endpoint policy.
    if (targetHost?.name === node.name) return this.endpointToHost;
    const local = targetPod?.node === node.name;
    if (this.forward(node, after, { fromLocalPod: true, toLocalPod: local }) === "deny") return "deny";
    if (targetPod) {
      if (local) return "allow";
      const nextHost = this.endpoint(targetPod.node!);
      if (this.hook("preDNAT", nextHost, after) === "deny") return "deny";
      return this.forward(nextHost, after, { fromLocalPod: false, toLocalPod: true });
    }
    if (targetHost) return this.arrive(targetHost.name, after);
    return "allow"; // leaves the cluster
  }

  /**
   * A packet a host process sends: the output hook (host endpoint Egress policy, normal and
   * applyOnForward alike), except to its own pods (felix filterOutputChain never applies
   * host endpoint policy to those) and to itself (lo).
   */
  fromHost(hostName: string, pkt: Omit<Packet, "src">): Verdict {
    const host = this.endpoint(hostName);
    const src = host.addresses.find((a) => ipVersion(a) === ipVersion(pkt.dst));
    if (!src) throw new Error(`${hostName} has no IPv${ipVersion(pkt.dst)} address`);
    const sent: Packet = { ...pkt, src };
    const targetHost = this.hostOwning(sent.dst);
    const targetPod = this.podOwning(sent.dst);
    if (targetHost?.name === host.name || targetPod?.node === host.name) return "allow";
    if (this.hook("output", host, sent) === "deny") return "deny";
    if (targetHost) return this.arrive(targetHost.name, sent);
    if (targetPod) {
      const nextHost = this.endpoint(targetPod.node!);
      if (this.hook("preDNAT", nextHost, sent) === "deny") return "deny";
      return this.forward(nextHost, sent, { fromLocalPod: false, toLocalPod: true });
    }
    return "allow"; // leaves the cluster
  }
}
