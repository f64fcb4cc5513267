/**
 * Metal's local BGP routers, as the rehearsal runs them: Debian's `bird2` configured as
 * docs/facts.md says Metal's routers behave ("Local BGP" and the `max_prefix` lines):
 *
 * - they are fc00::e and fc00::f, AS 65530, and every node peers with both, multihop,
 *   from its public IPv6;
 * - the session carries the project's MD5 password when the project sets one;
 * - they import only more-specifics of the project's /56 (a node's /64s and /128s), never
 *   the /56 itself nor anything outside it;
 * - they accept at most 10 prefixes per server, and exceeding that tears the session down;
 * - they send nothing back to the nodes;
 * - several servers may announce the same prefix and traffic is spread across them (ECMP).
 *
 * The configuration is rendered from the same data the Metal emulator serves in each
 * device's metadata as `bgp_neighbors[]` (facts.md "Metadata JSON"), so the routers and
 * the nodes read one source. Pure: typed input, typed output, no I/O; the namespaces and
 * processes that run it are in rehearsal/metal-router-namespaces.ts.
 */
import { isIPv6 } from "node:net";

/** The two IPv6 peers every node has in current Metal sites (facts.md "Local BGP"). */
export const METAL_ROUTER_ADDRESSES = ["fc00::e", "fc00::f"] as const;
export type MetalRouterAddress = (typeof METAL_ROUTER_ADDRESSES)[number];

/** Metal's routers' AS (facts.md "Local BGP"). */
export const METAL_ROUTER_AS = 65530;

/**
 * The per-session prefix limit (facts.md: `max_prefix`, 10 by default). A project can have
 * it raised through support; the design plans within the default (lib/prefix-budget.ts).
 */
export const METAL_MAX_PREFIX = 10;

/**
 * The routers' BGP hold time: the rehearsal's choice, since Metal does not document its
 * own (docs/bgp-fabric.md, "A node that vanishes"). BGP uses the smaller of the two
 * sides' offers (RFC 4271 4.2), and Calico's BIRD offers BIRD's default of 240 s, so this
 * decides how long a node that vanishes without closing its sessions (links cut, power
 * lost) stays on the routers. 30 s keeps that test short while leaving each side three
 * keepalives (a third of the hold time, BIRD's default) to miss before a busy machine
 * flaps a session; bird2's own default would be 240 s.
 */
export const REHEARSAL_HOLD_TIME_SECONDS = 30;

/**
 * A prefix in a neighbour's `routes_in` (what the routers accept from the node) or
 * `routes_out` (what they send it). `exact: false` accepts the prefix's more-specifics
 * (not the prefix itself: facts.md, only more-specifics of the /56).
 */
export interface MetalRoute {
  readonly route: string;
  readonly exact: boolean;
}

/** One item of a device's metadata `bgp_neighbors[]`, field names as Metal serves them. */
export interface MetalBgpNeighbor {
  readonly address_family: 4 | 6;
  /** The project's AS (65000 unless the project's BGP config says otherwise). */
  readonly customer_as: number;
  /** The node's address the session comes from: its public IPv6 for family 6. */
  readonly customer_ip: string;
  readonly md5_enabled: boolean;
  /** The project's BGP password; empty or null when md5_enabled is false. */
  readonly md5_password: string | null;
  readonly multihop: boolean;
  readonly peer_as: number;
  readonly peer_ips: readonly string[];
  /**
   * The prefixes the routers accept from this node; the emulator serves the project's
   * /56, not exact. Empty: more-specifics of the project's /56 (facts.md).
   */
  readonly routes_in: readonly MetalRoute[];
  /** What the routers send the node. Metal's local BGP sends nothing (facts.md); not rendered. */
  readonly routes_out?: readonly MetalRoute[];
}

export interface MetalRouterConfigInput {
  /** Which of the two routers this is. */
  readonly routerAddress: MetalRouterAddress;
  /** The project's public IPv6 /56 in this metro, e.g. 2001:db8:500:ab00::/56. */
  readonly projectBlock: string;
  /** Every node's neighbour entries (one device's `bgp_neighbors[]` each, flattened). */
  readonly neighbors: readonly MetalBgpNeighbor[];
  /**
   * The router's link to the nodes. The nodes' /127s are the router's connected networks
   * on Metal; BIRD resolves each session's next hop (the node's address, multihop) through
   * device routes on this link, so the kernel routes name the node itself as next hop.
   */
  readonly nodeInterface: string;
  /** The hold time each session offers (RFC 4271: 0, or at least 3). @default REHEARSAL_HOLD_TIME_SECONDS */
  readonly holdTimeSeconds?: number;
}

/** One BGP session of a router: its BIRD protocol name and whom it talks to. */
export interface MetalRouterSession {
  readonly protocol: string;
  readonly neighbor: string;
  readonly neighborAs: number;
  readonly md5: boolean;
}

