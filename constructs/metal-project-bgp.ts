import { Construct } from "constructs";
import { ITerraformDependable, TerraformStack, TerraformVariable } from "cdktf";
import { DataMetalProject } from "../.gen/providers/metal/data-metal-project";
import { Project } from "../.gen/providers/metal/project";

export interface MetalProjectBgpProps {
  /** The existing Metal project (METAL_PROJECT_ID). */
  readonly projectId: string;
  /** The project's customer ASN for local BGP (METAL_BGP_ASN). */
  readonly asNumber: number;
  /** Prefixes one node announces at most (the prefix budget's total); `max_prefix` must allow them. */
  readonly prefixesPerNode: number;
  /** LOCAL_SERVICE_ROUTES, named in the message when `max_prefix` is too small. */
  readonly localServiceRoutes: number;
  /**
   * The sensitive BGP password variable, when the sessions use one (METAL_BGP_MD5_ENABLED=true).
   * Used only as a reference: the value never reaches synth.
   * @default - no password
   */
  readonly md5Password?: TerraformVariable;
  /**
   * Whether the app sets the project's BGP config (METAL_MANAGE_PROJECT_BGP=true): the
   * project is adopted with an import block and never deleted. Otherwise the plan only
   * checks a config set by hand.
   * @default false
   */
  readonly manageBgpConfig?: boolean;
}

/** Terraform address of the adopted project: short, because `terraform state rm` takes it (docs/bgp-fabric.md). */
export const MANAGED_PROJECT_ADDRESS = "metal_project.project";

/**
 * Attributes of the adopted project the app leaves alone. organization_id is ForceNew in
 * the provider (a diff would mean replacing, i.e. deleting, the project); payment_method_id
 * is the owner's business; backend_transfer has a provider default of false that would
 * switch off a setting the owner made. `name` needs no entry: it is read from the project.
 */
export const MANAGED_PROJECT_IGNORED_CHANGES = ["organization_id", "payment_method_id", "backend_transfer"] as const;

/**
 * The Metal side of the fabric's BGP: the project's local BGP config the devices' sessions
 * need (deployment type local, the customer ASN, the optional password) and its route
 * limit (`max_prefix`).
 *
 * Always reads the project (`data.metal_project`). Unmanaged (the default), the plan fails
 * unless local BGP is already enabled as the settings say. Managed, the existing project is
 * adopted as a `metal_project` resource with an import block (Terraform >= 1.5) and a
 * `bgp_config`: the first deploy enables BGP, later ones change nothing. The app never
 * creates a project: the address plan is cut at synth time from the project's IPv6 /56,
 * which Metal allocates only with the first device in the metro (docs/bgp-fabric.md).
 */
export class MetalProjectBgp extends Construct {
  /** The project as Metal reports it at plan time. */
  readonly project: DataMetalProject;
  /** The adopted project, when the app manages its BGP config. */
  readonly managedProject?: Project;
  /** What each device's BGP session must wait for: Metal refuses sessions in a project without BGP. */
  readonly sessionDependencies: readonly ITerraformDependable[];

  constructor(scope: Construct, id: string, props: MetalProjectBgpProps) {
    super(scope, id);
    const manage = props.manageBgpConfig ?? false;
    const md5Enabled = props.md5Password !== undefined;
    const { projectId, asNumber } = props;

    // coalesce(): while the adopted project's new bgp_config is only planned, the provider
    // leaves its computed attributes null (not unknown), and null >= n is an error.
    const reportedMaxPrefix = "try(coalesce(self.bgp_config[0].max_prefix, 0), 0)";
    const maxPrefix = {
      // An unreported max_prefix (0, null, or no config yet) is not held against the plan.
      condition: `\${${reportedMaxPrefix} == 0 || ${reportedMaxPrefix} >= ${props.prefixesPerNode}}`,
      errorMessage:
        `Each node announces up to ${props.prefixesPerNode} prefixes (LOCAL_SERVICE_ROUTES=${props.localServiceRoutes}) but project ` +
        `${projectId} accepts fewer per server (bgp_config max_prefix): lower LOCAL_SERVICE_ROUTES. See docs/bgp-fabric.md.`,
    };

    this.project = new DataMetalProject(this, "project", {
      projectId,
      lifecycle: { postcondition: manage ? [...adoptableConfig(props, md5Enabled), maxPrefix] : [...requiredConfig(props, md5Enabled), maxPrefix] },
    });

    if (!manage) {
      this.sessionDependencies = [];
      return;
    }

    // import blocks are Terraform 1.5 syntax; an older Terraform would stop on an unknown block.
    TerraformStack.of(this).addOverride("terraform.required_version", ">= 1.5.0");

    const project = new Project(this, "managed", {
      // name is required, and a different one would rename the project (provider docs,
      // "Enabling BGP in an existing project"): use the project's own.
      name: this.project.name,
      // Set once: a config cannot be removed (provider docs), and the data source's
      // conditions above refuse a plan that would change an existing one.
      bgpConfig: { deploymentType: "local", asn: asNumber, md5: props.md5Password?.stringValue },
      lifecycle: {
        // Adopted, never owned: `cdktf destroy` stops with an error instead of deleting it.
        preventDestroy: true,
        ignoreChanges: [...MANAGED_PROJECT_IGNORED_CHANGES],
        postcondition: [
          {
            // Local BGP is normally usable at once (provider docs: only global BGP is reviewed).
            // At plan time the config to be created has no status yet (null): the check
            // counts once Metal reports one, after apply.
            condition: `\${try(coalesce(self.bgp_config[0].status, "enabled"), "") == "enabled"}`,
            errorMessage:
              `Metal has not enabled local BGP on project ${projectId} yet (bgp_config status is not "enabled"), so the ` +
              `devices' BGP sessions were not requested. Check \`metal project bgp-config -p ${projectId}\` and deploy again once it is enabled.`,
          },
          maxPrefix,
        ],
      },
    });
    project.overrideLogicalId(MANAGED_PROJECT_ADDRESS.split(".")[1]);
    project.importFrom(projectId);
    this.managedProject = project;
    this.sessionDependencies = [project];
  }
}

