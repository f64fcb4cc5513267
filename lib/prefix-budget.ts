/**
 * How many prefixes one node announces to the Metal routers, and whether that fits
 * under the routers' per-server limit.
 *
 * Equinix Metal accepts at most 10 prefixes per server session by default (the
 * project's `max_prefix`); one more and the router tears the session down, which
 * withdraws every route the node announced (docs/facts.md: Mirantis docs on
 * Equinix, `max_prefix` of the project BGP config). So the budget is checked at synth
 * time, where it depends on settings, and docs/bgp-fabric.md shows the table.
 *
 * Each row is also a cap that holds at run time, whatever users create (lib/calico.ts):
 * IPAM gives a node at most `maxPodBlocksPerNode` blocks (IPAMConfig maxBlocksPerHost,
 * strictAffinity: no borrowed /128s), the export filter passes no longer pod or Service
 * prefix, and no external /128 outside the Local pool, which holds exactly
 * LOCAL_SERVICE_ROUTES addresses.
 *
 * Pure: no cdktf import.
 */

/** Metal's default `max_prefix` per server BGP session. */
export const METAL_MAX_PREFIXES = 10;

/** Kubernetes' default kubelet `maxPods`; the cluster keeps it. */
export const MAX_PODS_PER_NODE = 110;

/** Calico accepts IPv6 IPAM block sizes from /116 to /128 (Calico IPPool docs; operator pkg/controller/ippool/validation.go). */
export const MIN_IPV6_BLOCK_PREFIX = 116;
export const MAX_IPV6_BLOCK_PREFIX = 128;

export class PrefixBudgetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PrefixBudgetError";
  }
}

export interface PrefixBudgetInput {
  /** Calico IPAM block prefix length for pods (/116 to /128). */
  readonly blockPrefixLength: number;
  /** kubelet maxPods. @default MAX_PODS_PER_NODE */
  readonly maxPodsPerNode?: number;
  /**
   * Extra pod blocks a node may hold beyond what maxPods needs: a node that briefly
   * holds a second block while IPAM releases its first (pod churn after a block filled
   * up, or a re-registered node whose old affinity is not yet released).
   * @default 1
   */
  readonly podBlockHeadroom?: number;
  /** `externalTrafficPolicy: Local` Service addresses one node may announce as /128s. */
  readonly localServiceRoutes: number;
  /** The routers' limit. @default METAL_MAX_PREFIXES */
  readonly maxPrefixes?: number;
}

export interface PrefixBudgetRow {
  /** What is announced. */
  readonly what: string;
  /** Prefix length(s) announced, e.g. "/120". */
  readonly prefixLength: string;
  readonly count: number;
  /** Why this many. */
  readonly why: string;
}

export interface PrefixBudget {
  readonly rows: readonly PrefixBudgetRow[];
  readonly total: number;
  readonly maxPrefixes: number;
  /** The largest `localServiceRoutes` that still fits. */
  readonly maxLocalServiceRoutes: number;
  readonly fits: boolean;
}

function wholeNumber(value: number, name: string, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new PrefixBudgetError(`${name}=${value} is not valid: must be a whole number from ${min}${max === Number.MAX_SAFE_INTEGER ? " up" : ` to ${max}`}`);
  }
}

/** Pod blocks one node needs for `maxPods` addresses with blocks of `/blockPrefixLength`. */
export function podBlocksNeeded(blockPrefixLength: number, maxPods: number): number {
  const addressesPerBlock = 2 ** (128 - blockPrefixLength);
  return Math.ceil(maxPods / addressesPerBlock);
}

/** Pod blocks one node may hold: what maxPods needs plus the headroom (IPAMConfig maxBlocksPerHost). */
export function maxPodBlocksPerNode(blockPrefixLength: number, maxPods = MAX_PODS_PER_NODE, headroom = 1): number {
  return podBlocksNeeded(blockPrefixLength, maxPods) + headroom;
}