export interface MetalRouterConfig {
  readonly routerAddress: MetalRouterAddress;
  /** The bird2 configuration file's text (BIRD 2.0, as Debian's bird2 2.0.12 reads it). */
  readonly text: string;
  /** One entry per node session, in the order of the input. */
  readonly sessions: readonly MetalRouterSession[];
}

/** The /56 as given, once checked: an IPv6 prefix of length 56 with no bits set past it. */
function parseProjectBlock(block: string): string {
  const [address, length, ...rest] = block.split("/");
  if (rest.length > 0 || length !== "56" || !isIPv6(address)) {
    throw new Error(`projectBlock=${block} is not valid: the project's Metal block is an IPv6 /56 such as 2001:db8:500:ab00::/56`);
  }
  const words = expand(address);
  if (words.slice(4).some((w) => w !== 0) || (words[3] & 0xff) !== 0) {
    throw new Error(`projectBlock=${block} is not valid: it has bits set past /56`);
  }
  return block;
}

/** The eight 16-bit words of an IPv6 address. */
function expand(address: string): number[] {
  const [head, tail] = address.includes("::") ? address.split("::") : [address, undefined];
  const part = (s: string | undefined) => (s ? s.split(":").map((w) => parseInt(w, 16)) : []);
  const h = part(head);
  const t = part(tail);
  if (tail === undefined) return h;
  return [...h, ...new Array(8 - h.length - t.length).fill(0), ...t];
}

/**
 * The BIRD prefix-set entries of a neighbour's `routes_in`, each checked to lie in the
 * project's /56: an exact route as itself, another as its more-specifics.
 */
function importPrefixes(n: MetalBgpNeighbor, block: string): string[] {
  const blockWords = expand(block.split("/")[0]);
  const routes = n.routes_in.length > 0 ? n.routes_in : [{ route: block, exact: false }];
  return routes.map(({ route, exact }) => {
    const [address, lengthText, ...rest] = route.split("/");
    const length = Number(lengthText);
    const bad = (why: string) => new Error(`bgp_neighbors entry for ${n.customer_ip}: routes_in ${route} ${why}`);
    if (rest.length > 0 || !isIPv6(address) || !Number.isInteger(length) || length < 0 || length > 128) throw bad("is not an IPv6 prefix");
    const words = expand(address);
    // Inside the /56: at least 56 bits long, and its first 56 bits are the block's.
    if (length < 56 || words.slice(0, 3).some((w, i) => w !== blockWords[i]) || words[3] >> 8 !== blockWords[3] >> 8) throw bad(`is not inside the project's block ${block}`);
    if (exact) return route;
    if (length === 128) throw bad("has no more-specifics (a /128 that is not exact)");
    return `${route}{${length + 1},128}`;
  });
}

/** A BIRD protocol name from the node's address: `node_2001_db8_500_ab00__3`. */
export function sessionProtocolName(customerIp: string): string {
  return `node_${customerIp.toLowerCase().replace(/:/g, "_")}`;
}

/**
 * A 32-bit router ID from the router's own address (its last 32 bits: fc00::e is
 * 0.0.0.14). BGP needs one; the routers have no IPv4 of their own here.
 */
function routerId(address: MetalRouterAddress): string {
  const w = expand(address);
  return [w[6] >> 8, w[6] & 0xff, w[7] >> 8, w[7] & 0xff].join(".");
}

/**
 * BIRD's strings end at the next double quote and have no escapes (its lexer), and
 * Linux's TCP MD5 keys are at most 80 bytes: refuse what cannot be written faithfully.
 */
