/**
 * The routers' side of the Matchbox target (NODE_TARGET=matchbox): for each of the
 * operator's top-of-rack routers the nodes peer with, a ready BIRD 2 and FRR
 * configuration, from the same peer list as the nodes' BGPPeers (the inventory's
 * neighbours). What Metal's routers do for Metal servers, these do for the machines:
 *
 * - one eBGP session per node, from the router's AS to the cluster's (METAL_BGP_ASN);
 * - import only what a node may announce (docs/bgp-fabric.md): pod blocks of the
 *   IPAM block length inside the pod range, the Service ClusterIP range and the
 *   external range as they are, /128s of the Local pool;
 * - a per-session prefix limit: the node's prefix budget (lib/prefix-budget.ts);
 *   a node past it is cut off, as Metal does past its limit (BIRD at the first prefix
 *   over it; FRR 8.4 when a prefix arrives while it already holds more, so at the second:
 *   router-config-frr.test.ts measures both);
 * - export nothing: the nodes reach each other through their default route;
 * - ECMP for the Service ranges every node announces;
 * - per rack: a router only some machines name as a neighbour has sessions with those;
 * - the BGP password, when the sessions have one.
 *
 * Pure: typed input, text out. The router ID is the last 32 bits of the router's
 * IPv6 address (an IPv6-only router has no IPv4 to take it from); change it if that
 * clashes with another BGP speaker of yours.
 */
import { Address6 } from "ip-address";
import { AddressPlan, Ipv6Cidr, loadBalancerPools } from "./address-plan";
import { POD_BLOCK_PREFIX_LENGTH, RouterPeer } from "./calico";

export interface RouterConfigNode {
  readonly name: string;
  readonly ipv6: string;
  /** Prefix length of the node's on-link network: a router outside it is reached multihop. */
  readonly ipv6PrefixLength: number;
}

export interface RouterConfigInput {
  readonly clusterName: string;
  /** The cluster's AS (METAL_BGP_ASN): the nodes' side of every session. */
  readonly clusterAsn: number;
  readonly plan: AddressPlan;
  /** LOCAL_SERVICE_ROUTES. */
  readonly localServiceRoutes: number;
  /** The most prefixes one node may announce (PrefixBudget.total). */
  readonly prefixLimit: number;
  /** Every node; a router whose peer entry names some (a rack's) has sessions with those only. */
  readonly nodes: readonly RouterConfigNode[];
  /**
   * The sessions' TCP MD5 password (METAL_BGP_MD5_ENABLED), the one the nodes' BGPPeers
   * use: a Terraform reference to the sensitive variable, written into the text as is.
   * @default no password
   */
  readonly md5Password?: string;
}

/** One accepted announcement: a prefix and the lengths allowed inside it. */
export interface AcceptedRoute {
  readonly prefix: Ipv6Cidr;
  readonly min: number;
  readonly max: number;
}

/** What the routers accept from a node, the import filter of both configurations. */
export function acceptedRoutes(input: Pick<RouterConfigInput, "plan" | "localServiceRoutes">): AcceptedRoute[] {
  const { plan } = input;
  const local = loadBalancerPools(plan, input.localServiceRoutes).local;
  return [
    { prefix: plan.podCidr, min: POD_BLOCK_PREFIX_LENGTH, max: POD_BLOCK_PREFIX_LENGTH },
    { prefix: plan.serviceCidr, min: plan.serviceCidr.length, max: plan.serviceCidr.length },
    { prefix: plan.externalCidr, min: plan.externalCidr.length, max: plan.externalCidr.length },
    ...(local ? [{ prefix: local, min: 128, max: 128 }] : []),
  ];
}

/** A 32-bit router ID from the low 32 bits of the router's IPv6 address (never 0.0.0.0). */
export function routerId(address: string): string {
  const low = Number(new Address6(address).bigInt() & 0xffffffffn) || 1;
  return [24, 16, 8, 0].map((shift) => (low >>> shift) & 0xff).join(".");
}

function onLink(router: string, node: RouterConfigNode): boolean {
  return new Address6(router).isInSubnet(new Address6(`${node.ipv6}/${node.ipv6PrefixLength}`));
}

/** The nodes `router` has sessions with: those its peer entry names, else every node. */
function peersOf(input: RouterConfigInput, router: RouterPeer): readonly RouterConfigNode[] {
  return router.nodes ? input.nodes.filter((n) => router.nodes!.includes(n.name)) : input.nodes;
}

function identifier(name: string): string {
  return name.replace(/[^A-Za-z0-9]/g, "_");
}