/** Computes the per-node announcement budget. Throws PrefixBudgetError only for malformed input; check `fits`. */
export function prefixBudget(input: PrefixBudgetInput): PrefixBudget {
  const maxPods = input.maxPodsPerNode ?? MAX_PODS_PER_NODE;
  const headroom = input.podBlockHeadroom ?? 1;
  const maxPrefixes = input.maxPrefixes ?? METAL_MAX_PREFIXES;
  wholeNumber(input.blockPrefixLength, "blockPrefixLength", MIN_IPV6_BLOCK_PREFIX, MAX_IPV6_BLOCK_PREFIX);
  wholeNumber(maxPods, "maxPodsPerNode", 1);
  wholeNumber(headroom, "podBlockHeadroom", 0);
  wholeNumber(input.localServiceRoutes, "localServiceRoutes", 0);
  wholeNumber(maxPrefixes, "maxPrefixes", 1);

  const blocks = podBlocksNeeded(input.blockPrefixLength, maxPods);
  const rows: PrefixBudgetRow[] = [
    {
      what: "pod blocks (Calico IPAM blocks affine to the node)",
      prefixLength: `/${input.blockPrefixLength}`,
      count: maxPodBlocksPerNode(input.blockPrefixLength, maxPods, headroom),
      why: `${blocks} block${blocks === 1 ? "" : "s"} of ${2 ** (128 - input.blockPrefixLength)} addresses for ${maxPods} pods, plus ${headroom} spare for IPAM churn; IPAM's maxBlocksPerHost, no borrowing (strictAffinity)`,
    },
    { what: "Service ClusterIP range (serviceClusterIPs)", prefixLength: "/108", count: 1, why: "aggregate, announced by every node (ECMP)" },
    {
      what: "external/LoadBalancer range (serviceExternalIPs = serviceLoadBalancerIPs)",
      prefixLength: "/112",
      count: 1,
      why: "aggregate, announced by every node (ECMP); both lists hold the same range, which is one route",
    },
    {
      what: "externalTrafficPolicy: Local addresses with an endpoint on the node",
      prefixLength: "/128",
      count: input.localServiceRoutes,
      why: "LOCAL_SERVICE_ROUTES = the size of the Local pool, the only external /128s the export filter passes; their ClusterIP /128s are filtered, the /108 covers them",
    },
  ];
  const fixed = rows.slice(0, 3).reduce((sum, r) => sum + r.count, 0);
  const total = fixed + input.localServiceRoutes;
  return { rows, total, maxPrefixes, maxLocalServiceRoutes: Math.max(0, maxPrefixes - fixed), fits: total <= maxPrefixes };
}

/**
 * Like prefixBudget, but throws PrefixBudgetError naming LOCAL_SERVICE_ROUTES, its
 * value and what is valid when the budget exceeds the limit, or when the value is not
 * 0 or a power of two (the Local pool is one CIDR of exactly that many addresses).
 */
export function checkPrefixBudget(input: PrefixBudgetInput): PrefixBudget {
  const budget = prefixBudget(input);
  if (!budget.fits) {
    const parts = budget.rows.map((r) => `${r.count} x ${r.prefixLength}`).join(" + ");
    throw new PrefixBudgetError(
      `LOCAL_SERVICE_ROUTES=${input.localServiceRoutes} is too many: each node would announce ${parts} = ${budget.total} prefixes, ` +
        `more than the ${budget.maxPrefixes} Metal's routers accept per server (max_prefix; one more tears the session down). ` +
        `Use at most ${budget.maxLocalServiceRoutes}.`,
    );
  }
  const n = input.localServiceRoutes;
  if (n > 0 && (n & (n - 1)) !== 0) {
    const valid = [0, ...[1, 2, 4, 8, 16, 32].filter((p) => p <= budget.maxLocalServiceRoutes)];
    throw new PrefixBudgetError(
      `LOCAL_SERVICE_ROUTES=${n} is not a size an IP pool can have: Local Service addresses come from one Calico pool, a CIDR, ` +
        `so use ${valid.slice(0, -1).join(", ")} or ${valid[valid.length - 1]}.`,
    );
  }
  return budget;
}

/** The budget as a Markdown table (docs/bgp-fabric.md, README). */
export function prefixBudgetMarkdown(budget: PrefixBudget): string {
  const lines = ["| Announced | Length | Prefixes | Why |", "|---|---|---|---|"];
  for (const r of budget.rows) lines.push(`| ${r.what} | ${r.prefixLength} | ${r.count} | ${r.why} |`);
  lines.push(`| **total** (limit ${budget.maxPrefixes}) | | **${budget.total}** | |`);
  return lines.join("\n");
}
