/**
 * How big a node's user data is, as synthesized and once Terraform has spliced in
 * the apply-time secrets.
 *
 * No documented size limit for Equinix Metal user data was found (docs/sources.md).
 * Lokomotive saw 64 kB of user data slow Packet deploys by minutes, so the project
 * budgets well under that per node. The budget was raised as the boot grew (32 KiB,
 * then 36 after NAT64 and DNS64, 40 after the node-local API path); since the boot
 * config travels as one gzip'd merged config (ignition/user-data.ts) the largest node,
 * the first control plane, needs about 26.2 KiB, and the budget is 28 KiB. What is left
 * of it is mostly the first control plane's eight PEMs, counted here at a size no real
 * one reaches (docs/flatcar-boot.md, "Size").
 */
import { parseTerraformTemplate } from "./terraform-template";

/** Per-node user data budget: well under the 64 kB at which Packet deploys slowed down. */
export const USER_DATA_BUDGET_BYTES = 28 * 1024;

/**
 * What one node's user data may weigh as Metal holds it, once Terraform has spliced in
 * the real PEMs (issue #22): 24 KiB per role, constant in the node count. The synth-time
 * budget above holds an estimate that counts each PEM larger than any real one.
 * `npm run rehearse` reports each role's largest against it.
 */
export const APPLIED_USER_DATA_BUDGET_BYTES = 24 * 1024;

/**
 * How far the size of one node's user data may move with another zlib build. Its boot
 * config is gzip'd at synth (Ignition `compression: gzip`), and deflate's output
 * is not fixed across zlib versions and forks (Node bundles its own). Documented sizes
 * are compared within this much (scripts/doc-tables.ts), and the budget check in the
 * tests keeps this much room, so neither depends on the machine's zlib.
 */
export const ZLIB_SIZE_TOLERANCE_BYTES = 1024;

/** Bytes as KiB with one decimal, as the README prints them. */
export function formatKiB(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

/**
 * Size a PEM secret is assumed to have at apply time. The control plane makes ECDSA
 * P-256 keys: a CA certificate is about 660 bytes, a key 227. The estimate takes
 * 1 KiB per certificate and 512 bytes per key, so it errs on the large side.
 */
export function assumedPemBytes(expression: string): number {
  return /cert_pem/.test(expression) ? 1024 : 512;
}

/**
 * Size of a PEM after gzip (Terraform's base64gzip). The base64 body of a PEM carries 6
 * bits a character, so deflate's Huffman coding saves at most a quarter; gzip adds an
 * 18-byte header and trailer. Measured with openssl-made P-256 PEMs (gzip -9): a 579-byte
 * certificate became 445-450 bytes, a 227-byte key 208-210, a 178-byte public key 170.
 * The estimate, 0.8 of the size plus 40 bytes, is above every one of them.
 */
export function assumedGzippedPemBytes(expression: string): number {
  return Math.ceil(assumedPemBytes(expression) * 0.8) + 40;
}

/** The longest IPv6 address text and its newline: a line of the API servers file. */
const IPV6_LINE_BYTES = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff\n".length;

/**
 * Bytes one `${...}` expression becomes: the base64 API servers file (a line per device
 * address it names), base64 PEMs (plain or gzip'd) as assumed above, anything else at
 * most an address line.
 */
function appliedExpressionBytes(expression: string): number {
  if (/^\s*base64gzip\(/.test(expression)) return Math.ceil(assumedGzippedPemBytes(expression) / 3) * 4;
  if (/^\s*base64encode\(/.test(expression) && /access_public_ipv6/.test(expression)) {
    return Math.ceil((expression.match(/access_public_ipv6/g)!.length * IPV6_LINE_BYTES) / 3) * 4;
  }
  if (/^\s*base64encode\(/.test(expression)) return Math.ceil(assumedPemBytes(expression) / 3) * 4;
  return IPV6_LINE_BYTES;
}

export interface UserDataSize {
  /** Bytes of the user data string in cdk.tf.json (Terraform syntax included). */
  readonly synthesizedBytes: number;
  /** Estimated bytes the device receives, secrets spliced in. */
  readonly appliedBytes: number;
}

export function userDataSize(userData: string): UserDataSize {
  let applied = 0;
  for (const part of parseTerraformTemplate(userData)) {
    applied += "literal" in part ? Buffer.byteLength(part.literal) : appliedExpressionBytes(part.expression);
  }
  return { synthesizedBytes: Buffer.byteLength(userData), appliedBytes: applied };
}
