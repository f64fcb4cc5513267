import { CloudBackend, LocalBackend, NamedCloudWorkspace, TerraformStack } from "cdktf";
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
