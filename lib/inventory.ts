/**
 * The machine inventory of the Matchbox target (NODE_TARGET=matchbox): the operator's own
 * bare-metal machines, written by the operator as a JSON file (MATCHBOX_INVENTORY).
 * It stands in for what Metal says of a device: its address and gateway, its private
 * IPv4 (Calico's BGP router ID) and its BGP neighbours (Metal's metadata `bgp_neighbors`).
 *
 * Pure: text in, a validated inventory out, every problem at once, each naming the
 * machine (README "Your own bare metal" has a worked example).
 */
import { Address4, Address6 } from "ip-address";
import { distance } from "fastest-levenshtein";
import { Ipv6Cidr } from "./address-plan";
import { NodeRole } from "./naming";

export interface BgpNeighbor {
  /** The router's IPv6 address the node peers with. */
  readonly address: string;
  /** The router's AS. */
  readonly asn: number;
}

export interface InventoryMachine {
  /** Hostname and Kubernetes node name (RFC 1123 label). */
  readonly name: string;
  readonly role: NodeRole;
  /** Lower-case, colon-separated, as Matchbox matches `mac` selectors. */
  readonly mac: string;
  /** The machine's public IPv6 address, without the prefix length (correct form). */
  readonly ipv6: string;
  /** Prefix length of the machine's on-link IPv6 network. */
  readonly ipv6PrefixLength: number;
  /** IPv6 default gateway: on-link (inside the machine's network) or link-local. */
  readonly gateway: string;
  /** Private IPv4 in 10.0.0.0/8, as Metal's servers have: Calico's BGP router ID. */
  readonly privateIpv4: string;
  /** Disk flatcar-install writes Flatcar to. */
  readonly installDisk: string;
  readonly neighbors: readonly BgpNeighbor[];
}

export interface Inventory {
  /** Machines in file order; the first control plane runs `kubeadm init`. */
  readonly machines: readonly InventoryMachine[];
}

export const DEFAULT_INSTALL_DISK = "/dev/sda";

/** The fields a machine may have, and whether it must. */
export const MACHINE_FIELDS: Readonly<Record<string, boolean>> = {
  name: true,
  role: true,
  mac: true,
  address: true,
  gateway: true,
  privateIpv4: true,
  neighbors: true,
  installDisk: false,
};
export const NEIGHBOR_FIELDS: readonly string[] = ["address", "asn"];
const TOP_FIELDS: readonly string[] = ["machines"];
const ROLES: readonly NodeRole[] = ["control-plane", "worker"];

const RFC1123_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const PRIVATE_RANGE = new Address4("10.0.0.0/8");

export class InventoryError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(problems.join("; "));
    this.name = "InventoryError";
  }
}

/** What the inventory is checked against: the settings it lives next to. */
export interface InventoryContext {
  /** Where node addresses must lie (zone 0 of CLUSTER_IPV6_BLOCK). */
  readonly nodeRange: Ipv6Cidr;
  /** CLUSTER_IPV6_BLOCK, for messages. */
  readonly block: Ipv6Cidr;
  /** The cluster's own AS (METAL_BGP_ASN): the neighbours must have another (eBGP). */
  readonly clusterAsn: number;
}

function didYouMean(field: string, known: readonly string[]): string {
  const lower = field.toLowerCase();
  // A name that starts like a known one (asnumber, mac_address) is that one; else the closest in spelling.
  const prefixed = known.find((k) => lower.startsWith(k.toLowerCase()) || k.toLowerCase().startsWith(lower));
  const best = prefixed ?? known.reduce((a, b) => (distance(lower, b.toLowerCase()) < distance(lower, a.toLowerCase()) ? b : a));
  return prefixed || distance(lower, best.toLowerCase()) <= Math.max(2, Math.floor(best.length / 3)) ? `did you mean "${best}"? ` : "";
}

function unknownFields(where: string, value: Record<string, unknown>, known: readonly string[]): string[] {
  return Object.keys(value)
    .filter((k) => !known.includes(k))
    .map((k) => `${where}: field "${k}" is not known: ${didYouMean(k, known)}valid fields are ${known.join(", ")}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function ipv6(text: unknown): Address6 | undefined {
  if (typeof text !== "string" || text.includes("%") || text.includes(".") || !Address6.isValid(text)) return undefined;
  return new Address6(text);
}

/** Parses and checks the inventory file's text; throws InventoryError with every problem. */
export function parseInventory(text: string, context: InventoryContext): Inventory {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (err) {
    throw new InventoryError([`it is not JSON (${(err as Error).message}): write {"machines": [ ... ]} as in the README's example`]);
  }
  if (!isObject(document) || !Array.isArray(document.machines)) {
    const extra = isObject(document) ? unknownFields("the file", document, TOP_FIELDS) : [];
    throw new InventoryError([...extra, `the file must be a JSON object with a "machines" array, as in the README's example`]);
  }
  const problems: string[] = unknownFields("the file", document, TOP_FIELDS);
  const machines: InventoryMachine[] = [];
  document.machines.forEach((raw: unknown, index: number) => {
    const machine = parseMachine(raw, index, context, problems);
    if (machine) machines.push(machine);
  });
  checkTogether(machines, problems);
  if (problems.length > 0) throw new InventoryError(problems);
  return { machines };
}

