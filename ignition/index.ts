/**
 * Flatcar Ignition (spec 3.3.0) for a node, built as a typed object and serialized
 * once into the device's user data.
 *
 * CONTRACT used by the constructs (see constructs/cluster-stack.ts):
 * - `renderNodeIgnition(input)` returns the node's IgnitionConfig.
 * - `toUserData(config)` serializes it for metal_device.user_data.
 * - Files that hold apply-time secrets carry cdktf tokens (Terraform references).
 *   A `NodeFile` is either plain `text` (which may contain tokens whose resolved
 *   value is URL-safe, such as a bootstrap token) or `base64`: one Terraform
 *   expression that yields the whole file base64-encoded (Fn.base64encode(pem)).
 */
import { KubernetesRelease } from "../lib/versions";
import { escapeTerraformTemplate } from "./terraform-escape";
import { IgnitionConfig, IGNITION_SPEC_VERSION, dataUrl } from "./types";

/** What a node does at first boot: kubeadm init (the first control plane), join as control plane, join as worker. */
export type BootRole = "init" | "control-plane" | "worker";

export type NodeFile =
  | { readonly path: string; readonly mode: number; readonly text: string }
  | { readonly path: string; readonly mode: number; readonly base64: string };

export interface NodeIgnitionInput {
  /** RFC 1123 hostname, also the Kubernetes node name. */
  readonly hostname: string;
  readonly role: BootRole;
  /** Binaries to install, with their hashes. */
  readonly kubernetes: KubernetesRelease;
  /** kubeadm config for this role (YAML, with BOOT_VALUES placeholders). */
  readonly kubeadmConfig: string;
  /** Files for this node only: PKI on control planes, discovery kubeconfig, addon manifests on init. */
  readonly files: readonly NodeFile[];
  /** Manifests (paths among `files`) to `kubectl apply` after `kubeadm init`, in order. Only for role "init". */
  readonly addonManifests?: readonly string[];
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
