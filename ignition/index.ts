/**
 * Flatcar Ignition (spec 3.3.0) for a node, built as a typed object and serialized
 * once into the device's user data.
 */
import { escapeTerraformTemplate } from "./terraform-escape";
import { IgnitionConfig, IGNITION_SPEC_VERSION, dataUrl } from "./types";

export interface NodeIgnitionInput {
  /** RFC 1123 hostname, also the Kubernetes node name. */
  readonly hostname: string;
}

export function renderNodeIgnition(input: NodeIgnitionInput): IgnitionConfig {
  return {
    ignition: { version: IGNITION_SPEC_VERSION },
    storage: {
      files: [{ path: "/etc/hostname", mode: 0o644, overwrite: true, contents: { source: dataUrl(`${input.hostname}\n`) } }],
    },
  };
}

/** Serializes a config for `metal_device.user_data`: compact JSON with Terraform template syntax escaped. */
export function toUserData(config: IgnitionConfig): string {
  return escapeTerraformTemplate(JSON.stringify(config));
}
