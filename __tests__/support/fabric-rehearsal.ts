/**
 * The one running fabric the fabric rehearsal's tests share (issues #23 and #24): 3
 * control planes and 2 workers formed from the applied user data, with Calico's images in
 * every node's containerd, Metal's two routers as bird2 in their own namespaces and an
 * Internet beyond them. The init node, the second control plane and the workers boot
 * here; the third control plane joins in a test that interrupts it.
 *
 * The routers are configured from the bgp_neighbors the nodes read in their metadata,
 * before any node boots. The metro sends the project's block up to both routers (the
 * gateway of a Metal server is its router), so traffic between pods of different nodes
 * crosses a router, which forwards it by the routes it learned over BGP.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { calicoImageArchiveDir, calicoImages } from "../../rehearsal/calico-images";
import { PreparedCluster } from "../../rehearsal/cluster";
import { JoinNodeBoot, JoinOptions, bootInitNode, bootJoinNode } from "../../rehearsal/control-plane";
import { MetalRouter, birdSupport, startMetalRouters } from "../../rehearsal/metal-router-namespaces";
import { MetalBgpNeighbor } from "../../rehearsal/metal-routers";
import { RehearsalNode } from "../../rehearsal/nodes";
import { installDownloads, metadataAddresses } from "../../rehearsal/node-root";
import { taygaPackage } from "../../rehearsal/nat64";
import { REHEARSAL_TAYGA_PACKAGE_URL } from "../../rehearsal/rehearse";
import { toolsPresent } from "../../rehearsal/tools";
import { controlPlaneRehearsalSkipReason } from "./control-plane-rehearsal";
import { addInternet } from "./fabric";
import { INTERNET_IPV4, INTERNET_RESOLVER, startInternetServers } from "./fabric-nat64-tests";
import { InitFaultRecord, bootInitStoppedLate, initFaultEnabled } from "./fabric-init-fault";
import { RunningCluster } from "./running-cluster";

export const CALICO_ARCHIVES = calicoImages().map((i) => path.join(calicoImageArchiveDir(), i.archive));

/** The default CLUSTER_IPV6_BLOCK and METAL_BGP_ASN (lib/settings.ts). */
export const CLUSTER_BLOCK = "2001:db8:0:ab00::/56";
export const PROJECT_ASN = 65000;
export const METAL_ASN = 65530;
export const CONTROL_PLANES = ["v6fabric-cp-1", "v6fabric-cp-2", "v6fabric-cp-3"];
export const WORKERS = ["v6fabric-worker-01", "v6fabric-worker-02"];
export const NODES = [...CONTROL_PLANES, ...WORKERS];
/** The Service range's first /108 and the kubernetes Service's ClusterIP in it. */
export const SERVICE_RANGE = "2001:db8:0:ab20::/108";
export const CLUSTER_IP = "2001:db8:0:ab20::1";
/** The external range (LoadBalancer addresses, announced whole): the block's fourth /60, its first /112. */
export const EXTERNAL_RANGE = "2001:db8:0:ab30::/112";
/**
 * Hosts on the Internet, from the documentation range but outside the cluster's block:
 * the operator's (in API_ALLOWED_PREFIXES) with its gateway in the metro, and a stranger's.
 */
export const INTERNET_HOST = "2001:db8:ffff::2";
export const INTERNET_GATEWAY = "2001:db8:ffff::1";
export const API_ALLOWED = "2001:db8:ffff::/64";
export const STRANGER = "2001:db8:fffe::2";

/**
 * The settings the fabric is synthesized with. The configuration stack's runner is the
 * Internet's operator prefix; its first-boot wait is off, since Terraform applies here
 * before any node boots (the wait itself: rehearsal-config-stack).
 */
export function fabricEnv(): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    CONTROL_PLANE_COUNT: String(CONTROL_PLANES.length),
    WORKER_COUNT: String(WORKERS.length),
    API_ALLOWED_PREFIXES: API_ALLOWED,
    CONFIG_STACK_RUNNER_PREFIX: API_ALLOWED,
    CONFIG_STACK_WAIT_MINUTES: "0",
    // Cluster DNS forwards to the Internet's resolver, which knows the IPv4-only server (fabric-nat64-tests.ts).
    DNS_UPSTREAM_RESOLVERS: INTERNET_RESOLVER,
  };
}

/** Why the fabric rehearsal cannot run here, or "" when it can. */
export function fabricSkipReason(): string {
  const why = controlPlaneRehearsalSkipReason(["ignition-validate", "jq", "systemd-analyze", "curl", "nft", "dig"]);
  if (why) return why;
  if (!fs.existsSync("/dev/net/tun")) return "/dev/net/tun is missing (the nodes' tayga needs the TUN driver; a container needs --device /dev/net/tun)";
  if (!toolsPresent(["coredns"])) return "the CoreDNS build is missing (the Internet's DNS server): run `npm run tools -- coredns`";
  const bird = birdSupport();
  if (!bird.ok) return bird.why;
  const missing = CALICO_ARCHIVES.filter((a) => !fs.existsSync(a));
  if (missing.length > 0) return `Calico's images are missing (${missing.map((m) => path.basename(m)).join(", ")}): run \`npm run tools -- calico\` as root`;
  if (!fs.existsSync("/usr/bin/python3")) return "/usr/bin/python3 is missing (the pods' TCP and ICMPv6 probes run it in their network namespaces)";
  return "";
}