/** Unmanaged: local BGP must already be enabled with the settings' ASN and password presence. */
function requiredConfig(props: MetalProjectBgpProps, md5Enabled: boolean) {
  const { projectId, asNumber } = props;
  return [
    {
      // try(): Terraform's && does not short-circuit and bgp_config is empty when BGP is off.
      condition:
        `\${try(self.bgp_config[0].deployment_type, "") == "local" && try(self.bgp_config[0].status, "") == "enabled" && ` +
        `try(self.bgp_config[0].asn, 0) == ${asNumber}}`,
      errorMessage:
        `Metal project ${projectId} must have local BGP enabled with ASN ${asNumber} (METAL_BGP_ASN=${asNumber}): ` +
        `the nodes peer with the routers as that AS. Enable it in the console (Project Settings, BGP, Local) or with ` +
        `\`metal project bgp-enable --project-id ${projectId} --deployment-type local --asn ${asNumber}\`, ` +
        `set METAL_MANAGE_PROJECT_BGP=true to let the app enable it, or set METAL_BGP_ASN to the project's ASN. See docs/bgp-fabric.md.`,
    },
    {
      condition: `\${(try(self.bgp_config[0].md5, "") != "") == ${md5Enabled}}`,
      errorMessage: md5Enabled
        ? `METAL_BGP_MD5_ENABLED=true but project ${projectId} has no BGP password: set METAL_BGP_MD5_ENABLED=false, or give the project one.`
        : `Project ${projectId} uses a BGP password: set METAL_BGP_MD5_ENABLED=true and pass the password as TF_VAR_metal_bgp_md5_password.`,
    },
  ];
}

/**
 * Managed: no BGP config yet (the resource sets it), or one equal to what the resource
 * declares. The provider could update it (a new POST of bgp-configs), but the nodes keep the
 * ASN and password their first boot applied (Calico manifests from the init node), so a
 * change here would drop every session; and a config can never be removed.
 */
function adoptableConfig(props: MetalProjectBgpProps, md5Enabled: boolean) {
  const { projectId, asNumber } = props;
  // try(): length(null) is an error, and an error is not false in a condition.
  const none = "try(length(self.bgp_config), 0) == 0";
  return [
    {
      condition: `\${${none} || (try(self.bgp_config[0].deployment_type, "") == "local" && try(self.bgp_config[0].asn, 0) == ${asNumber})}`,
      errorMessage:
        `Metal project ${projectId} already has a BGP config that is not local BGP with ASN ${asNumber} (METAL_BGP_ASN=${asNumber}, ` +
        `METAL_MANAGE_PROJECT_BGP=true). The app does not change an existing config: the nodes peer with the ASN their first boot ` +
        `applied, and a config cannot be removed. Set METAL_BGP_ASN to the project's ASN (\`metal project bgp-config -p ${projectId}\`), ` +
        `or use another project. See docs/bgp-fabric.md.`,
    },
    md5Enabled
      ? {
          // Compares with the sensitive variable; Terraform prints neither value.
          condition: `\${${none} || try(self.bgp_config[0].md5, "") == var.${props.md5Password!.friendlyUniqueId}}`,
          errorMessage:
            `Project ${projectId} already has local BGP with a different password, or none, than TF_VAR_metal_bgp_md5_password ` +
            `(METAL_BGP_MD5_ENABLED=true, METAL_MANAGE_PROJECT_BGP=true). The app does not change an existing config (the nodes keep ` +
            `the password their first boot applied): pass the project's password, or set METAL_BGP_MD5_ENABLED=false if it has none.`,
        }
      : {
          condition: `\${${none} || try(self.bgp_config[0].md5, "") == ""}`,
          errorMessage:
            `Project ${projectId} already uses a BGP password (METAL_MANAGE_PROJECT_BGP=true): set METAL_BGP_MD5_ENABLED=true and pass ` +
            `the password as TF_VAR_metal_bgp_md5_password.`,
        },
  ];
}
