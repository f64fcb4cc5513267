/**
 * A model of what calico-node's BIRD exports to one BGP peer, from the applied objects,
 * after Calico v3.32.0's confd (bgp_processor.go buildExportFilter, bird6_ipam.cfg and
 * bird6_aggr.cfg templates):
 * 1. the peer's BGPFilter exportV6 rules, first match decides (a rule's accept/reject
 *    only fires inside its condition; no match falls through);
 * 2. Calico's own calico_export_to_bgp_peers: reject routes of pools with
 *    disableBGPExport; for each block with confirmed affinity to this node accept the
 *    block and reject anything longer inside it; accept the "static routes" (the
 *    BGPConfiguration's Service ranges and the Services' /128s); accept anything inside a
 *    pool (borrowed /128s);
 * 3. reject.
 * Written from the templates for these tests; it is not the code under test.
 */
import { Address6 } from "ip-address";

export type Decision = "Accept" | "Reject";

export interface FilterRule {
  readonly action: Decision;
  readonly matchOperator?: "Equal" | "NotEqual" | "In" | "NotIn";
  readonly cidr?: string;
  readonly prefixLength?: { readonly min?: number; readonly max?: number };
}

/** What BIRD holds on one node, and what Calico knows about it. */
export interface NodeRouteState {
  /** Blocks with confirmed affinity to this node (their blackhole routes are in BIRD). */
  readonly affineBlocks: readonly string[];
  /** Workload /128 routes of pods on this node (kernel routes learned by BIRD). */
  readonly workloadRoutes: readonly string[];
  /** Calico's static routes for Services (confd routes.go): ranges and /128s. */
  readonly serviceRoutes: readonly string[];
}

export interface CalicoObjects {
  readonly exportRules: readonly FilterRule[];
  readonly pools: readonly { readonly cidr: string; readonly disableBGPExport?: boolean }[];
}

const parse = (cidr: string) => new Address6(cidr);

function inside(route: Address6, cidr: Address6): boolean {
  return route.subnetMask >= cidr.subnetMask && route.isInSubnet(cidr);
}

function ruleMatches(rule: FilterRule, route: Address6): boolean {
  if (!rule.cidr) return true;
  const c = parse(rule.cidr);
  const equal = route.subnetMask === c.subnetMask && inside(route, c);
  const min = rule.prefixLength?.min ?? c.subnetMask;
  const max = rule.prefixLength?.max ?? 128;
  const within = inside(route, c) && route.subnetMask >= min && route.subnetMask <= max;
  switch (rule.matchOperator) {
    case "Equal":
      return equal;
    case "NotEqual":
      return !equal;
    case "In":
      return within;
    case "NotIn":
      return !within;
    default:
      throw new Error(`rule without matchOperator: ${JSON.stringify(rule)}`);
  }
}

/** Calico's own decision for a route, when no filter rule matched. */
function calicoDecision(route: Address6, state: NodeRouteState, objects: CalicoObjects): Decision {
  for (const pool of objects.pools) if (pool.disableBGPExport && inside(route, parse(pool.cidr))) return "Reject";
  for (const block of state.affineBlocks.map(parse)) {
    if (route.subnetMask === block.subnetMask && inside(route, block)) return "Accept";
    if (inside(route, block)) return "Reject";
  }
  if (state.serviceRoutes.some((r) => parse(r).subnetMask === route.subnetMask && inside(route, parse(r)))) return "Accept";
  if (objects.pools.some((p) => inside(route, parse(p.cidr)))) return "Accept";
  return "Reject";
}

export function exportDecision(route: string, state: NodeRouteState, objects: CalicoObjects): Decision {
  const r = parse(route);
  for (const rule of objects.exportRules) if (ruleMatches(rule, r)) return rule.action;
  return calicoDecision(r, state, objects);
}

/** Every route this node announces to the peer, in canonical form. */
export function announcements(state: NodeRouteState, objects: CalicoObjects, otherRoutes: readonly string[] = []): string[] {
  const all = [...state.affineBlocks, ...state.workloadRoutes, ...state.serviceRoutes, ...otherRoutes];
  const unique = [...new Set(all.map((r) => `${parse(r).correctForm()}/${parse(r).subnetMask}`))];
  return unique.filter((r) => exportDecision(r, state, objects) === "Accept");
}
