/**
 * Whether the control-plane rehearsal can run on this machine, and why not: one place
 * for the suites that boot nodes (rehearsal-control-plane, rehearsal-fabric).
 */
import { kubeletSupport } from "../../rehearsal/kubelet";
import { nodeSupport } from "../../rehearsal/nodes";
import { toolsPresent, toolsUnavailable } from "../../rehearsal/tools";
import { hasCommand, installHint } from "./ignition";

/** The reason to skip, or "" when root, the tools, the commands and the kubelet's needs are all there. */
export function controlPlaneRehearsalSkipReason(commands: readonly string[]): string {
  const support = nodeSupport();
  if (!support.ok) return support.why;
  if (!toolsPresent(["terraform", "kubernetes"])) {
    return `the pinned Terraform, providers, Kubernetes and containerd builds are missing: ${toolsUnavailable(["terraform", "kubernetes"]) ?? "run `npm run tools` (.ci/run does)"}`;
  }
  const missing = commands.filter((t) => !hasCommand(t));
  if (missing.length > 0) return installHint(missing);
  const kubelet = kubeletSupport();
  return kubelet.ok ? "" : kubelet.why;
}
