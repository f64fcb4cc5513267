import { Construct } from "constructs";
import { DataResource, ITerraformDependable } from "cdktf";
import { KubernetesObject } from "../lib/cluster-config";
import { FIRST_BOOT_WAIT_ENV, firstBootWaitScript, objectApiPath } from "../lib/first-boot-wait";
import { escapeTerraformTemplate } from "../ignition/terraform-escape";

export interface FirstBootWaitProps {
  /** The API URL the runner reaches (the cluster stack's api_server_url). */
  readonly apiServerUrl: string;
  /** PEM of the cluster CA (a Terraform reference). */
  readonly caPem: string;
  /** The admin client certificate and key (Terraform references; the key is sensitive). */
  readonly clientCertPem: string;
  readonly clientKeyPem: string;
  /** What the configuration stack imports: the wait ends when each exists. */
  readonly objects: readonly KubernetesObject[];
  /** How long to wait before the apply fails (CONFIG_STACK_WAIT_MINUTES). */
  readonly waitMinutes: number;
  /** Starts after these (the init node). */
  readonly after: readonly ITerraformDependable[];
  /**
   * Runs again only when this changes: the cluster CA, so once per cluster and not
   * when the init node is replaced (first boot's objects stay in the cluster).
   */
  readonly oncePer: string;
}

/**
 * The cluster stack's last step when a configuration stack follows it: a
 * `terraform_data` whose create-time local-exec polls the API server until first boot
 * has applied every object the configuration stack imports (lib/first-boot-wait.ts).
 * cdktf deploys stacks in order, so `cdktf deploy '*'` then plans the configuration
 * stack only once its kinds are served and its objects exist.
 */
export class FirstBootWait extends Construct {
  readonly resource: DataResource;

  constructor(scope: Construct, id: string, props: FirstBootWaitProps) {
    super(scope, id);
    const e = FIRST_BOOT_WAIT_ENV;
    this.resource = new DataResource(this, "addons", {
      triggersReplace: { cluster_ca: props.oncePer },
      dependsOn: [...props.after],
      provisioners: [
        {
          type: "local-exec",
          interpreter: ["/bin/sh", "-c"],
          // The script is data: Terraform must not read its `${` as interpolation.
          command: escapeTerraformTemplate(firstBootWaitScript(props.objects.map(objectApiPath))),
          environment: {
            [e.apiUrl]: props.apiServerUrl,
            [e.caPem]: props.caPem,
            [e.clientCertPem]: props.clientCertPem,
            [e.clientKeyPem]: props.clientKeyPem,
            [e.waitSeconds]: String(props.waitMinutes * 60),
          },
        },
      ],
    });
  }
}
