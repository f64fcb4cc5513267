/**
 * The cluster's machine-readable facts, published as the non-sensitive Terraform output
 * `fabric_summary` so that tools (`npm run report`, `terraform output -json`, a reviewer)
 * read them instead of re-deriving them. Pure: no cdktf import.
 *
 * Every value comes from its owner: the address plan from lib/address-plan.ts (via the
 * settings), versions from lib/versions.ts and the settings. Nothing here computes a range.
 * Nothing secret may ever be added: the output is not marked sensitive.
 */
import { ClusterSettings } from "./settings";
import { CALICO } from "./versions";

/** Name of the Terraform output that carries the summary. */
export const FABRIC_SUMMARY_OUTPUT = "fabric_summary";

/** Bump when a field changes meaning, so readers can tell old stacks apart. */
export const FABRIC_SUMMARY_VERSION = 1;

export interface FabricSummary {
  readonly summaryVersion: typeof FABRIC_SUMMARY_VERSION;
  readonly cluster: {
    readonly name: string;
    readonly metro: string;
    readonly domain: string;
    readonly controlPlaneCount: number;
    readonly workerCount: number;
  };
  /** Canonical (RFC 5952) prefixes and addresses from the address plan. */
  readonly addressPlan: {
    readonly block: string;
    readonly nodeRange: string;
    readonly podCidr: string;
    readonly serviceCidr: string;
    readonly externalCidr: string;
    readonly kubernetesServiceIp: string;
    readonly clusterDnsIp: string;
  };
  readonly bgp: {
    /** The project's local (customer) ASN the nodes speak from. */
    readonly localAsn: number;
  };
  readonly versions: {
    readonly flatcarChannel: string;
    readonly operatingSystem: string;
    readonly kubernetes: string;
    readonly calico: string;
    readonly calicoOperatorImage: string;
  };
}

export function fabricSummary(settings: ClusterSettings): FabricSummary {
  const plan = settings.addressPlan;
  return {
    summaryVersion: FABRIC_SUMMARY_VERSION,
    cluster: {
      name: settings.clusterName,
      metro: settings.metro,
      domain: settings.clusterDomain,
      controlPlaneCount: settings.controlPlaneCount,
      workerCount: settings.workerCount,
    },
    addressPlan: {
      block: plan.block.toString(),
      nodeRange: plan.nodeRange.toString(),
      podCidr: plan.podCidr.toString(),
      serviceCidr: plan.serviceCidr.toString(),
      externalCidr: plan.externalCidr.toString(),
      kubernetesServiceIp: plan.kubernetesServiceIp,
      clusterDnsIp: plan.clusterDnsIp,
    },
    bgp: { localAsn: settings.bgpAsn },
    versions: {
      flatcarChannel: settings.flatcarChannel,
      operatingSystem: `flatcar_${settings.flatcarChannel}`,
      kubernetes: settings.kubernetesVersion,
      calico: CALICO.version,
      calicoOperatorImage: CALICO.operatorImage,
    },
  };
}
