import { Construct } from "constructs";
import { CloudBackend, DataTerraformRemoteState, DataTerraformRemoteStateLocal, LocalBackend, NamedCloudWorkspace, TerraformRemoteState, TerraformStack } from "cdktf";
import { TerraformCloudSettings } from "../lib/settings";

/**
 * State for `stack`: Terraform Cloud (one workspace per stack, `<prefix><stack>`)
 * when an organization is configured, otherwise a local file next to the project.
 *
 * The local path is relative on purpose: cdktf's default is absolute, which makes
 * the synthesized JSON differ between checkouts and pollutes pull-request diffs.
 */
export function configureBackend(stack: TerraformStack, stackName: string, cloud: TerraformCloudSettings | undefined): void {
  if (cloud) {
    new CloudBackend(stack, {
      hostname: cloud.hostname,
      organization: cloud.organization,
      workspaces: new NamedCloudWorkspace(`${cloud.workspacePrefix}${stackName}`),
    });
  } else {
    new LocalBackend(stack, { path: `terraform.${stackName}.tfstate` });
  }
}

/**
 * Reads the outputs of stack `stackName` from where configureBackend keeps its state:
 * its Terraform Cloud workspace (which must share its state with the reader's), or its
 * local file, named relative to the reader's own stack folder, since Terraform runs
 * each stack in `cdktf.out/stacks/<stack>/` (cdktf's own cross-stack reference would
 * name the file relative to the wrong folder with our relative paths).
 */
export function stackStateReader(scope: Construct, id: string, stackName: string, cloud: TerraformCloudSettings | undefined): TerraformRemoteState {
  if (cloud) {
    return new DataTerraformRemoteState(scope, id, {
      hostname: cloud.hostname,
      organization: cloud.organization,
      workspaces: { name: `${cloud.workspacePrefix}${stackName}` },
    });
  }
  return new DataTerraformRemoteStateLocal(scope, id, { path: `../${stackName}/terraform.${stackName}.tfstate` });
}
