import { Construct } from "constructs";
import { DataResource, Fn, TerraformResource, TerraformStack, propertyAccess } from "cdktf";
import { Manifest } from "@cdktf/provider-kubernetes/lib/manifest";
import { DataKubernetesResources } from "@cdktf/provider-kubernetes/lib/data-kubernetes-resources";
import { KubernetesProvider } from "@cdktf/provider-kubernetes/lib/provider";
import { escapeTerraformTemplate } from "../ignition/terraform-escape";
import { ADDON_FIELD_MANAGER, ConfigObject, configurationObjects } from "../lib/cluster-config";
import { TerraformCloudSettings } from "../lib/settings";
import { configureBackend, stackStateReader } from "./backend";
import { bgpPasswordVariable } from "./calico-bgp-fabric";
import { ClusterStack } from "./cluster-stack";
import { CONTROL_PLANE_OUTPUTS } from "./kubeadm-control-plane";

export interface ClusterConfigStackProps {
  /** The cluster whose first-boot objects this stack keeps, and whose outputs it reads. */
  readonly cluster: ClusterStack;
  /**
   * Whether the plan imports the objects first boot applied (CONFIG_STACK_ADOPT).
   * @default true
   */
  readonly adoptFirstBoot?: boolean;
  /**
   * Terraform Cloud, for this stack's state and for reading the cluster's.
   * @default undefined (local state files)
   */
  readonly terraformCloud?: TerraformCloudSettings;
}

/** The configuration stack's name for a cluster stack. */
export function configStackName(clusterStackName: string): string {
  return `${clusterStackName}-config`;
}

/**
 * The cluster's configuration, kept by Terraform after first boot: one kubernetes_manifest
 * (server-side apply) per object the init node's user data applies, from the same
 * rendered manifests (lib/cluster-config.ts), so a changed setting reaches the running
 * cluster with `cdktf deploy '*'` while first boot still converges a new cluster alone.
 *
 * It reads the API URL, the CA and the admin credential from the cluster stack's
 * outputs (its state), and depends on that stack so cdktf deploys the cluster first.
 * Nothing here is Metal's or Matchbox's: the same stack serves both targets.
 */
export class ClusterConfigStack extends TerraformStack {
  /** The objects kept, by ConfigObject id. */
  readonly manifests: Readonly<Record<string, Manifest>>;
  readonly objects: readonly ConfigObject[];

  constructor(scope: Construct, id: string, props: ClusterConfigStackProps) {
    super(scope, id);
    configureBackend(this, id, props.terraformCloud);
    this.addDependency(props.cluster);

    const cluster = stackStateReader(this, "cluster", props.cluster.node.id, props.terraformCloud);
    const kubeconfig = Fn.yamldecode(cluster.getString(CONTROL_PLANE_OUTPUTS.adminKubeconfig));
    // The admin credential as the kubeconfig output already carries it: no second secret output.
    const adminUser = (field: string) => Fn.base64decode(Fn.tostring(propertyAccess(kubeconfig, ["users", 0, "user", field])));
    // The prebuilt bindings write the bare type ("kubernetes"); the full address names the
    // provider the mirror holds, as the other stacks' providers are named.
    this.addOverride("terraform.required_providers.kubernetes.source", "hashicorp/kubernetes");
    new KubernetesProvider(this, "kubernetes", {
      host: cluster.getString(CONTROL_PLANE_OUTPUTS.apiServerUrl),
      clusterCaCertificate: cluster.getString(CONTROL_PLANE_OUTPUTS.clusterCaCertificate),
      clientCertificate: adminUser("client-certificate-data"),
      clientKey: adminUser("client-key-data"),
    });

    this.objects = configurationObjects(props.cluster.firstBootManifests);
    // The one secret first boot applies is the BGP password: the same TF_VAR_ as the cluster stack's.
    const password = this.objects.some((o) => o.secretPath) ? bgpPasswordVariable(this) : undefined;
    const manifests: Record<string, Manifest> = {};
    // Calico's IPAM blocks, read at plan: an IPPool whose addresses are in use cannot be replaced.
    let blocks: DataKubernetesResources | undefined;
    // Each file's objects after the previous file's, as first boot orders them (BGP
    // before pools, policies before host endpoints: lib/calico.ts, lib/policies.ts).
    let previousFile: TerraformResource[] = [];
    let currentFile: TerraformResource[] = [];
    let currentPath: string | undefined;
    for (const object of this.objects) {
      if (object.manifestPath !== currentPath) {
        previousFile = currentFile.length > 0 ? currentFile : previousFile;
        currentFile = [];
        currentPath = object.manifestPath;
      }
      // A changed immutable field (an IPPool's CIDR) would be refused as an update:
      // replace the object instead, deleting the old one first (the name stays).
      const immutable = object.immutable
        ? new DataResource(this, `${object.id}-immutable`, { triggersReplace: escapeTemplates(object.immutable) as Record<string, string> })
        : undefined;
      const body = escapeTemplates(object.object) as Record<string, unknown>;
      let precondition: { condition: string; errorMessage: string }[] | undefined;
      if (immutable && object.object.kind === "IPPool") {
        blocks ??= new DataKubernetesResources(this, "ipam-blocks", { apiVersion: object.object.apiVersion, kind: "IPAMBlock" });
        const current = new DataKubernetesResources(this, `${object.id}-current`, { apiVersion: object.object.apiVersion, kind: "IPPool", fieldSelector: `metadata.name=${object.object.metadata.name}` });
        precondition = [ipPoolReplacementGuard(object.object, current, blocks)];
      }
      // Base64, as the node's file carries it after the prefix (constructs/calico-bgp-fabric.ts).
      if (object.secretPath && password) setAt(body, object.secretPath, Fn.base64encode(password.stringValue));
      const manifest = new Manifest(this, object.id, {
        manifest: body,
        // First boot's manager: the provider's apply then updates the fields first boot
        // set instead of sharing them with a second owner (docs/operations.md).
        fieldManager: { name: ADDON_FIELD_MANAGER, forceConflicts: true },
        dependsOn: previousFile.length > 0 ? [...previousFile] : undefined,
        // A plain address: Terraform's JSON syntax takes no `${}` in replace_triggered_by.
        lifecycle: immutable ? { replaceTriggeredBy: [`${immutable.terraformResourceType}.${immutable.friendlyUniqueId}`], precondition } : undefined,
        // A pool Calico still holds (its finalizer) fails the apply in minutes, not the provider's default 10.
        timeouts: precondition ? { delete: IPPOOL_DELETE_TIMEOUT } : undefined,
      });
      // The provider refuses to create an object that exists (manifest/provider/apply.go),
      // and first boot made these: adopt them. Import blocks are no-ops once in state.
      if (props.adoptFirstBoot ?? true) manifest.importFrom(object.importId);
      manifests[object.id] = manifest;
      currentFile.push(manifest);
    }
    this.manifests = manifests;
  }
}

