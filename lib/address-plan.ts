/**
 * The cluster's IPv6 address plan: which part of the project's block holds node,
 * pod, Service and external (LoadBalancer) addresses.
 *
 * Pure: no cdktf import. Computed once from the block in the settings and passed
 * down to every renderer (kubeadm, Calico, policies, report).
 *
 * Layout: the block is cut into 16 equal zones (block prefix + 4 bits, so for a
 * /56 each zone is a /60 and starts on a hex digit of the address):
 *
 *   zone 0  node addresses: Equinix Metal hands each device a /127 from the first
 *           /64 of the project's /56 (docs/facts.md). Never used by the plan.
 *   zone 1  pods: the first /64 (Calico IPPool, kubeadm podSubnet).
 *   zone 2  Service ClusterIPs: the first /108 (kubeadm serviceSubnet). /108 is the
 *           largest range the classic allocator and kubeadm's own check accept
 *           (20 host bits); see docs/address-plan.md for why we stay there.
 *   zone 3  Service external and LoadBalancer IPs: the first /112.
 *   zones 4-15 left free for the operator.
 */
import { Address6 } from "ip-address";

/** Prefix length of the pod range: one /64, as IPv6 subnets are meant to be. */
export const POD_PREFIX_LENGTH = 64;
/** Largest IPv6 Service range kubeadm and the classic allocator accept (20 host bits). */
export const SERVICE_PREFIX_LENGTH = 108;
/** External/LoadBalancer range: 65,536 addresses, announced as one prefix. */
export const EXTERNAL_PREFIX_LENGTH = 112;
/** The block is cut into 2^ZONE_BITS zones. */
export const ZONE_BITS = 4;
/** The smallest block that still gives every zone a full /64. */
export const LONGEST_BLOCK_PREFIX = POD_PREFIX_LENGTH - ZONE_BITS;
/** Shorter than this is not a block one project or site is given. */
export const SHORTEST_BLOCK_PREFIX = 32;

export class AddressPlanError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AddressPlanError";
  }
}

/** An IPv6 prefix in canonical (RFC 5952) form, valid by construction. */
export class Ipv6Cidr {
  /**
   * Parses `text` as an IPv6 prefix. Throws AddressPlanError when it is not IPv6,
   * has no prefix length, or has host bits set.
   */
  static parse(text: string): Ipv6Cidr {
    const trimmed = text.trim();
    const slash = trimmed.indexOf("/");
    if (slash < 0) {
      throw new AddressPlanError(`"${text}" has no prefix length: write it as address/length, e.g. 2001:db8:0:ab00::/56`);
    }
    const addressPart = trimmed.slice(0, slash);
    const lengthPart = trimmed.slice(slash + 1);
    if (!Address6.isValid(addressPart) || addressPart.includes(".")) {
      throw new AddressPlanError(`"${text}" is not an IPv6 prefix (IPv4 and names are not accepted)`);
    }
    if (!/^\d{1,3}$/.test(lengthPart) || Number(lengthPart) > 128) {
      throw new AddressPlanError(`"${text}" has an invalid prefix length "${lengthPart}" (0 to 128)`);
    }
    const length = Number(lengthPart);
    const prefix = new Address6(`${addressPart}/${length}`);
    const network = prefix.startAddress().bigInt();
    if (network !== new Address6(addressPart).bigInt()) {
      const fixed = new Ipv6Cidr(network, length);
      throw new AddressPlanError(`"${text}" has host bits set: the /${length} that contains it is ${fixed}`);
    }
    return new Ipv6Cidr(network, length);
  }

  private constructor(
    /** First address of the prefix, as a 128-bit integer. */
    readonly network: bigint,
    /** Prefix length in bits. */
    readonly length: number,
  ) {}

  /** Number of addresses in the prefix. */
  get size(): bigint {
    return 1n << BigInt(128 - this.length);
  }

  /** The `index`-th subnet of length `newLength` inside this prefix. */
  subnet(newLength: number, index: bigint | number): Ipv6Cidr {
    if (newLength < this.length || newLength > 128) {
      throw new AddressPlanError(`cannot cut a /${newLength} out of ${this}`);
    }
    const count = 1n << BigInt(newLength - this.length);
    const i = BigInt(index);
    if (i < 0n || i >= count) {
      throw new AddressPlanError(`${this} has ${count} subnets of /${newLength}, not ${i + 1n}`);
    }
    return new Ipv6Cidr(this.network + i * (1n << BigInt(128 - newLength)), newLength);
  }

  /** The `offset`-th address of the prefix (0 is the network address). */
  address(offset: bigint | number): string {
    const o = BigInt(offset);
    if (o < 0n || o >= this.size) throw new AddressPlanError(`${this} has no address at offset ${o}`);
    return Address6.fromBigInt(this.network + o).correctForm();
  }