function parseMachine(raw: unknown, index: number, context: InventoryContext, problems: string[]): InventoryMachine | undefined {
  if (!isObject(raw)) {
    problems.push(`machine #${index + 1}: must be an object with the fields ${Object.keys(MACHINE_FIELDS).join(", ")}`);
    return undefined;
  }
  const named = typeof raw.name === "string" && raw.name !== "" ? raw.name : `#${index + 1}`;
  const where = `machine "${named}"`;
  const before = problems.length;
  const bad = (message: string) => problems.push(`${where}: ${message}`);
  problems.push(...unknownFields(where, raw, Object.keys(MACHINE_FIELDS)));
  for (const [field, required] of Object.entries(MACHINE_FIELDS)) {
    if (required && raw[field] === undefined) bad(`field "${field}" is missing`);
  }
  if (raw.name !== undefined && (typeof raw.name !== "string" || !RFC1123_LABEL.test(raw.name))) {
    bad(`name ${JSON.stringify(raw.name)} is not valid: use a lower-case RFC 1123 label (a-z, 0-9 and "-", 1 to 63 characters), it becomes the hostname and node name`);
  }
  if (raw.role !== undefined && !ROLES.includes(raw.role as NodeRole)) bad(`role ${JSON.stringify(raw.role)} is not valid: use ${ROLES.join(" or ")}`);
  const mac = typeof raw.mac === "string" ? raw.mac.toLowerCase().replace(/-/g, ":") : undefined;
  if (raw.mac !== undefined && (mac === undefined || !MAC.test(mac))) bad(`mac ${JSON.stringify(raw.mac)} is not valid: write the boot interface's MAC as six hex pairs, e.g. 52:54:00:12:34:56`);
  let address: Address6 | undefined;
  if (raw.address !== undefined) {
    address = typeof raw.address === "string" && /\/\d{1,3}$/.test(raw.address) ? ipv6(raw.address) : undefined;
    if (!address) bad(`address ${JSON.stringify(raw.address)} is not valid: write the machine's IPv6 address with its network's prefix length, e.g. ${context.nodeRange.address(16)}/64`);
    else if (!context.nodeRange.contains(Ipv6Cidr.parse(`${address.correctForm()}/128`))) {
      bad(`address ${raw.address} is outside ${context.nodeRange}, the node range of CLUSTER_IPV6_BLOCK=${context.block} (zone 0, docs/address-plan.md): pods and Services use the rest of the block; give an address in ${context.nodeRange}`);
      address = undefined;
    }
  }
  const gateway = ipv6(raw.gateway);
  if (raw.gateway !== undefined) {
    if (!gateway || typeof raw.gateway !== "string" || raw.gateway.includes("/")) bad(`gateway ${JSON.stringify(raw.gateway)} is not valid: write the IPv6 default gateway's address, without a prefix length`);
    else if (address && !gateway.isLinkLocal() && !gateway.isInSubnet(new Address6(`${address.correctForm()}/${address.subnetMask}`))) {
      bad(`gateway ${raw.gateway} is not on the machine's network ${address.startAddress().correctForm()}/${address.subnetMask}: give an on-link or link-local (fe80::/10) address`);
    }
  }
  const privateIpv4 = typeof raw.privateIpv4 === "string" && Address4.isValid(raw.privateIpv4) && !raw.privateIpv4.includes("/") ? new Address4(raw.privateIpv4) : undefined;
  if (raw.privateIpv4 !== undefined && (!privateIpv4 || !privateIpv4.isInSubnet(PRIVATE_RANGE))) {
    bad(`privateIpv4 ${JSON.stringify(raw.privateIpv4)} is not valid: give an IPv4 address in 10.0.0.0/8, unique per machine: Calico takes it as the BGP router ID, as on Metal`);
  }
  const installDisk = raw.installDisk ?? DEFAULT_INSTALL_DISK;
  if (typeof installDisk !== "string" || !/^\/dev\/[A-Za-z0-9/_.-]+$/.test(installDisk)) bad(`installDisk ${JSON.stringify(raw.installDisk)} is not valid: give a device path such as /dev/sda or /dev/disk/by-id/...`);
  const neighbors = parseNeighbors(raw.neighbors, where, context, problems);
  if (problems.length > before) return undefined;
  return {
    name: raw.name as string,
    role: raw.role as NodeRole,
    mac: mac as string,
    ipv6: address!.correctForm(),
    ipv6PrefixLength: address!.subnetMask,
    gateway: gateway!.correctForm(),
    privateIpv4: privateIpv4!.correctForm(),
    installDisk: installDisk as string,
    neighbors: neighbors!,
  };
}

