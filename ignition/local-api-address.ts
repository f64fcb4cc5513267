/**
 * The boot-time half of the API endpoint design (docs/control-plane.md): control
 * planes answer the `kubernetes` Service ClusterIP themselves by holding it as a /128
 * on lo, so kubeadm and the kubelet reach an API server at controlPlaneEndpoint before
 * kube-proxy and the CNI exist.
 */
import type { BootRole, NodeIgnitionInput } from "./index";
import { renderTemplate } from "./templates";

export const LOCAL_API_ADDRESS_UNIT = "kubernetes-api-local-address.service";

/** The parts of a node's Ignition input this design adds. */
export type ControlPlaneBootstrapSteps = Required<Pick<NodeIgnitionInput, "kubeadmHooks" | "units">>;

/**
 * Idempotent command that puts the ClusterIP on lo as a /128. `preferred_lft 0` marks
 * the address deprecated: it still receives traffic, but the kernel never picks it as
 * the source address of other connections (RFC 6724 rule 3).
 */
export function addLocalApiAddressCommand(kubernetesServiceIp: string): string {
  return `ip -6 address replace ${kubernetesServiceIp}/128 dev lo preferred_lft 0`;
}

/** Idempotent command that takes the ClusterIP off lo again. */
export function removeLocalApiAddressCommand(kubernetesServiceIp: string): string {
  return `ip -6 address del ${kubernetesServiceIp}/128 dev lo 2>/dev/null || true`;
}

/** The unit that re-adds the ClusterIP on lo at every later boot of a control plane, before the kubelet. */
export function localApiAddressUnit(kubernetesServiceIp: string): { name: string; contents: string } {
  return {
    name: LOCAL_API_ADDRESS_UNIT,
    contents: renderTemplate(`units/${LOCAL_API_ADDRESS_UNIT}`, { KUBERNETES_SERVICE_IP: kubernetesServiceIp }),
  };
}

/**
 * What a node of `role` runs around kubeadm, and the unit for later boots:
 * - "init": before `kubeadm init`, put the ClusterIP on lo;
 * - "control-plane": before `kubeadm join`, make sure it is NOT on lo (a joining node
 *   must reach the existing API servers through the network, and a half-finished
 *   earlier attempt may have left it); after the join, once its own API server runs,
 *   put it there;
 * - "worker": nothing.
 */
export function controlPlaneBootstrapSteps(kubernetesServiceIp: string, role: BootRole): ControlPlaneBootstrapSteps {
  const add = addLocalApiAddressCommand(kubernetesServiceIp);
  switch (role) {
    case "init":
      return { kubeadmHooks: { beforeKubeadm: add }, units: [localApiAddressUnit(kubernetesServiceIp)] };
    case "control-plane":
      return {
        kubeadmHooks: { beforeKubeadm: removeLocalApiAddressCommand(kubernetesServiceIp), afterKubeadm: add },
        units: [localApiAddressUnit(kubernetesServiceIp)],
      };
    case "worker":
      return { kubeadmHooks: {}, units: [] };
  }
}