export class FabricRehearsal extends RunningCluster {
  cluster: PreparedCluster | undefined;
  routers: MetalRouter[] = [];
  /** What the init node's interrupted first boot left (fabric-init-fault.ts). */
  initFault: InitFaultRecord | undefined;
  /** Each node's public IPv4, as its metadata gives it. */
  readonly publicIpv4 = new Map<string, string>();
  /** The Internet's IPv4-only web server's request log (fabric-nat64-tests.ts). */
  nat64WebLog = "";

  node(name: string): RehearsalNode {
    return this.cluster!.byName(name);
  }

  get cp1(): RehearsalNode {
    return this.node("v6fabric-cp-1");
  }

  /** Joins a node of the cluster by its kubeadm unit, with Calico's images. */
  async join(name: string, options: Omit<JoinOptions, "extraImages"> = {}): Promise<JoinNodeBoot> {
    const boot = await bootJoinNode(this.node(name), this.logDir(name), { role: WORKERS.includes(name) ? "worker" : "control-plane", ...options, extraImages: CALICO_ARCHIVES });
    this.joins.set(name, boot);
    return boot;
  }

  /** Terraform, the routers, the Internet; then the init node, the second control plane and the workers. */
  async start(): Promise<void> {
    this.started = Date.now();
    this.work = fs.mkdtempSync(path.join(os.tmpdir(), "v6fabric-fabric-rehearsal-"));
    this.cluster = PreparedCluster.prepare(this.work, fabricEnv());
    const fabric = this.cluster.fabric!;
    // What each node will read at boot: its bgp_neighbors, from the metro's metadata service.
    const neighbors: MetalBgpNeighbor[] = [];
    for (const { node } of this.cluster.nodes) {
      const fetched = node.exec(["curl", "--fail", "--silent", "--max-time", "10", fabric.metadataUrl!], { timeoutMs: 20_000 });
      if (fetched.status !== 0) throw new Error(`${node.hostname}: no metadata: ${fetched.stderr}`);
      const metadata = JSON.parse(fetched.stdout);
      neighbors.push(...(metadata.bgp_neighbors as MetalBgpNeighbor[]).filter((n) => n.address_family === 6));
      // The public IPv4 /31 Metal gives every device: where the node's NAT64 leaves from.
      const { publicIpv4, publicIpv4Gateway } = metadataAddresses(metadata);
      fabric.addPublicIpv4(node, publicIpv4, publicIpv4Gateway);
      this.publicIpv4.set(node.hostname, publicIpv4);
    }
    // The tayga package Ignition downloads from NAT64_TAYGA_PACKAGE_URL (the rehearsal's own mirror): a local copy.
    const tayga = taygaPackage(this.work);
    for (const { node } of this.cluster.nodes) {
      const userData = fs.readFileSync(path.join(this.work, "nodes", node.hostname, "user-data.ign"), "utf8");
      if (tayga.pinned) installDownloads(node.root, userData, { [REHEARSAL_TAYGA_PACKAGE_URL]: tayga.path });
      else fs.copyFileSync(tayga.path, node.hostPath("/opt/v6fabric/tayga.deb"));
    }
    if (!tayga.pinned) console.warn(`fabric rehearsal: the pinned ${path.basename(tayga.path)} is not on this machine; the nodes unpack one repackaged from the installed tayga (apt-get download tayga puts the pinned file in apt's cache)`);
    this.routers = startMetalRouters(fabric, { projectBlock: CLUSTER_BLOCK, neighbors, workDir: path.join(this.work, "routers") });
    // A Metal server's gateway is its router: the metro sends the block's addresses it
    // has no link route for (the nodes' /127s) up to both routers.
    const hub = spawnSync("ip", ["netns", "exec", fabric.hub, "ip", "-6", "route", "replace", CLUSTER_BLOCK, "nexthop", "via", "fc00::e", "dev", "metro", "nexthop", "via", "fc00::f", "dev", "metro"], { encoding: "utf8" });
    if (hub.status !== 0) throw new Error(`metro route to the routers: ${hub.stderr}`);
    this.internet = addInternet(fabric, { gateway: INTERNET_GATEWAY, hosts: [INTERNET_HOST], otherHosts: [STRANGER, INTERNET_RESOLVER], ipv4: INTERNET_IPV4 });
    this.nat64WebLog = startInternetServers(this);
    const firstBoot = Date.now();
    if (initFaultEnabled()) {
      // The init node is stopped late in kubeadm init while cp-2 joins, and finished by hand (fabric-init-fault.ts).
      const { init, record } = await bootInitStoppedLate(this, CALICO_ARCHIVES);
      this.init = init;
      this.initFault = record;
    } else {
      this.init = await bootInitNode(this.cp1, this.logDir("v6fabric-cp-1"), { extraImages: CALICO_ARCHIVES, runKubeProxy: true });
      await this.join("v6fabric-cp-2");
    }
    this.figures.push(`init node: kubeadm init ${(this.init.kubeadmDoneMs / 1000).toFixed(1)} s${this.initFault ? " (stopped, cp-2 joined, finished by hand)" : ""}, add-ons ${(this.init.addonsDoneMs / 1000).toFixed(1)} s after its first unit`);
    for (const name of WORKERS) await this.join(name);
    this.figures.push(`cp-2 and the workers joined ${((Date.now() - firstBoot) / 1000).toFixed(1)} s after the first boot`);
  }

  async stop(): Promise<void> {
    await this.stopBoots(`fabric, ${NODES.length} nodes`, this.cluster?.fabric?.id);
    try {
      this.cluster?.destroy();
    } finally {
      if (this.work && !process.env.V6FABRIC_KEEP_WORK) fs.rmSync(this.work, { recursive: true, force: true });
    }
  }
}