/** BIRD 2 configuration for `router` (bird.conf as a whole; checked with `bird -p`). */
export function birdConfig(input: RouterConfigInput, router: RouterPeer): string {
  const nodes = peersOf(input, router);
  const routes = acceptedRoutes(input)
    .map((r) => `    ${r.prefix}{${r.min},${r.max}}`)
    .join(",\n");
  const sessions = nodes.flatMap((node) => [
    `protocol bgp node_${identifier(node.name)} from v6fabric_node {`,
    `  description "${input.clusterName} node ${node.name}";`,
    `  neighbor ${node.ipv6} as ${input.clusterAsn};`,
    ...(onLink(router.address, node) ? [] : [`  multihop;`]),
    `}`,
    ``,
  ]);
  return [
    `# v6fabric: BGP sessions of the router ${router.address} (AS ${router.asn}) with ${router.nodes ? "the nodes that peer with it" : "every node"} of the cluster`,
    `# ${input.clusterName} (AS ${input.clusterAsn}), generated by the app from the same peer list as the nodes' BGPPeers.`,
    `# Accepts only what the nodes may announce, at most ${input.prefixLimit} prefixes per session, and sends nothing back.`,
    `router id ${routerId(router.address)};`,
    ``,
    `protocol device {`,
    `}`,
    ``,
    `# Installs the nodes' routes, several next hops for the Service ranges every node announces (ECMP).`,
    `protocol kernel v6fabric_kernel {`,
    `  merge paths on;`,
    `  ipv6 {`,
    `    import none;`,
    `    export where source = RTS_BGP;`,
    `  };`,
    `}`,
    ``,
    `filter v6fabric_import {`,
    `  if net ~ [`,
    routes,
    `  ] then accept;`,
    `  reject;`,
    `}`,
    ``,
    `template bgp v6fabric_node {`,
    `  local ${router.address} as ${router.asn};`,
    ...(input.md5Password === undefined ? [] : [`  password "${input.md5Password}";`]),
    `  ipv6 {`,
    `    import filter v6fabric_import;`,
    `    import limit ${input.prefixLimit} action disable;`,
    `    export none;`,
    `  };`,
    `}`,
    ``,
    ...sessions,
  ].join("\n");
}

/** FRR configuration for `router` (frr.conf; checked with `vtysh --dryrun` or `bgpd --dryrun`). */
export function frrConfig(input: RouterConfigInput, router: RouterPeer): string {
  const group = "V6FABRIC";
  const prefixList = acceptedRoutes(input).map((r, i) => {
    const lengths = r.min === r.prefix.length && r.max === r.prefix.length ? "" : `${r.min > r.prefix.length ? ` ge ${r.min}` : ""} le ${r.max}`;
    return `ipv6 prefix-list ${group}-IN seq ${(i + 1) * 5} permit ${r.prefix}${lengths}`;
  });
  const nodes = peersOf(input, router);
  const multihop = nodes.some((n) => !onLink(router.address, n));
  return [
    `! v6fabric: BGP sessions of the router ${router.address} (AS ${router.asn}) with ${router.nodes ? "the nodes that peer with it" : "every node"} of the cluster`,
    `! ${input.clusterName} (AS ${input.clusterAsn}), generated by the app from the same peer list as the nodes' BGPPeers.`,
    `! Accepts only what the nodes may announce, at most ${input.prefixLimit} prefixes per session, and sends nothing back.`,
    `frr defaults traditional`,
    `!`,
    ...prefixList,
    `ipv6 prefix-list ${group}-IN seq 1000 deny any`,
    `!`,
    `route-map ${group}-OUT deny 10`,
    `!`,
    `router bgp ${router.asn}`,
    ` bgp router-id ${routerId(router.address)}`,
    ` no bgp default ipv4-unicast`,
    ` neighbor ${group} peer-group`,
    ` neighbor ${group} remote-as ${input.clusterAsn}`,
    ` neighbor ${group} update-source ${router.address}`,
    ...(multihop ? [` neighbor ${group} ebgp-multihop 2`] : []),
    ...(input.md5Password === undefined ? [] : [` neighbor ${group} password ${input.md5Password}`]),
    ...nodes.map((n) => ` neighbor ${n.ipv6} peer-group ${group}`),
    ...nodes.map((n) => ` neighbor ${n.ipv6} description ${input.clusterName} node ${n.name}`),
    ` !`,
    ` address-family ipv6 unicast`,
    `  maximum-paths 64`,
    `  neighbor ${group} activate`,
    `  neighbor ${group} prefix-list ${group}-IN in`,
    `  neighbor ${group} route-map ${group}-OUT out`,
    `  neighbor ${group} maximum-prefix ${input.prefixLimit}`,
    ` exit-address-family`,
    `exit`,
    `!`,
    ``,
  ].join("\n");
}

/** Both configurations for each router, keyed by its address (the `router_configs` output). */
export function routerConfigs(input: RouterConfigInput, routers: readonly RouterPeer[]): Record<string, { asn: number; bird: string; frr: string }> {
  return Object.fromEntries(routers.map((r) => [r.address, { asn: r.asn, bird: birdConfig(input, r), frr: frrConfig(input, r) }]));
}
