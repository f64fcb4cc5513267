import { App } from "cdktf";
import { ClusterSettings } from "../lib/settings";
import { ClusterConfigStack, configStackName } from "./cluster-config-stack";
import { ClusterStack } from "./cluster-stack";

/**
 * The stacks of one cluster, as main.ts and the tests compose them: the cluster stack,
 * and with CONFIG_STACK_RUNNER_PREFIX its configuration stack `<cluster>-config`.
 */
export function addClusterStacks(app: App, settings: ClusterSettings): { cluster: ClusterStack; config?: ClusterConfigStack } {
  const cluster = new ClusterStack(app, settings.clusterName, settings);
  if (!settings.configStack) return { cluster };
  const config = new ClusterConfigStack(app, configStackName(settings.clusterName), {
    cluster,
    adoptFirstBoot: settings.configStack.adoptFirstBoot,
    terraformCloud: settings.terraformCloud,
  });
  return { cluster, config };
}
