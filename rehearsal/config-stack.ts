/**
 * The configuration stack (constructs/cluster-config-stack.ts) run by the real Terraform
 * and the hashicorp/kubernetes provider built from its pinned source, against whatever
 * API server the cluster stack's outputs name: a running cluster rehearsal's, or a bare
 * API server of a test.
 *
 * Entry point for a live run: synth with CONFIG_STACK_RUNNER_PREFIX set, then
 *
 *   const config = new ConfigStackRehearsal(readStack(outdir, `${cluster}-config`), dir, clusterStateFile);
 *   config.init(); config.validate(); const { plan } = config.plan(); config.apply();
 *   config.changesPlanned(); // false: converged
 *
 * where clusterStateFile is the cluster stack's state (a StackRehearsal's
 * `<its dir>/terraform.tfstate`), or clusterOutputsState() written to a file.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { FIRST_BOOT_WAIT_ENV } from "../lib/first-boot-wait";
import { PlanJson, Terraform } from "./terraform";

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The remote state data source the stack reads the cluster's outputs through (stackStateReader). */
export const CLUSTER_STATE_DATA_SOURCE = "cluster";

/**
 * The stack as Terraform runs it here: its own state in a local file, and the cluster's
 * outputs read from `clusterStateFile` instead of where a deploy keeps them. Pure.
 */
export function configStackRoot(stack: Json, clusterStateFile: string, stateFile = "terraform.tfstate"): Json {
  const root: Json = JSON.parse(JSON.stringify(stack));
  root.terraform ??= {};
  delete root.terraform.cloud;
  root.terraform.backend = { local: { path: stateFile } };
  const remote = root.data?.terraform_remote_state?.[CLUSTER_STATE_DATA_SOURCE];
  if (!remote) throw new Error(`the stack has no data.terraform_remote_state.${CLUSTER_STATE_DATA_SOURCE}: is it a configuration stack?`);
  root.data.terraform_remote_state[CLUSTER_STATE_DATA_SOURCE] = { backend: "local", config: { path: path.resolve(clusterStateFile) } };
  return root;
}

/** Whether a synthesized stack is a configuration stack (it writes to a cluster's API server, not to Metal). */
export function isConfigStack(stack: Json): boolean {
  return stack.data?.terraform_remote_state?.[CLUSTER_STATE_DATA_SOURCE] !== undefined && stack.resource?.kubernetes_manifest !== undefined;
}

/** A Terraform state (format 4) that holds only outputs: what the configuration stack reads of a cluster. */
export function clusterOutputsState(outputs: Readonly<Record<string, { value: string; sensitive?: boolean }>>): string {
  const state = {
    version: 4,
    terraform_version: "1.5.7",
    serial: 1,
    lineage: "v6fabric-config-stack-outputs",
    outputs: Object.fromEntries(Object.entries(outputs).map(([name, o]) => [name, { value: o.value, type: "string", ...(o.sensitive ? { sensitive: true } : {}) }])),
    resources: [],
    check_results: null,
  };
  return `${JSON.stringify(state, null, 2)}\n`;
}

/** Variables that would point the kubernetes provider somewhere else than the cluster's outputs. */
const KUBERNETES_CLIENT_ENV = /^(KUBECONFIG|KUBE_.*)$/;

export class ConfigStackRehearsal {
  readonly terraform: Terraform;

  constructor(
    stack: Json,
    readonly dir: string,
    clusterStateFile: string,
    env: NodeJS.ProcessEnv = process.env,
    /** Where the runner is: a network namespace Terraform runs in (the fabric rehearsal's Internet), or here. */
    netns?: string,
  ) {
    fs.mkdirSync(dir, { recursive: true });
    this.write(stack, clusterStateFile);
    const clean = Object.fromEntries(Object.entries(env).filter(([k]) => !KUBERNETES_CLIENT_ENV.test(k)));
    this.terraform = new Terraform(dir, clean, {}, netns ? ["ip", "netns", "exec", netns] : []);
  }

  /** Replaces the root module with a new synth of the stack (changed settings). */
  write(stack: Json, clusterStateFile: string): void {
    fs.writeFileSync(path.join(this.dir, "main.tf.json"), `${JSON.stringify(configStackRoot(stack, clusterStateFile), null, 2)}\n`);
  }

  init(): void {
    this.terraform.must(["init", "-input=false", "-no-color"]);
  }

  validate(): void {
    this.terraform.must(["validate", "-no-color"]);
  }

  plan(file = "config.tfplan"): { plan: PlanJson & { resource_changes?: readonly { address: string; change: { actions: readonly string[]; importing?: unknown } }[] }; text: string } {
    const text = this.terraform.must(["plan", "-input=false", "-no-color", `-out=${file}`]).stdout;
    return { plan: this.terraform.json(["show", "-json", file]), text };
  }

  apply(file = "config.tfplan"): string {
    return this.terraform.must(["apply", "-input=false", "-no-color", file]).stdout;
  }

  /** `plan -detailed-exitcode`: false when the cluster already holds what the stack declares. */
  changesPlanned(): boolean {
    const result = this.terraform.run(["plan", "-input=false", "-no-color", "-detailed-exitcode"]);
    if (result.status === 0) return false;
    if (result.status === 2) return true;
    throw new Error(`terraform plan -detailed-exitcode failed (exit ${result.status}):\n${(result.stderr || result.stdout).trim()}`);
  }
}

/** What the first-boot wait reaches: an API server and the admin credential, as the cluster stack's references would resolve. */
export interface FirstBootWaitTarget {
  readonly apiUrl: string;
  readonly caPem: string;
  readonly clientCertPem: string;
  readonly clientKeyPem: string;
  readonly waitSeconds: number;
}

/**
 * The cluster stack's first-boot wait (constructs/first-boot-wait.ts) as a root module
 * of its own: the synthesized resource with its command unchanged, its references to
 * the cluster's PKI replaced by variables (the key sensitive, as tls_private_key's is),
 * and no dependency on the devices. Pure.
 */
export function firstBootWaitRoot(clusterStack: Json, target: FirstBootWaitTarget): Json {
  const found = Object.entries<Json>(clusterStack.resource?.terraform_data ?? {}).find(([, r]) => r.provisioner?.[0]?.["local-exec"]?.environment?.[FIRST_BOOT_WAIT_ENV.apiUrl]);
  if (!found) throw new Error("the cluster stack has no first-boot wait: is CONFIG_STACK_RUNNER_PREFIX set and CONFIG_STACK_WAIT_MINUTES above 0?");
  const [name, synthesized] = found;
  const resource: Json = JSON.parse(JSON.stringify(synthesized));
  delete resource.depends_on;
  delete resource["//"];
  resource.triggers_replace = ["rehearsal"];
  const e = FIRST_BOOT_WAIT_ENV;
  resource.provisioner[0]["local-exec"].environment = {
    [e.apiUrl]: "${var.api_url}",
    [e.caPem]: "${var.ca_pem}",
    [e.clientCertPem]: "${var.client_cert_pem}",
    [e.clientKeyPem]: "${var.client_key_pem}",
    [e.waitSeconds]: "${var.wait_seconds}",
  };
  return {
    variable: {
      api_url: { default: target.apiUrl },
      ca_pem: { default: target.caPem },
      client_cert_pem: { default: target.clientCertPem },
      client_key_pem: { default: target.clientKeyPem, sensitive: true },
      wait_seconds: { default: String(target.waitSeconds) },
    },
    resource: { terraform_data: { [name]: resource } },
  };
}