/** How long an IPPool's deletion may wait for Calico to release its blocks. */
const IPPOOL_DELETE_TIMEOUT = "3m";

/**
 * Refuses, at plan, to replace an IPPool (a new CIDR or block size) while Services or
 * pods hold addresses from its current blocks: Calico's kube-controllers keeps a pool
 * whose blocks hold allocations (its `projectcalico.org/ippool-finalizer`,
 * kube-controllers/pkg/controllers/ippool/pool_controller.go), so the deletion would
 * wait for ever and leave the pool closed to new allocations. A block counts when its
 * CIDR is the pool's (the Local pool is one block: lib/calico.ts).
 */
function ipPoolReplacementGuard(pool: ConfigObject["object"], current: DataKubernetesResources, blocks: DataKubernetesResources): { condition: string; errorMessage: string } {
  const spec = pool.spec as { cidr: string; blockSize: number };
  const p = `data.${current.terraformResourceType}.${current.friendlyUniqueId}.objects`;
  const b = `data.${blocks.terraformResourceType}.${blocks.friendlyUniqueId}.objects`;
  const inUse = `[for blk in ${b} : blk if cidrsubnet(blk.spec.cidr, 0, 0) == cidrsubnet(p.spec.cidr, 0, 0) && length([for a in blk.spec.allocations : a if a != null]) > 0]`;
  const unchanged = `cidrsubnet(p.spec.cidr, 0, 0) == cidrsubnet("${spec.cidr}", 0, 0) && p.spec.blockSize == ${spec.blockSize}`;
  const setting = pool.metadata.name === "local-services-ipv6" ? "LOCAL_SERVICE_ROUTES changes the Local pool" : "a setting changes this IPPool";
  return {
    condition: `\${alltrue([for p in ${p} : ${unchanged} || length(${inUse}) == 0])}`,
    errorMessage:
      `\${join("", [for p in ${p} : "${setting}: IPPool ${pool.metadata.name} would be replaced (\${p.spec.cidr} becomes ${spec.cidr}), but \${length(${inUse})} of its blocks hold addresses in use. ` +
      `Calico deletes a pool only once its addresses are released, so the deploy would wait for ever. Release them first (delete those LoadBalancer Services or make them Cluster; kubectl get ipamblocks.projectcalico.org shows the blocks), then deploy again (docs/operations.md, section Fields that cannot change)." if !(${unchanged})])}`,
  };
}

/** Every string (and key) with Terraform's `${` and `%{` escaped: the objects are data, not templates. */
function escapeTemplates(value: unknown): unknown {
  if (typeof value === "string") return escapeTerraformTemplate(value);
  if (Array.isArray(value)) return value.map(escapeTemplates);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [escapeTerraformTemplate(k), escapeTemplates(v)]));
  }
  return value;
}

/** Sets `path` inside `target` (whose objects escapeTemplates made fresh) to `value`. */
function setAt(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  const parent = path.slice(0, -1).reduce<Record<string, unknown>>((node, key) => node[key] as Record<string, unknown>, target);
  parent[path[path.length - 1]] = value;
}
