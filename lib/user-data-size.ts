/**
 * How big a node's user data is, as synthesized and once Terraform has spliced in
 * the apply-time secrets.
 *
 * No documented size limit for Equinix Metal user data was found (docs/sources.md).
 * Lokomotive saw 64 kB of user data slow Packet deploys by minutes, so the project
 * budgets half of that per node.
 */
import { parseTerraformTemplate } from "./terraform-template";

/** Per-node user data budget: half the 64 kB at which Packet deploys slowed down. */
export const USER_DATA_BUDGET_BYTES = 32 * 1024;

/**
 * Size a PEM secret is assumed to have at apply time. The control plane makes ECDSA
 * P-256 keys: a CA certificate is about 660 bytes, a key 227. The estimate takes
 * 1 KiB per certificate and 512 bytes per key, so it errs on the large side.
 */
export function assumedPemBytes(expression: string): number {
  return /cert_pem/.test(expression) ? 1024 : 512;
}

const BOOTSTRAP_TOKEN_BYTES = "abcdef.0123456789abcdef".length;

/**
 * Bytes one `${...}` expression becomes: the base64 bootstrap token file (its
 * expression names the token), base64 PEMs as assumed above, anything else a token's 23.
 */
function appliedExpressionBytes(expression: string): number {
  if (/^\s*base64encode\(/.test(expression)) {
    const bytes = /bootstrap.token/.test(expression) ? BOOTSTRAP_TOKEN_BYTES : assumedPemBytes(expression);
    return Math.ceil(bytes / 3) * 4;
  }
  return BOOTSTRAP_TOKEN_BYTES;
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
