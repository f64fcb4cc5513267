import { Construct } from "constructs";
import { DataMetalPrecreatedIpBlock } from "../.gen/providers/metal/data-metal-precreated-ip-block";
import { Ipv6Cidr } from "../lib/address-plan";

export interface MetalProjectGuardProps {
  readonly projectId: string;
  readonly metro: string;
  /** The block the address plan was cut from (CLUSTER_IPV6_BLOCK). */
  readonly block: Ipv6Cidr;
}

/**
 * Plan-time checks that the settings describe the real Metal project, so a plan
 * built from the documentation defaults can never be applied.
 *
 * Metal allocates a project's public IPv6 /56 in a metro with its first device
 * there; `metal_precreated_ip_block` reads it (and fails to find it in a metro
 * where the project has no device yet; see README "First deploy").
 */
export class MetalProjectGuard extends Construct {
  readonly ipv6Block: DataMetalPrecreatedIpBlock;

  constructor(scope: Construct, id: string, props: MetalProjectGuardProps) {
    super(scope, id);
    const network = props.block.address(0);
    this.ipv6Block = new DataMetalPrecreatedIpBlock(this, "ipv6-block", {
      projectId: props.projectId,
      metro: props.metro,
      addressFamily: 6,
      public: true,
      lifecycle: {
        postcondition: [
          {
            // cidrhost() prints the address the way Go does (RFC 5952), as the plan does.
            condition: `\${self.cidr == ${props.block.length} && cidrhost(self.cidr_notation, 0) == "${network}"}`,
            errorMessage:
              `CLUSTER_IPV6_BLOCK=${props.block} is not this project's public IPv6 block in metro ${props.metro}. ` +
              `Set CLUSTER_IPV6_BLOCK to the project's /56 there (Metal console, IPs & Networks; or the cidr_notation ` +
              `of this data source in the plan output) and synthesize again: pod and Service addresses are cut from it.`,
          },
        ],
      },
    });
  }
}
