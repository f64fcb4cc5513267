import { Construct } from "constructs";
import { ITerraformDependable } from "cdktf";
import { BgpSession } from "../.gen/providers/metal/bgp-session";
import { Device } from "../.gen/providers/metal/device";
import { Ipv6Cidr } from "../lib/address-plan";
import { validateHostname } from "../lib/naming";
import { PlanCondition } from "./nat64-package-source";

export interface IPv6NodeProps {
  /** Metal project the device belongs to. */
  readonly projectId: string;
  /** RFC 1123 hostname; also the Kubernetes node name. Stable: changing it replaces nothing but renames. */
  readonly hostname: string;
  /** Metro code, e.g. `da`. */
  readonly metro: string;
  /** Server plan slug, e.g. `c3.small.x86`. */
  readonly plan: string;
  /** Ignition JSON for first boot. May hold Terraform references to apply-time secrets. */
  readonly userData: string;
  /**
   * Operating system slug.
   * @default "flatcar_stable"
   */
  readonly operatingSystem?: string;
  /**
   * Billing cycle.
   * @default "hourly"
   */
  readonly billingCycle?: string;
  /**
   * Device tags.
   * @default []
   */
  readonly tags?: readonly string[];
  /**
   * Project SSH key IDs for the `core` user.
   * @default - Metal installs all the project's keys
   */
  readonly projectSshKeyIds?: readonly string[];
  /**
   * Where the provider must place the device's public IPv6 address. The address plan
   * and the host policies trust this range as "the nodes", so an address elsewhere
   * fails the apply right after the device is created, before anything joins.
   * @default - not checked
   */
  readonly expectedIpv6Range?: Ipv6Cidr;
  /**
   * What the BGP session must wait for: Metal refuses a session in a project without BGP,
   * so when the app enables it (METAL_MANAGE_PROJECT_BGP) the session follows that.
   * @default - nothing
   */
  readonly bgpSessionDependsOn?: readonly ITerraformDependable[];
  /**
   * Conditions the plan checks before the device is created, for what its user data
   * needs from outside the device (e.g. Nat64PackageSource's: a real host for tayga).
   * @default - none
   */
  readonly preconditions?: readonly PlanCondition[];
}

/**
 * One bare-metal server booted from Ignition, with an IPv6 BGP session so it may
 * announce its pod blocks and the Service ranges to the Metal routers.
 *
 * This is the only construct that knows about Equinix Metal devices; the fabric
 * (Ignition, kubeadm, Calico) only sees a hostname and user data.
 */
export class IPv6Node extends Construct {
  readonly device: Device;
  readonly bgpSession: BgpSession;
  readonly hostname: string;

  constructor(scope: Construct, id: string, props: IPv6NodeProps) {
    super(scope, id);
    this.hostname = validateHostname(props.hostname);
    this.device = new Device(this, "device", {
      projectId: props.projectId,
      hostname: this.hostname,
      metro: props.metro,
      plan: props.plan,
      operatingSystem: props.operatingSystem ?? "flatcar_stable",
      billingCycle: props.billingCycle ?? "hourly",
      userData: props.userData,
      tags: props.tags ? [...props.tags] : undefined,
      projectSshKeyIds: props.projectSshKeyIds && props.projectSshKeyIds.length > 0 ? [...props.projectSshKeyIds] : undefined,
      lifecycle: {
        // In equinix/metal 3.3.0 a user_data change destroys and recreates the device
        // (CustomizeDiff ForceNewIf user_data unless reinstall is enabled). Control
        // planes hold etcd, so new user data only reaches new or deliberately
        // replaced nodes (docs/operations.md).
        ignoreChanges: ["user_data"],
        precondition: props.preconditions?.length ? [...props.preconditions] : undefined,
        postcondition: props.expectedIpv6Range ? [addressInRange(props.expectedIpv6Range)] : undefined,
      },
    });
    this.bgpSession = new BgpSession(this, "bgp-ipv6", {
      deviceId: this.device.id,
      addressFamily: "ipv6",
      dependsOn: props.bgpSessionDependsOn?.length ? [...props.bgpSessionDependsOn] : undefined,
    });
  }

  /** The device's public IPv6 address (known after apply). */
  get publicIpv6(): string {
    return this.device.accessPublicIpv6;
  }

  /** The device's private IPv4 address (known after apply). */
  get privateIpv4(): string {
    return this.device.accessPrivateIpv4;
  }
}

/**
 * `access_public_ipv6` lies in `range`. Terraform has no CIDR-contains function, but
 * cidrhost() of the address with the range's prefix length gives that prefix's network.
 */
function addressInRange(range: Ipv6Cidr) {
  return {
    condition: `\${cidrhost(format("%s/${range.length}", self.access_public_ipv6), 0) == "${range.address(0)}"}`,
    errorMessage:
      `The device's public IPv6 address is outside ${range}, where the address plan expects Metal to place node ` +
      `addresses (zone 0 of CLUSTER_IPV6_BLOCK). Pod and Service ranges could overlap it and the host policies ` +
      `would not treat it as a node: check CLUSTER_IPV6_BLOCK and docs/address-plan.md before going on.`,
  };
}
