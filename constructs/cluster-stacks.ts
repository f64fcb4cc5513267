import { App, ITerraformDependable } from "cdktf";
import { ClusterSettings } from "../lib/settings";
import { ClusterConfigStack, configStackName } from "./cluster-config-stack";
import { ClusterStack } from "./cluster-stack";
import { FirstBootWait } from "./first-boot-wait";
import { IPv6Node } from "./ipv6-node";

/**
 * The stacks of one cluster, as main.ts and the tests compose them: the cluster stack,
 * and with CONFIG_STACK_RUNNER_PREFIX its configuration stack `<cluster>-config`, which
 * the cluster stack's first apply waits for (CONFIG_STACK_WAIT_MINUTES) so that one
 * `cdktf deploy '*'` converges both.
 */
export function addClusterStacks(app: App, settings: ClusterSettings): { cluster: ClusterStack; config?: ClusterConfigStack; wait?: FirstBootWait } {
  const cluster = new ClusterStack(app, settings.clusterName, settings);
  if (!settings.configStack) return { cluster };
  const config = new ClusterConfigStack(app, configStackName(settings.clusterName), {
    cluster,
    adoptFirstBoot: settings.configStack.adoptFirstBoot,
    terraformCloud: settings.terraformCloud,
  });
  if (settings.configStack.waitMinutes === 0) return { cluster, config };
  const init = cluster.nodes[0];
  const wait = new FirstBootWait(cluster, "first-boot-wait", {
    apiServerUrl: cluster.controlPlane.apiServerUrl,
    caPem: cluster.controlPlane.clusterCaCertificatePem,
    clientCertPem: cluster.controlPlane.adminCredential.certPem,
    clientKeyPem: cluster.controlPlane.adminCredential.keyPem,
    objects: config.objects.map((o) => o.object),
    waitMinutes: settings.configStack.waitMinutes,
    after: init instanceof IPv6Node ? [init.device] : ([init.profile, init.installGroup, init.installedGroup] as ITerraformDependable[]),
    oncePer: cluster.controlPlane.clusterCaCertificatePem,
  });
  return { cluster, config, wait };
}
