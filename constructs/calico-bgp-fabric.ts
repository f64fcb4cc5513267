import { Construct } from "constructs";
import { Fn, TerraformVariable } from "cdktf";
import { DataMetalProject } from "../.gen/providers/metal/data-metal-project";
import { NodeFile } from "../ignition";
import { AddressPlan } from "../lib/address-plan";
import { AddonManifest, CalicoInput, POD_BLOCK_PREFIX_LENGTH, RouterIdSource, RouterPeer, calicoAddonManifests } from "../lib/calico";
import { PrefixBudget, checkPrefixBudget } from "../lib/prefix-budget";
import { MetalProjectBgp } from "./metal-project-bgp";

export interface CalicoBgpFabricProps {
  /** The existing Metal project (METAL_PROJECT_ID) whose BGP config the plan checks or sets. */
  readonly projectId: string;
  readonly plan: AddressPlan;
  /** The project's customer ASN (METAL_BGP_ASN). */
  readonly asNumber: number;
  /** Local Service /128s one node may announce (LOCAL_SERVICE_ROUTES). */
  readonly localServiceRoutes: number;
  /**
   * Whether the sessions use the project's MD5 password; if so the sensitive Terraform
   * variable `metal_bgp_md5_password` (TF_VAR_metal_bgp_md5_password) is declared.
   * @default false
   */
  readonly md5Enabled?: boolean;
  /**
   * The kubelet's FlexVolume dir (lib/kubeadm.ts VOLUME_PLUGIN_DIR).
   * @default DEFAULT_FLEX_VOLUME_PATH of lib/calico.ts
   */
  readonly flexVolumePath?: string;
  /**
   * @default "private-ipv4"
   */
  readonly routerIdSource?: RouterIdSource;
  /**
   * Whether the app sets the project's local BGP config (METAL_MANAGE_PROJECT_BGP) instead of
   * only checking it; see MetalProjectBgp.
   * @default false
   */
  readonly manageProjectBgp?: boolean;
  /**
   * The routers the nodes peer with.
   * @default METAL_ROUTER_PEERS of lib/calico.ts
   */
  readonly peers?: readonly RouterPeer[];
  /**
   * Whether the routers are Metal's, so the plan checks (or sets) the project's BGP config.
   * false for the operator's own routers (NODE_TARGET=matchbox): nothing Metal is read.
   * @default true
   */
  readonly metalProject?: boolean;
}

/** Name of the sensitive Terraform variable that carries the BGP password. */
export const BGP_PASSWORD_VARIABLE = "metal_bgp_md5_password";

/**
 * The Calico BGP fabric: what the first control plane applies at its first boot
 * (`nodeFiles` + `addonManifests` for its Ignition), and the Metal project's BGP config
 * those manifests assume: checked at plan time, or set by the app (MetalProjectBgp).
 *
 * Nothing here is per node: the peers are global, so nodes added later need nothing.
 */
export class CalicoBgpFabric extends Construct {
  /** Files for the init node: the manifests, in apply order. */
  readonly nodeFiles: readonly NodeFile[];
  /** Paths among nodeFiles, in the order the init node applies them. */
  readonly addonManifests: readonly string[];
  /** The manifests themselves, in that order (the configuration stack keeps the same objects). */
  readonly manifests: readonly AddonManifest[];
  readonly prefixBudget: PrefixBudget;
  /** The sensitive BGP password variable (md5Enabled), for what else must hold the same password (the routers' configurations). */
  readonly md5Password?: TerraformVariable;
  /** The Metal project (undefined without metalProject). */
  readonly project?: DataMetalProject;
  /** The project's BGP config; its `sessionDependencies` go to every device's BGP session (undefined without metalProject). */
  readonly projectBgp?: MetalProjectBgp;

  constructor(scope: Construct, id: string, props: CalicoBgpFabricProps) {
    super(scope, id);
    const md5Enabled = props.md5Enabled ?? false;
    this.prefixBudget = checkPrefixBudget({ blockPrefixLength: POD_BLOCK_PREFIX_LENGTH, localServiceRoutes: props.localServiceRoutes });

    const password = md5Enabled ? bgpPasswordVariable(this) : undefined;
    this.md5Password = password;

    const input: CalicoInput = {
      plan: props.plan,
      asNumber: props.asNumber,
      md5Password: md5Enabled,
      flexVolumePath: props.flexVolumePath,
      routerIdSource: props.routerIdSource,
      localServiceRoutes: props.localServiceRoutes,
      peers: props.peers,
    };
    const manifests = calicoAddonManifests(input);
    this.manifests = manifests;
    this.nodeFiles = manifests.map((m) => toNodeFile(m, password));
    this.addonManifests = manifests.map((m) => m.path);

    // The Metal side: the project's BGP config, checked or (METAL_MANAGE_PROJECT_BGP) set.
    if (props.metalProject === false) return;
    this.projectBgp = new MetalProjectBgp(this, "project-bgp", {
      projectId: props.projectId,
      asNumber: props.asNumber,
      prefixesPerNode: this.prefixBudget.total,
      localServiceRoutes: props.localServiceRoutes,
      md5Password: password,
      manageBgpConfig: props.manageProjectBgp,
    });
    this.project = this.projectBgp.project;
  }
}

/**
 * The sensitive variable `metal_bgp_md5_password` in `scope`'s stack: the cluster stack's
 * (the nodes' user data) and the configuration stack's (the Secret it keeps) read the same
 * TF_VAR_. The password is apply-time only, never a setting, so it appears in cdktf.out
 * only as a reference.
 */
export function bgpPasswordVariable(scope: Construct, id = "md5-password"): TerraformVariable {
  const password = new TerraformVariable(scope, id, {
    type: "string",
    sensitive: true,
    nullable: false,
    description: "The Metal project's local BGP MD5 password (set TF_VAR_metal_bgp_md5_password). Used only when METAL_BGP_MD5_ENABLED=true.",
    validation: [
      {
        // Metal and BIRD take up to 80 printable characters (TCP MD5 key limit).
        condition: `\${length(var.${BGP_PASSWORD_VARIABLE}) > 0 && length(var.${BGP_PASSWORD_VARIABLE}) <= 80}`,
        errorMessage: "metal_bgp_md5_password must be 1 to 80 characters: the project's BGP password (METAL_BGP_MD5_ENABLED=true).",
      },
    ],
  });
  password.overrideLogicalId(BGP_PASSWORD_VARIABLE);
  return password;
}

function toNodeFile(manifest: AddonManifest, password: TerraformVariable | undefined): NodeFile {
  if ("yaml" in manifest) return { path: manifest.path, mode: 0o644, text: manifest.yaml };
  if ("remote" in manifest) return { path: manifest.path, mode: 0o644, remote: manifest.remote };
  if (!password) throw new Error(`${manifest.path} needs the BGP password variable`);
  // prefix is a whole number of 3-byte groups, so the two base64 strings concatenate.
  const known = Buffer.from(manifest.secretPrefix, "utf8").toString("base64");
  // 0600: the file holds the password (base64 is not encryption).
  return { path: manifest.path, mode: 0o600, base64: `${known}${Fn.base64encode(Fn.base64encode(password.stringValue))}` };
}