function md5Password(n: MetalBgpNeighbor): string | undefined {
  if (!n.md5_enabled) return undefined;
  const password = n.md5_password ?? "";
  if (password === "") throw new Error(`bgp_neighbors entry for ${n.customer_ip}: md5_enabled is true but md5_password is empty`);
  if (/["\n\r\\]/.test(password) || Buffer.byteLength(password) > 80) {
    throw new Error(`bgp_neighbors entry for ${n.customer_ip}: md5_password cannot be written for BIRD (no double quote, backslash or line break; at most 80 bytes)`);
  }
  return password;
}

function checkNeighbor(n: MetalBgpNeighbor, router: MetalRouterAddress): void {
  const where = `bgp_neighbors entry for ${n.customer_ip}`;
  if (!isIPv6(n.customer_ip)) throw new Error(`${where}: customer_ip is not an IPv6 address`);
  if (n.peer_as !== METAL_ROUTER_AS) throw new Error(`${where}: peer_as=${n.peer_as}, but Metal's routers are AS ${METAL_ROUTER_AS}`);
  if (!Number.isInteger(n.customer_as) || n.customer_as < 1 || n.customer_as > 4294967295 || n.customer_as === METAL_ROUTER_AS) {
    throw new Error(`${where}: customer_as=${n.customer_as} is not a valid AS other than ${METAL_ROUTER_AS}`);
  }
  if (!n.multihop) throw new Error(`${where}: multihop is false, but the IPv6 peers ${METAL_ROUTER_ADDRESSES.join(", ")} are not on the node's link`);
  if (!n.peer_ips.includes(router)) throw new Error(`${where}: peer_ips ${n.peer_ips.join(", ")} do not include ${router}`);
}

/**
 * The bird2 configuration of one of Metal's routers for these nodes. Entries of another
 * address family or for the other router only are left out; the same node listed twice
 * is an error (BIRD would refuse two sessions to one neighbour).
 */
export function renderMetalRouterConfig(input: MetalRouterConfigInput): MetalRouterConfig {
  const { routerAddress, nodeInterface } = input;
  if (!(METAL_ROUTER_ADDRESSES as readonly string[]).includes(routerAddress)) {
    throw new Error(`routerAddress=${routerAddress} is not one of Metal's IPv6 peers (${METAL_ROUTER_ADDRESSES.join(", ")})`);
  }
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(nodeInterface)) throw new Error(`nodeInterface=${nodeInterface} is not an interface name`);
  const block = parseProjectBlock(input.projectBlock);
  const holdTime = input.holdTimeSeconds ?? REHEARSAL_HOLD_TIME_SECONDS;
  if (!Number.isInteger(holdTime) || holdTime < 3 || holdTime > 65535) throw new Error(`holdTimeSeconds=${holdTime} is not valid: a BGP hold time is a whole number of seconds from 3 to 65535`);
  const mine = input.neighbors.filter((n) => n.address_family === 6 && n.peer_ips.includes(routerAddress));
  const seen = new Set<string>();
  const sessions: MetalRouterSession[] = [];
  const lines: string[] = [
    `# Metal's local BGP router ${routerAddress}, rendered by rehearsal/metal-routers.ts.`,
    `router id ${routerId(routerAddress)};`,
    "",
    "# Routes to the nodes themselves, on the router's connected link: BGP next hops",
    "# (the nodes' addresses, multihop) resolve through this table only.",
    "ipv6 table nodes6;",
    "",
    "protocol device {",
    "}",
    "",
    "# Learned routes go to this namespace's kernel table, where packets use them. Routes",
    "# from several nodes for one prefix are merged into one multipath route (ECMP), as",
    "# Metal spreads traffic over the servers announcing a prefix.",
    "protocol kernel {",
    "  ipv6 {",
    "    import none;",
    "    export all;",
    "  };",
    "  merge paths on;",
    "}",
    "",
  ];
  const statics: string[] = [];
  const bgp: string[] = [];
  for (const n of mine) {
    checkNeighbor(n, routerAddress);
    const key = expand(n.customer_ip).join(":");
    if (seen.has(key)) throw new Error(`bgp_neighbors: ${n.customer_ip} is listed twice for ${routerAddress}`);
    seen.add(key);
    const password = md5Password(n);
    const protocol = sessionProtocolName(n.customer_ip);
    sessions.push({ protocol, neighbor: n.customer_ip, neighborAs: n.customer_as, md5: password !== undefined });
    statics.push(`  route ${n.customer_ip}/128 via "${nodeInterface}";`);
    bgp.push(
      `protocol bgp ${protocol} {`,
      `  local as ${METAL_ROUTER_AS};`,
      `  neighbor ${n.customer_ip} as ${n.customer_as};`,
      "  multihop;",
      `  source address ${routerAddress};`,
      "  # The rehearsal's choice (Metal's is not documented); the session uses the smaller offer.",
      `  hold time ${holdTime};`,
      ...(password !== undefined ? [`  password "${password}";`] : []),
      "  ipv6 {",
      "    igp table nodes6;",
      "    gateway recursive;",
      "    # What the node may announce (its routes_in): more-specifics of the project's /56,",
      "    # not the /56 itself, nothing outside it.",
      `    import where net ~ [ ${importPrefixes(n, block).join(", ")} ];`,
      // Metal's routers tear the session down beyond max_prefix (facts.md) and it stays
      // down: `disable` keeps it down until an operator acts (here: `birdc enable`),
      // where `restart` would bring it back to be torn down again. `import limit`
      // counts the routes the filter accepts, so a node's rejected announcements (outside
      // the /56) do not count; whether Metal counts those is not documented.
      `    import limit ${METAL_MAX_PREFIX} action disable;`,
      "    # Metal's local BGP sends nothing back to the nodes (routes_out is not rendered).",
      "    export none;",
      "  };",
      "}",
      "",
    );
  }
  lines.push("protocol static nodes {", "  ipv6 { table nodes6; };", ...statics, "}", "", ...bgp);
  return { routerAddress, text: lines.join("\n"), sessions };
}
