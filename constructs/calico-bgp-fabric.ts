import { Construct } from "constructs";
import { Fn, TerraformVariable } from "cdktf";
import { DataMetalProject } from "../.gen/providers/metal/data-metal-project";
import { NodeFile } from "../ignition";
import { AddressPlan } from "../lib/address-plan";
import { AddonManifest, CalicoInput, POD_BLOCK_PREFIX_LENGTH, RouterIdSource, calicoAddonManifests } from "../lib/calico";
import { PrefixBudget, checkPrefixBudget } from "../lib/prefix-budget";

export interface CalicoBgpFabricProps {
  /** The existing Metal project (METAL_PROJECT_ID) whose BGP config the plan checks. */
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
}

/** Name of the sensitive Terraform variable that carries the BGP password. */
export const BGP_PASSWORD_VARIABLE = "metal_bgp_md5_password";

/**
 * The Calico BGP fabric: what the first control plane applies at its first boot
 * (`nodeFiles` + `addonManifests` for its Ignition), and a plan-time check that the
 * Metal project's BGP config is what those manifests assume.
 *
 * Nothing here is per node: the peers are global, so nodes added later need nothing.
 */
export class CalicoBgpFabric extends Construct {
  /** Files for the init node: the manifests, in apply order. */
  readonly nodeFiles: readonly NodeFile[];
  /** Paths among nodeFiles, in the order the init node applies them. */
  readonly addonManifests: readonly string[];
  readonly prefixBudget: PrefixBudget;
  readonly project: DataMetalProject;

  constructor(scope: Construct, id: string, props: CalicoBgpFabricProps) {
    super(scope, id);
    const md5Enabled = props.md5Enabled ?? false;
    this.prefixBudget = checkPrefixBudget({ blockPrefixLength: POD_BLOCK_PREFIX_LENGTH, localServiceRoutes: props.localServiceRoutes });

    // The password is apply-time only: a sensitive variable, never a setting, so it
    // appears in cdktf.out only as a reference.
    const password = md5Enabled
      ? new TerraformVariable(this, "md5-password", {
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
        })
      : undefined;
    password?.overrideLogicalId(BGP_PASSWORD_VARIABLE);

    const input: CalicoInput = {
      plan: props.plan,
      asNumber: props.asNumber,
      md5Password: md5Enabled,
      flexVolumePath: props.flexVolumePath,
      routerIdSource: props.routerIdSource,
    };
    const manifests = calicoAddonManifests(input);
    this.nodeFiles = manifests.map((m) => toNodeFile(m, password));
    this.addonManifests = manifests.map((m) => m.path);

    // metal 3.3.0 sets a project's BGP config only on a metal_project resource; the
    // project here exists already, so the plan checks it instead (docs/bgp-fabric.md
    // says how to enable local BGP on it).
    this.project = new DataMetalProject(this, "project", {
      projectId: props.projectId,
      lifecycle: {
        postcondition: [
          {
            // try(): Terraform's && does not short-circuit and bgp_config is empty when BGP is off.
            condition:
              `\${try(self.bgp_config[0].deployment_type, "") == "local" && try(self.bgp_config[0].status, "") == "enabled" && ` +
              `try(self.bgp_config[0].asn, 0) == ${props.asNumber}}`,
            errorMessage:
              `Metal project ${props.projectId} must have local BGP enabled with ASN ${props.asNumber} (METAL_BGP_ASN=${props.asNumber}): ` +
              `the nodes peer with the routers as that AS. Enable it in the console (Project Settings, BGP, Local) or with ` +
              `\`metal project bgp-enable --project-id ${props.projectId} --deployment-type local --asn ${props.asNumber}\`, ` +
              `or set METAL_BGP_ASN to the project's ASN. See docs/bgp-fabric.md.`,
          },
          {
            condition: `\${(try(self.bgp_config[0].md5, "") != "") == ${md5Enabled}}`,
            errorMessage: md5Enabled
              ? `METAL_BGP_MD5_ENABLED=true but project ${props.projectId} has no BGP password: set METAL_BGP_MD5_ENABLED=false, or give the project one.`
              : `Project ${props.projectId} uses a BGP password: set METAL_BGP_MD5_ENABLED=true and pass the password as TF_VAR_${BGP_PASSWORD_VARIABLE}.`,
          },
          {
            // An unreported max_prefix (0) is not held against the plan.
            condition: `\${try(self.bgp_config[0].max_prefix, 0) == 0 || try(self.bgp_config[0].max_prefix, 0) >= ${this.prefixBudget.total}}`,
            errorMessage:
              `Each node announces up to ${this.prefixBudget.total} prefixes (LOCAL_SERVICE_ROUTES=${props.localServiceRoutes}) but project ` +
              `${props.projectId} accepts fewer per server (bgp_config max_prefix): lower LOCAL_SERVICE_ROUTES. See docs/bgp-fabric.md.`,
          },
        ],
      },
    });
  }
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
