import { Construct } from "constructs";
import { TerraformLocal } from "cdktf";
import { PinnedDownload } from "../lib/versions";

export interface Nat64PackageSourceProps {
  /** The tayga package every node downloads: the operator's URL (NAT64_TAYGA_PACKAGE_URL) and the pinned hash. */
  readonly package: PinnedDownload;
}

/** A lifecycle condition as cdktf writes it: a Terraform expression and the message when it is false. */
export interface PlanCondition {
  readonly condition: string;
  readonly errorMessage: string;
}

/** The local value the plan-time check reads; its name shows in the plan's error. */
export const TAYGA_PACKAGE_URL_LOCAL = "nat64_tayga_package_url";

/**
 * Hosts no node can download from: names reserved for documentation and tests (RFC 2606:
 * `.example`, `.invalid`, `.test`, `.localhost`, example.com/.net/.org; RFC 6761), with
 * an optional trailing dot and port. The default of NAT64_TAYGA_PACKAGE_URL is one.
 * Written for Terraform's regex() (RE2) with `[.]` for a dot, so it needs no escapes in
 * the Terraform string.
 */
export const RESERVED_HOST_URL = "^https://([^/?#]*[.])?(example|example[.](com|net|org)|invalid|localhost|test)[.]?(:[0-9]*)?([/?#]|$)";

/**
 * The plan-time check that the tayga package comes from a real host. NAT64_TAYGA_PACKAGE_URL
 * defaults to a placeholder so `npm run synth` works with no settings; a node booted
 * with it would fail Ignition's download and never start its NAT64, so every device
 * carries `devicePrecondition` and the plan stops before any device is created, naming
 * the setting (as MetalProjectGuard does for CLUSTER_IPV6_BLOCK).
 *
 * Terraform requires a condition to read something from the configuration, so the URL
 * is a local value of the stack (TAYGA_PACKAGE_URL_LOCAL); the user data keeps its own
 * literal copy, which the settings validated to hold no Terraform template characters.
 */
export class Nat64PackageSource extends Construct {
  readonly devicePrecondition: PlanCondition;

  constructor(scope: Construct, id: string, props: Nat64PackageSourceProps) {
    super(scope, id);
    const url = new TerraformLocal(this, "url", props.package.url);
    url.overrideLogicalId(TAYGA_PACKAGE_URL_LOCAL);
    const host = new URL(props.package.url).host;
    this.devicePrecondition = {
      condition: `\${!can(regex("${RESERVED_HOST_URL}", local.${TAYGA_PACKAGE_URL_LOCAL}))}`,
      errorMessage:
        `NAT64_TAYGA_PACKAGE_URL=${props.package.url} is not a place a node can download from: ${host} is a name reserved ` +
        `for documentation and tests (RFC 2606, RFC 6761), so the node's Ignition would fail to fetch the tayga package and ` +
        `its NAT64 would never start. Set NAT64_TAYGA_PACKAGE_URL to the https URL of Debian's tayga package on a mirror you ` +
        `trust (the file name and its SHA-256 are pinned in lib/versions.ts; docs/nat64.md), or NAT64_ENABLED=false, and synthesize again.`,
    };
  }
}
