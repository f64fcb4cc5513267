import { Construct } from "constructs";
import { Fn, TerraformLocal, TerraformVariable } from "cdktf";
import { Group } from "../.gen/providers/matchbox/group";
import { MatchboxProvider } from "../.gen/providers/matchbox/provider";
import { Profile } from "../.gen/providers/matchbox/profile";
import { escapeTerraformTemplate } from "../ignition/terraform-escape";
import { MachineMetadata, installIgnition, installImages, installKernelArgs, machineIgnition } from "../ignition/matchbox";
import { InventoryMachine } from "../lib/inventory";
import { validateHostname } from "../lib/naming";
import { PlanCondition } from "./nat64-package-source";

/** The Terraform variables that carry the provider's TLS client credentials (TF_VAR_<name>). */
export const MATCHBOX_CREDENTIAL_VARIABLES = { ca: "matchbox_ca", clientCert: "matchbox_client_cert", clientKey: "matchbox_client_key" } as const;

export interface MatchboxInstallProps {
  /** MATCHBOX_RPC_ENDPOINT, host:port of the gRPC API. */
  readonly rpcEndpoint: string;
  /** MATCHBOX_HTTP_ENDPOINT: where the machines reach Matchbox. */
  readonly httpEndpoint: string;
  /** FLATCAR_CHANNEL. */
  readonly channel: string;
  /** Name of the install profile (one for every machine). */
  readonly name: string;
}

/**
 * The Matchbox provider (its TLS client credentials are sensitive Terraform variables)
 * and the one install profile every machine boots first: Flatcar's PXE image running
 * flatcar-install (ignition/matchbox.ts).
 */
export class MatchboxInstall extends Construct {
  readonly profile: Profile;

  constructor(scope: Construct, id: string, props: MatchboxInstallProps) {
    super(scope, id);
    const credential = (name: string, what: string) => {
      const v = new TerraformVariable(this, name, { type: "string", sensitive: true, nullable: false, description: `${what} (PEM), for Matchbox's gRPC API (set TF_VAR_${name}).` });
      v.overrideLogicalId(name);
      return v.stringValue;
    };
    new MatchboxProvider(scope, "matchbox", {
      endpoint: props.rpcEndpoint,
      ca: credential(MATCHBOX_CREDENTIAL_VARIABLES.ca, "The CA that signed Matchbox's server certificate"),
      clientCert: credential(MATCHBOX_CREDENTIAL_VARIABLES.clientCert, "Terraform's client certificate"),
      clientKey: credential(MATCHBOX_CREDENTIAL_VARIABLES.clientKey, "Terraform's client key"),
    });
    const images = installImages(props.channel);
    this.profile = new Profile(this, "profile", {
      name: props.name,
      kernel: images.kernel,
      initrd: images.initrd,
      args: installKernelArgs({ httpEndpoint: props.httpEndpoint, channel: props.channel }).map(escapeTerraformTemplate),
      rawIgnition: installIgnition({ httpEndpoint: props.httpEndpoint, channel: props.channel }),
    });
  }
}

export interface MatchboxMachineProps {
  readonly machine: InventoryMachine;
  /** The node's user data, exactly as the Metal target would give its device. */
  readonly userData: string;
  /** The cluster's AS (METAL_BGP_ASN), for the metadata's bgp_neighbors. */
  readonly clusterAsn: number;
  readonly install: MatchboxInstall;
  /**
   * Conditions the plan checks before the machine's profile is written (as for a Metal device).
   * @default - none
   */
  readonly preconditions?: readonly PlanCondition[];
}

/**
 * One of the operator's machines: its installed profile (the Metal user data plus the
 * metadata source, ignition/matchbox.ts) and two groups selected by its MAC: without
 * `os=installed` the install profile, with it the installed one.
 */
export class MatchboxMachine extends Construct {
  readonly hostname: string;
  /** The machine's public IPv6 address (from the inventory, known at synth). */
  readonly publicIpv6: string;
  readonly profile: Profile;
  readonly installGroup: Group;
  readonly installedGroup: Group;
  /** The user data, as a Terraform local (the same string a Metal device's user_data would hold). */
  readonly userData: TerraformLocal;

  constructor(scope: Construct, id: string, props: MatchboxMachineProps) {
    super(scope, id);
    const m = props.machine;
    this.hostname = validateHostname(m.name);
    this.publicIpv6 = m.ipv6;
    this.userData = new TerraformLocal(this, "user-data", props.userData);
    const metadata: MachineMetadata = { hostname: m.name, mac: m.mac, ipv6: m.ipv6, ipv6PrefixLength: m.ipv6PrefixLength, gateway: m.gateway, privateIpv4: m.privateIpv4, clusterAsn: props.clusterAsn, neighbors: m.neighbors };
    this.profile = new Profile(this, "profile", {
      name: m.name,
      rawIgnition: machineIgnition(Fn.base64encode(this.userData.asString), metadata),
      lifecycle: { precondition: props.preconditions?.length ? [...props.preconditions] : undefined },
    });
    this.installGroup = new Group(this, "install", {
      name: `${m.name}-install`,
      profile: props.install.profile.name,
      selector: { mac: m.mac },
      metadata: { install_disk: m.installDisk },
    });
    this.installedGroup = new Group(this, "installed", {
      name: m.name,
      profile: this.profile.name,
      selector: { mac: m.mac, os: "installed" },
      // For readers of the synthesized stack (npm run report); Matchbox serves it at /metadata.
      metadata: { role: m.role },
    });
  }
}
