/**
 * NAT64 on every node: the node translates its own pods' IPv6 packets to
 * `64:ff9b::/96` into IPv4 and sends them from its public IPv4 (docs/nat64.md).
 *
 * Pure: typed input, the tayga configuration and the nftables ruleset as text; no
 * cdktf import. The translator is tayga (userspace, a TUN device; Debian's package,
 * pinned in lib/versions.ts): Jool is a kernel module that Flatcar's stock kernel
 * cannot load. tayga is stateless 1:1 (RFC 7915): it maps each pod address to an
 * address of a node-local IPv4 pool, and nftables masquerades the pool to the node's
 * public IPv4 (stateful NAT64, RFC 6146, in two steps).
 *
 * What never goes through the translator: the metadata service and every non-global
 * IPv4 range (NAT64_BLOCKED_IPV4), rejected by nftables where tayga's IPv4 is forwarded,
 * so it holds without Calico; the host policies deny the same (lib/policies.ts).
 * 64:ff9b::/96 is a route to the TUN device on each node, never announced over BGP:
 * Calico exports only pod blocks and Service routes (lib/calico.ts, docs/nat64.md).
 */
import { Address4, Address6 } from "ip-address";

/** The Well-Known Prefix (RFC 6052 2.1): what DNS64 synthesizes and the node routes to its translator. */
export const NAT64_PREFIX = "64:ff9b::/96";

/**
 * The node-local IPv4 pool tayga maps pod addresses into, masqueraded to the node's
 * public IPv4 before it leaves. From the shared address space (RFC 6598), which no
 * Internet destination uses. A /22 holds 1021 mappings; a node's pods use at most 2
 * /120 pod blocks (512 addresses, lib/prefix-budget.ts), and a mapping lives 2 h 4 min
 * after its last packet (tayga.conf(5)), so the pool cannot run out.
 */
export const NAT64_POOL = "100.64.0.0/22";
/** tayga's own IPv4 address (source of the ICMPv4 errors it makes); taken out of the pool by tayga. */
export const NAT64_TRANSLATOR_IPV4 = "100.64.0.1";
/** The TUN device tayga exchanges packets through. */
export const NAT64_DEVICE = "nat64";
/** Where tayga keeps its dynamic map across restarts (`data-dir`). */
export const NAT64_DATA_DIR = "/var/lib/tayga";

/**
 * metadata.platformequinix.com / metadata.packet.net: serves the node's user data,
 * bootstrap secrets included, to whoever asks from the node (docs/facts.md).
 */
export const METADATA_SERVICE_IPV4 = "192.80.8.124";

/** An IPv4 range that pods must never reach through the translator, and why. */
export interface BlockedIpv4 {
  readonly net: string;
  readonly why: string;
}

/**
 * Never translated: the metadata service (it serves the node's user data, secrets
 * included, to any process on the node: docs/facts.md) and the non-global ranges a
 * pod could otherwise reach from the node's position (RFC 6890). tayga itself also
 * refuses non-global addresses in the Well-Known Prefix (RFC 6052 3.1), but not the
 * metadata service, which is a public address.
 */
export const NAT64_BLOCKED_IPV4: readonly BlockedIpv4[] = [
  { net: `${METADATA_SERVICE_IPV4}/32`, why: "Equinix Metal metadata service (the node's user data)" },
  { net: "10.0.0.0/8", why: "private (RFC 1918): Metal's private network and the BGP sessions' IPv4 side" },
  { net: "172.16.0.0/12", why: "private (RFC 1918)" },
  { net: "192.168.0.0/16", why: "private (RFC 1918)" },
  { net: "169.254.0.0/16", why: "link-local (RFC 3927): Metal's IPv4 BGP peers 169.254.255.1/2" },
  { net: "127.0.0.0/8", why: "the node's loopback" },
  { net: "100.64.0.0/10", why: "shared address space (RFC 6598): holds the translator's own pool" },
  { net: "0.0.0.0/8", why: "\"this network\" (RFC 1122)" },
];

