/**
 * Address arithmetic for the emulator: the /127 and /31 point-to-point networks Metal
 * gives a device, cut from the project's blocks. Pure functions, BigInt math.
 */
import { Address4, Address6 } from "ip-address";

/** One device address as Metal describes it (API `ip_addresses[]`, metadata `network.addresses[]`). */
export interface PointToPoint {
  readonly address: string;
  /** Metal: on a /127 or /31 the gateway is the network address (packngo metadata/testdata/device.json). */
  readonly gateway: string;
  readonly network: string;
  readonly cidr: number;
  readonly netmask: string;
}

export interface ParsedBlock {
  readonly family: 4 | 6;
  /** First address of the block. */
  readonly base: bigint;
  readonly cidr: number;
}

export function parseBlock(cidr: string, family: 4 | 6, what: string): ParsedBlock {
  const [text, lengthText] = cidr.split("/");
  const length = Number(lengthText);
  const bits = family === 6 ? 128 : 32;
  if (!Number.isInteger(length) || length < 0 || length > bits || lengthText === undefined) {
    throw new Error(`${what}=${cidr} is not an IPv${family} CIDR (address/length)`);
  }
  const value = family === 6 ? parse6(text, what) : parse4(text, what);
  const host = (1n << BigInt(bits - length)) - 1n;
  if ((value & host) !== 0n) throw new Error(`${what}=${cidr} has host bits set; expected its network address`);
  return { family, base: value, cidr: length };
}

export function parse6(text: string, what = "address"): bigint {
  if (!Address6.isValid(text)) throw new Error(`${what}: ${text} is not an IPv6 address`);
  return new Address6(text).bigInt();
}

export function parse4(text: string, what = "address"): bigint {
  if (!Address4.isValid(text) || text.includes("/")) throw new Error(`${what}: ${text} is not an IPv4 address`);
  return text.split(".").reduce((sum, octet) => (sum << 8n) + BigInt(Number(octet)), 0n);
}

/** RFC 5952 text, as Metal prints device addresses. */
export function format6(value: bigint): string {
  return Address6.fromBigInt(value).correctForm();
}

/** Zero-padded text: Metal prints a parent block's network and netmask this way (packngo metadata fixture). */
export function format6Long(value: bigint): string {
  return Address6.fromBigInt(value).canonicalForm();
}

export function format4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 255n)).join(".");
}

/** Netmask text; IPv6 masks zero-padded, as in the packngo metadata fixture. */
export function netmask(family: 4 | 6, cidr: number): string {
  const bits = family === 6 ? 128 : 32;
  const mask = ((1n << BigInt(bits)) - 1n) ^ ((1n << BigInt(bits - cidr)) - 1n);
  return family === 6 ? format6Long(mask) : format4(mask);
}

/**
 * The n-th (0-based) point-to-point network of `size` bits' prefix starting at `start`:
 * the even address is the network and gateway, the odd one the device (n-th device:
 * 2n / 2n+1), the layout of packngo's metadata fixture (docs/metal-emulator.md).
 */
export function pointToPoint(family: 4 | 6, start: bigint, n: number): PointToPoint {
  const network = start + 2n * BigInt(n);
  const cidr = family === 6 ? 127 : 31;
  const text = family === 6 ? format6 : format4;
  return { address: text(network + 1n), gateway: text(network), network: text(network), cidr, netmask: netmask(family, cidr) };
}

/** How many /127 (or /31) networks fit in a block. */
export function pointToPointCapacity(block: ParsedBlock, withinPrefix?: number): bigint {
  const bits = block.family === 6 ? 128 : 32;
  const length = withinPrefix ?? block.cidr;
  return 1n << BigInt(bits - length - 1);
}

/** Canonical text of a caller's address for comparisons (IPv4-mapped IPv6 becomes IPv4). */
export function canonicalAddress(text: string): string | undefined {
  const bare = text.replace(/%.*$/, "");
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  if (mapped) return mapped[1];
  if (Address4.isValid(bare) && !bare.includes("/")) return format4(parse4(bare));
  if (Address6.isValid(bare) && !bare.includes("/")) return format6(parse6(bare));
  return undefined;
}
