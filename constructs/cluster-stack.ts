import { Construct } from "constructs";
import { Fn, TerraformOutput, TerraformStack } from "cdktf";
import { MetalProvider } from "../.gen/providers/metal/provider";
import { BootRole, NODE_PATHS, NodeFile, renderNodeIgnition, toUserData } from "../ignition";
import { API_SERVER_PORT, DELETE_BOOTSTRAP_TOKENS_COMMAND, VOLUME_PLUGIN_DIR } from "../lib/kubeadm";
import { NodeRole, nodeHostname } from "../lib/naming";
import { FABRIC_SUMMARY_OUTPUT, fabricSummary } from "../lib/fabric-summary";
import { securityAddonManifests } from "../lib/policies";
import { dnsAddonManifest } from "../lib/coredns";
import { apiPathAddonManifest } from "../lib/api-path";
import { NAT64_DATA_DIR, NAT64_DEVICE, NAT64_POOL, NAT64_PREFIX, nat64Ruleset, taygaConfig } from "../lib/nat64";
import { ClusterSettings } from "../lib/settings";
import { KUBERNETES_RELEASES, TAYGA } from "../lib/versions";
import { configureBackend } from "./backend";
import { BGP_PASSWORD_VARIABLE, CalicoBgpFabric } from "./calico-bgp-fabric";
import { IPv6Node } from "./ipv6-node";
import { MatchboxInstall, MatchboxMachine } from "./matchbox-machine";
import { inventoryPeers } from "../lib/inventory";
import { routerConfigs } from "../lib/router-config";
import { escapeTerraformTemplate } from "../ignition/terraform-escape";
import { KubeadmControlPlane } from "./kubeadm-control-plane";
import { AddonManifest } from "../lib/calico";
import { MetalProjectGuard } from "./metal-project-guard";
import { Nat64PackageSource } from "./nat64-package-source";

/**
 * One cluster: the Metal project checks, then one IPv6Node per control plane and
 * worker. Node construct IDs are their hostnames, so adding workers only adds.
 * With NODE_TARGET=matchbox, the inventory's machines instead: one MatchboxMachine
 * each, with the same user data (README "Your own bare metal").
 */
export class ClusterStack extends TerraformStack {
  readonly nodes: readonly (IPv6Node | MatchboxMachine)[];
  /** The cluster's PKI and API outputs. */
  readonly controlPlane: KubeadmControlPlane;
  /** Every add-on manifest the init node applies at first boot, in order (the configuration stack's source). */
  readonly firstBootManifests: readonly AddonManifest[];