/**
 * The IPv6 form of an IPv4 range behind the /96 prefix (RFC 6052 2.2): the IPv4
 * address in the last 32 bits, the length plus 96. `10.0.0.0/8` → `64:ff9b::a00:0/104`.
 */
export function nat64Form(ipv4Cidr: string, prefix: string = NAT64_PREFIX): string {
  const [prefixAddress, prefixLength] = prefix.split("/");
  if (prefixLength !== "96") throw new Error(`nat64Form: only /96 prefixes are supported, not ${prefix}`);
  const v4 = new Address4(ipv4Cidr);
  const [a, b, c, d] = v4.toArray();
  const hex = (hi: number, lo: number) => ((hi << 8) | lo).toString(16);
  const base = new Address6(prefixAddress).canonicalForm().split(":").slice(0, 6).join(":");
  return `${new Address6(`${base}:${hex(a, b)}:${hex(c, d)}`).correctForm()}/${96 + v4.subnetMask}`;
}

export interface Nat64Input {
  /**
   * @default NAT64_PREFIX
   */
  readonly prefix?: string;
  /**
   * @default NAT64_POOL
   */
  readonly pool?: string;
  /**
   * @default NAT64_BLOCKED_IPV4
   */
  readonly blocked?: readonly BlockedIpv4[];
}

/** tayga.conf(5): one directive a line, in the order the man page documents them. */
export function taygaConfig(input: Nat64Input = {}): string {
  const directives: [string, string][] = [
    ["tun-device", NAT64_DEVICE],
    ["ipv4-addr", NAT64_TRANSLATOR_IPV4],
    ["prefix", input.prefix ?? NAT64_PREFIX],
    ["dynamic-pool", input.pool ?? NAT64_POOL],
    ["data-dir", NAT64_DATA_DIR],
  ];
  return `${directives.map(([key, value]) => `${key} ${value}`).join("\n")}\n`;
}

/** The nftables table of the ruleset (family ip). */
export const NAT64_NFT_TABLE = "v6fabric-nat64";

/**
 * The nftables ruleset (`nft -f`): it replaces its own table and touches nothing else
 * (Calico's and kube-proxy's tables stay theirs). Every translated packet crosses the
 * IPv4 forward hook on its way out, so this is where the translator's block holds:
 * - from the TUN device, the blocked ranges are rejected and the rest is forwarded;
 *   replies come back through conntrack. Any other IPv4 forwarding is dropped, so
 *   turning on net.ipv4.ip_forward for the translator makes the node no IPv4 router.
 * - the pool leaves masqueraded to the outgoing interface's address: the public IPv4,
 *   which the default route uses.
 * - the node's own IPv4 traffic (OUTPUT and INPUT) meets no chain here, except that
 *   translated packets may not reach the node itself.
 */
export function nat64Ruleset(input: Nat64Input = {}): string {
  const pool = input.pool ?? NAT64_POOL;
  const blocked = (input.blocked ?? NAT64_BLOCKED_IPV4).map((b) => b.net);
  const dev = `"${NAT64_DEVICE}"`;
  const chains: [string, string, string[]][] = [
    ["input", "filter hook input priority filter; policy accept", [`iifname ${dev} reject with icmp type admin-prohibited`]],
    [
      "forward",
      "filter hook forward priority filter; policy drop",
      [
        `iifname ${dev} ip saddr != ${pool} drop`,
        `iifname ${dev} ip daddr { ${blocked.join(", ")} } reject with icmp type admin-prohibited`,
        `iifname ${dev} accept`,
        `oifname ${dev} ct state established,related accept`,
      ],
    ],
    ["postrouting", "nat hook postrouting priority srcnat; policy accept", [`ip saddr ${pool} oifname != ${dev} masquerade`]],
  ];
  const table = `ip ${NAT64_NFT_TABLE}`;
  return [
    `table ${table}`,
    `delete table ${table}`,
    `table ${table} {`,
    ...chains.flatMap(([name, hook, rules]) => [` chain ${name} {`, `  type ${hook};`, ...rules.map((r) => `  ${r}`), " }"]),
    "}",
    "",
  ].join("\n");
}