  contains(other: Ipv6Cidr): boolean {
    return other.toAddress6().isInSubnet(this.toAddress6());
  }

  private toAddress6(): Address6 {
    return new Address6(this.toString());
  }

  overlaps(other: Ipv6Cidr): boolean {
    return this.contains(other) || other.contains(this);
  }

  toString(): string {
    return `${Address6.fromBigInt(this.network).correctForm()}/${this.length}`;
  }
}

export interface AddressPlan {
  /** The project's block the plan is cut from. */
  readonly block: Ipv6Cidr;
  /** Zone 0: where the provider assigns node addresses. Not announced, not used. */
  readonly nodeRange: Ipv6Cidr;
  /** Pod addresses (kubeadm podSubnet, Calico IPPool). */
  readonly podCidr: Ipv6Cidr;
  /** Service ClusterIPs (kubeadm serviceSubnet, Calico serviceClusterIPs). */
  readonly serviceCidr: Ipv6Cidr;
  /** Service external and LoadBalancer IPs (Calico serviceExternalIPs/serviceLoadBalancerIPs). */
  readonly externalCidr: Ipv6Cidr;
  /** ClusterIP of the `kubernetes` Service: the first address of the service range. */
  readonly kubernetesServiceIp: string;
  /** ClusterIP of cluster DNS: the tenth address of the service range, as kubeadm picks it. */
  readonly clusterDnsIp: string;
}

/** IPv6 global unicast space (RFC 4291 2.4): the only space that is publicly routed. */
const GLOBAL_UNICAST = Ipv6Cidr.parse("2000::/3");

/**
 * Cuts the address plan out of `blockText`. Throws AddressPlanError, naming the value
 * and what would be valid, for anything but a global unicast IPv6 prefix from
 * /32 to /60 with no host bits set.
 */
export function planAddresses(blockText: string): AddressPlan {
  const block = Ipv6Cidr.parse(blockText);
  if (block.length > LONGEST_BLOCK_PREFIX || block.length < SHORTEST_BLOCK_PREFIX) {
    throw new AddressPlanError(
      `"${blockText}" is a /${block.length}: the plan needs a block from /${SHORTEST_BLOCK_PREFIX} to /${LONGEST_BLOCK_PREFIX} ` +
        `(16 zones of at least a /64 each; Equinix Metal gives each project a /56 per metro)`,
    );
  }
  if (!GLOBAL_UNICAST.contains(block)) {
    throw new AddressPlanError(
      `"${blockText}" is not global unicast IPv6 (2000::/3): pods and Services get public addresses, so the block must be routable`,
    );
  }
  const zoneLength = block.length + ZONE_BITS;
  const zone = (index: number) => block.subnet(zoneLength, index);
  const serviceCidr = zone(2).subnet(SERVICE_PREFIX_LENGTH, 0);
  return {
    block,
    nodeRange: zone(0),
    podCidr: zone(1).subnet(POD_PREFIX_LENGTH, 0),
    serviceCidr,
    externalCidr: zone(3).subnet(EXTERNAL_PREFIX_LENGTH, 0),
    kubernetesServiceIp: serviceCidr.address(1),
    clusterDnsIp: serviceCidr.address(10),
  };
}

/**
 * How Calico's LoadBalancer IPAM divides the external range (zone 3). Both pools lie
 * inside the /112 that every node announces, so they add no route of their own.
 */
export interface LoadBalancerPools {
  /**
   * externalTrafficPolicy: Cluster addresses: the first half of the external range,
   * which Calico assigns by itself.
   */
  readonly cluster: Ipv6Cidr;
  /**
   * externalTrafficPolicy: Local addresses: exactly `localServiceRoutes` addresses at
   * the start of the second half, so a node can never hold more Local /128s than that
   * (the export filter passes no other /128 of the external range). Absent when
   * LOCAL_SERVICE_ROUTES=0.
   */
  readonly local?: Ipv6Cidr;
}

/**
 * Cuts the LoadBalancer pools out of `plan.externalCidr`. `localServiceRoutes` must be 0
 * or a power of two (a pool is one CIDR); lib/prefix-budget.ts checks the setting first.
 */
export function loadBalancerPools(plan: AddressPlan, localServiceRoutes: number): LoadBalancerPools {
  const halves = plan.externalCidr.length + 1;
  const cluster = plan.externalCidr.subnet(halves, 0);
  if (localServiceRoutes === 0) return { cluster };
  const bits = Math.log2(localServiceRoutes);
  if (!Number.isInteger(bits) || 128 - bits < halves) {
    throw new AddressPlanError(`${localServiceRoutes} Local Service addresses do not form one CIDR inside ${plan.externalCidr.subnet(halves, 1)}`);
  }
  return { cluster, local: plan.externalCidr.subnet(halves, 1).subnet(128 - bits, 0) };
}