  constructor(scope: Construct, id: string, settings: ClusterSettings) {
    super(scope, id);
    configureBackend(this, id, settings.terraformCloud);
    const matchbox = settings.target === "matchbox" ? settings.matchbox : undefined;
    if (settings.target === "matchbox" && !matchbox) throw new Error("NODE_TARGET=matchbox without its settings");
    // The routers: Metal's two, or the operator's (the inventory's neighbours; a router that
    // only some machines name, a rack's, peers with those only).
    const machineCount = matchbox?.inventory.machines.length ?? 0;
    const peers = matchbox
      ? inventoryPeers(matchbox.inventory).map(({ address, asn, machines }) => ({ address, asn, ...(machines.length < machineCount ? { nodes: machines } : {}) }))
      : undefined;
    const install = matchbox
      ? new MatchboxInstall(this, "matchbox-install", { rpcEndpoint: matchbox.rpcEndpoint, httpEndpoint: matchbox.httpEndpoint, channel: settings.flatcarChannel, name: `${settings.clusterName}-install` })
      : undefined;
    if (!matchbox) {
      // auth_token comes from METAL_AUTH_TOKEN in the provider's own environment.
      new MetalProvider(this, "metal", {});
      new MetalProjectGuard(this, "project", {
        projectId: settings.metalProjectId,
        metro: settings.metro,
        block: settings.addressPlan.block,
      });
    }

    // PKI, each joining node's own join certificate, kubeadm configs and the API outputs (docs/control-plane.md).
    const controlPlane = (this.controlPlane = new KubeadmControlPlane(this, "control-plane", {
      plan: settings.addressPlan,
      clusterName: settings.clusterName,
      kubernetesVersion: settings.kubernetesVersion,
      clusterDomain: settings.clusterDomain,
      resolvConf: NODE_PATHS.kubeletResolvConf,
    }));

    // Calico, applied by the first control plane at its first boot (docs/bgp-fabric.md).
    const fabric = new CalicoBgpFabric(this, "calico", {
      projectId: settings.metalProjectId,
      plan: settings.addressPlan,
      asNumber: settings.bgpAsn,
      localServiceRoutes: settings.localServiceRoutes,
      md5Enabled: settings.bgpMd5Enabled,
      manageProjectBgp: settings.manageProjectBgp,
      flexVolumePath: VOLUME_PLUGIN_DIR,
      peers,
      metalProject: !matchbox,
    });

    // Host protection and the workload opt-in, applied right after Calico and before any
    // workload runs (docs/security.md). Nothing in it names a node.
    const security = securityAddonManifests({
      plan: settings.addressPlan,
      clusterName: settings.clusterName,
      apiAllowedPrefixes: settings.apiAllowedPrefixes,
      adminAllowedPrefixes: settings.adminAllowedPrefixes,
      nat64: settings.nat64Enabled,
      bgpPeers: peers?.map((p) => p.address),
    });
    // Cluster DNS: kubeadm's Corefile with the upstream resolvers and, with NAT64, dns64 (docs/nat64.md).
    const dns = dnsAddonManifest({
      clusterDomain: settings.clusterDomain,
      upstreamResolvers: settings.dnsUpstreamResolvers,
      dns64Prefix: settings.nat64Enabled ? NAT64_PREFIX : undefined,
    });
    // Nodes may read the `kubernetes` EndpointSlice: the node-local API path learns control planes from it.
    const addons = [apiPathAddonManifest(), ...security, dns];
    const initFiles = [...fabric.nodeFiles, ...addons.map((m) => ({ path: m.path, mode: 0o644, text: m.yaml }))];
    const initAddons = [...fabric.addonManifests, ...addons.map((m) => m.path)];
    this.firstBootManifests = [...fabric.manifests, ...addons];
    // NAT64 on every node, for its own pods: nothing shared, nothing per node (lib/nat64.ts).
    // tayga comes from the operator's mirror, pinned by its hash; the plan refuses a placeholder host.
    const taygaDeb = { url: settings.taygaPackageUrl, hash: TAYGA.hash };
    const nat64 = settings.nat64Enabled
      ? { taygaDeb, taygaConfig: taygaConfig(), ruleset: nat64Ruleset(), prefix: NAT64_PREFIX, pool: NAT64_POOL, device: NAT64_DEVICE, dataDir: NAT64_DATA_DIR }
      : undefined;
    const devicePreconditions = settings.nat64Enabled ? [new Nat64PackageSource(this, "nat64-package", { package: taygaDeb }).devicePrecondition] : [];

    // Control planes first: every other node's user data names the control planes it
    // reaches the API through before it joins (the node-local API path,
    // docs/control-plane.md): further control planes the first one, workers all of them.
    const node = (role: NodeRole, index: number, apiServers: readonly string[]) => {
      const machine = matchbox?.inventory.machines.filter((m) => m.role === role)[index];
      const hostname = machine ? machine.name : nodeHostname(settings.clusterName, role, index);
      const bootRole: BootRole = role === "worker" ? "worker" : index === 0 ? "init" : "control-plane";
      const userData = toUserData(
        renderNodeIgnition({
          hostname,
          role: bootRole,
          kubernetes: KUBERNETES_RELEASES[settings.kubernetesVersion],
          kubeadmConfig: controlPlane.kubeadmConfig(bootRole, hostname),
          apiPath: { kubernetesServiceIp: settings.addressPlan.kubernetesServiceIp, port: API_SERVER_PORT },
          files: [
            ...controlPlane.nodeFiles(bootRole, hostname),
            ...(apiServers.length > 0 ? [apiServersFile(apiServers)] : []),
            ...(bootRole === "init" ? initFiles : []),
          ],
          addonManifests: bootRole === "init" ? initAddons : undefined,
          // kubeadm init makes a bootstrap token nobody uses: no token stays in the cluster.
          kubeadmHooks: bootRole === "init" ? { afterKubeadm: DELETE_BOOTSTRAP_TOKENS_COMMAND } : undefined,
          dnsResolvers: settings.dnsUpstreamResolvers,
          // The routers this node peers with (its rack's), which its peer-routes unit routes to.
          bgpPeers: machine ? machine.neighbors.map((n) => n.address) : undefined,
          nat64,
        }),
      );
      if (machine && install) {
        return new MatchboxMachine(this, hostname, { machine, userData, clusterAsn: settings.bgpAsn, install, preconditions: devicePreconditions });
      }
      return new IPv6Node(this, hostname, {
        projectId: settings.metalProjectId,
        hostname,
        metro: settings.metro,
        plan: settings.nodePlan,
        operatingSystem: `flatcar_${settings.flatcarChannel}`,
        billingCycle: settings.billingCycle,
        projectSshKeyIds: settings.projectSshKeyIds,
        tags: [`k8s-cluster-${settings.clusterName}`, `k8s-role-${role}`],
        expectedIpv6Range: settings.addressPlan.nodeRange,
        bgpSessionDependsOn: fabric.projectBgp?.sessionDependencies,
        preconditions: devicePreconditions,
        userData,
      });
    };
    const first = node("control-plane", 0, []);
    const controlPlanes = [first, ...Array.from({ length: settings.controlPlaneCount - 1 }, (_, i) => node("control-plane", i + 1, [first.publicIpv6]))];
    const workers = Array.from({ length: settings.workerCount }, (_, i) => node("worker", i, controlPlanes.map((cp) => cp.publicIpv6)));
    this.nodes = [...controlPlanes, ...workers];

    controlPlane.addControlPlaneAddresses(controlPlanes.map((cp) => cp.publicIpv6));

    // The operator's routers: BIRD 2 and FRR for the sessions the nodes expect (lib/router-config.ts).
    if (matchbox && peers) {
      // The nodes' BGPPeers' password, as a reference: the output holding it is sensitive.
      const password = fabric.md5Password;
      const configs = routerConfigs(
        {
          clusterName: settings.clusterName,
          clusterAsn: settings.bgpAsn,
          plan: settings.addressPlan,
          localServiceRoutes: settings.localServiceRoutes,
          prefixLimit: fabric.prefixBudget.total,
          nodes: matchbox.inventory.machines.map((m) => ({ name: m.name, ipv6: m.ipv6, ipv6PrefixLength: m.ipv6PrefixLength })),
          md5Password: password?.stringValue,
        },
        peers,
      );
      const output = new TerraformOutput(this, ROUTER_CONFIGS_OUTPUT, {
        description: `For each of your routers the nodes peer with (by address): its AS, and a ready BIRD 2 (bird) and FRR (frr) configuration of its sessions with the nodes${password ? ", with the BGP password: sensitive" : ""}.`,
        value: Object.fromEntries(Object.entries(configs).map(([address, c]) => [address, { asn: c.asn, bird: escapeTerraformTemplate(c.bird), frr: escapeTerraformTemplate(c.frr) }])),
        sensitive: password !== undefined,
      });
      if (password) {
        // BIRD reads the password as a quoted string without escapes, FRR as the rest of
        // the line. An override: cdktf 0.21 keeps an output's `precondition` but does not synthesize it.
        const v = `var.${BGP_PASSWORD_VARIABLE}`;
        output.addOverride("precondition", [
          {
            condition: `\${!strcontains(${v}, "\\"") && !strcontains(${v}, "\\\\") && !strcontains(${v}, "\\n")}`,
            error_message: `${BGP_PASSWORD_VARIABLE} holds a double quote, backslash or line break, which the routers' BIRD configuration cannot hold: choose a BGP password without them (NODE_TARGET=matchbox, METAL_BGP_MD5_ENABLED=true).`,
          },
        ]);
      }
    }

    // Non-sensitive facts for `npm run report` and `terraform output` (lib/fabric-summary.ts).
    new TerraformOutput(this, FABRIC_SUMMARY_OUTPUT, {
      description: "Address plan, BGP ASN and pinned versions of this cluster (no secrets).",
      value: fabricSummary(settings),
    });
  }
}

/** The output with the routers' configurations (NODE_TARGET=matchbox). */
export const ROUTER_CONFIGS_OUTPUT = "router_configs";

/** NODE_PATHS.apiServers from the devices' addresses (known after apply), one a line. */
function apiServersFile(addresses: readonly string[]): NodeFile {
  return { path: NODE_PATHS.apiServers, mode: 0o644, base64: Fn.base64encode(Fn.join("\n", [...addresses, ""])) };
}