function parseNeighbors(raw: unknown, where: string, context: InventoryContext, problems: string[]): BgpNeighbor[] | undefined {
  if (raw === undefined) return undefined;
  if (!Array.isArray(raw) || raw.length === 0) {
    problems.push(`${where}: neighbors ${JSON.stringify(raw)} is not valid: list at least one BGP neighbour, e.g. [{"address": "2001:db8:0:ab00::2", "asn": 65530}]: a node without one announces nothing`);
    return undefined;
  }
  const neighbors = raw.map((n: unknown, i: number) => parseNeighbor(n, `${where}: neighbour #${i + 1}`, context, problems));
  return neighbors.every((n): n is BgpNeighbor => n !== undefined) ? neighbors : undefined;
}

function parseNeighbor(n: unknown, at: string, context: InventoryContext, problems: string[]): BgpNeighbor | undefined {
  if (!isObject(n)) {
    problems.push(`${at} must be an object with the fields ${NEIGHBOR_FIELDS.join(", ")}`);
    return undefined;
  }
  const before = problems.length;
  problems.push(...unknownFields(at, n, NEIGHBOR_FIELDS));
  const address = ipv6(n.address);
  if (n.address === undefined) problems.push(`${at}: field "address" is missing: give the router's IPv6 address`);
  else if (!address || String(n.address).includes("/") || address.isLinkLocal()) problems.push(`${at}: address ${JSON.stringify(n.address)} is not valid: give the router's global IPv6 address, without a prefix length`);
  const asn = n.asn;
  if (asn === undefined) problems.push(`${at}: field "asn" is missing: give the router's AS`);
  else if (typeof asn !== "number" || !Number.isInteger(asn) || asn < 1 || asn > 4294967294) problems.push(`${at}: asn ${JSON.stringify(asn)} is not valid: give the router's AS, a whole number from 1 to 4294967294`);
  else if (asn === context.clusterAsn) problems.push(`${at}: asn ${asn} is the cluster's own AS (METAL_BGP_ASN): the sessions are eBGP, give the router's AS`);
  return problems.length === before && address ? { address: address.correctForm(), asn: asn as number } : undefined;
}

/** What only the machines together can say: unique names, MACs and addresses, the roles, one AS per router. */
function checkTogether(machines: readonly InventoryMachine[], problems: string[]): void {
  const seen = new Map<string, string>();
  for (const m of machines) {
    for (const [what, value] of [["name", m.name], ["mac", m.mac], ["address", m.ipv6], ["privateIpv4", m.privateIpv4]] as const) {
      const owner = seen.get(`${what}=${value}`);
      if (owner !== undefined) problems.push(`machine "${m.name}": ${what} ${value} is also machine "${owner}"'s: each machine needs its own`);
      else seen.set(`${what}=${value}`, m.name);
    }
  }
  const controlPlanes = machines.filter((m) => m.role === "control-plane").length;
  if (problems.length === 0 && ![1, 3, 5].includes(controlPlanes)) {
    problems.push(`it lists ${controlPlanes} control-plane machines: etcd needs an odd number of members, list 1, 3 or 5`);
  }
  // A router has one AS, whichever machines name it.
  const asOf = new Map<string, { asn: number; machine: string }>();
  for (const m of machines) {
    for (const n of m.neighbors) {
      const known = asOf.get(n.address);
      if (!known) asOf.set(n.address, { asn: n.asn, machine: m.name });
      else if (known.asn !== n.asn) {
        problems.push(`machine "${m.name}": neighbour ${n.address} has asn ${n.asn}, but machine "${known.machine}" gives it ${known.asn}: a router has one AS, give the same on every machine that peers with it`);
      }
    }
  }
}

/** A router of the inventory and the machines that name it as a neighbour. */
export interface InventoryPeer extends BgpNeighbor {
  /** Names of the machines that peer with it, in file order. */
  readonly machines: readonly string[];
}

/**
 * The cluster's BGP peers: every router some machine names, in the order they first
 * appear, each with the machines that name it. Machines of one rack name that rack's
 * routers; with one list for every machine, every router has every machine.
 */
export function inventoryPeers(inventory: Inventory): readonly InventoryPeer[] {
  const peers = new Map<string, { address: string; asn: number; machines: string[] }>();
  for (const m of inventory.machines) {
    for (const n of m.neighbors) {
      const peer = peers.get(n.address) ?? { address: n.address, asn: n.asn, machines: [] };
      peer.machines.push(m.name);
      peers.set(n.address, peer);
    }
  }
  return [...peers.values()];
}
