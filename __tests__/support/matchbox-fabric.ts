/**
 * The Matchbox fabric rehearsal's one running fabric (issue #26): the lean inventory of
 * __tests__/fixtures/matchbox-inventory-fabric.json (one control plane, one worker on one
 * rack's /64, both peering with the rack's two routers, and the worker alone with a third,
 * as a machine of another rack would) applied against the real Matchbox, each machine booted from the Ignition
 * Matchbox serves it by MAC (rehearsal/matchbox-cluster.ts), Calico running, and the
 * rack's top-of-rack routers: namespaces on the machines' network running Debian's bird2
 * with the `router_configs` output's BIRD 2 configuration unchanged (only the control
 * socket and pid file are given on the command line). An Internet beyond the hub, which
 * is the machines' gateway and sends the cluster's block to the routers every machine
 * peers with, as an upstream would.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { BirdRouter, addRouterNamespace } from "../../rehearsal/bird-router";
import { bootInitNode, bootJoinNode } from "../../rehearsal/control-plane";
import { MatchboxCluster } from "../../rehearsal/matchbox-cluster";
import { RehearsalNode } from "../../rehearsal/nodes";
import { REHEARSAL_TAYGA_PACKAGE_URL } from "../../rehearsal/rehearse";
import { toolsPresent, toolsUnavailable } from "../../rehearsal/tools";
import { addInternet } from "./fabric";
import { API_ALLOWED, CALICO_ARCHIVES, CLUSTER_BLOCK, INTERNET_GATEWAY, INTERNET_HOST, fabricSkipReason } from "./fabric-rehearsal";
import { RunningCluster } from "./running-cluster";

export const MATCHBOX_FABRIC_INVENTORY = path.join(__dirname, "..", "fixtures", "matchbox-inventory-fabric.json");
/** The inventory's machines, in its order (the first control plane runs kubeadm init). */
export const MACHINES: { name: string; role: string; mac: string; address: string; neighbors: { address: string; asn: number }[] }[] = JSON.parse(fs.readFileSync(MATCHBOX_FABRIC_INVENTORY, "utf8")).machines;

/** Why this rehearsal cannot run here, or "" when it can. */
export function matchboxFabricSkipReason(): string {
  const why = fabricSkipReason();
  if (why) return why;
  return toolsPresent(["matchbox"]) ? "" : `Matchbox, its provider and ignition-validate are not built: ${toolsUnavailable(["matchbox"]) ?? "run `npm run tools -- matchbox`"}`;
}

/** A top-of-rack router running the configuration it was given, unchanged. */
export class TorRouter extends BirdRouter {
  constructor(
    address: string,
    netns: string,
    dir: string,
    readonly asn: number,
    /** The BIRD 2 configuration from the `router_configs` output. */
    readonly config: string,
  ) {
    super(address, netns, dir);
  }
}

export class MatchboxFabricRehearsal extends RunningCluster {
  cluster: MatchboxCluster | undefined;
  routers: TorRouter[] = [];

  node(name: string): RehearsalNode {
    return this.cluster!.byName(name);
  }

  get cp1(): RehearsalNode {
    return this.cluster!.ofRole("init")[0];
  }

  /** Matchbox and Terraform, the nodes from what Matchbox serves, the routers, the Internet; then the nodes boot. */
  async start(): Promise<void> {
    this.started = Date.now();
    this.work = fs.mkdtempSync(path.join(os.tmpdir(), "v6fabric-matchbox-fabric-"));
    this.cluster = await MatchboxCluster.prepare(this.work, MATCHBOX_FABRIC_INVENTORY, {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      API_ALLOWED_PREFIXES: API_ALLOWED,
      NAT64_TAYGA_PACKAGE_URL: REHEARSAL_TAYGA_PACKAGE_URL,
    });
    this.figures.push(`Matchbox, Terraform apply and ${MACHINES.length} node roots from the served Ignition: ${((Date.now() - this.started) / 1000).toFixed(1)} s`);
    const fabric = this.cluster.fabric;
    const configs = this.cluster.outputs.router_configs.value as Record<string, { asn: number; bird: string }>;
    // The routers share the machines' network (their gateway's, the hub's): its length from a node's link.
    const networkLength = this.cp1.addresses.ipv6PrefixLength ?? 128;
    this.routers = Object.entries(configs).map(([address, c], i) => {
      const suffix = String.fromCharCode(97 + i);
      const router = new TorRouter(address, addRouterNamespace(fabric, suffix, address, networkLength), path.join(this.work, "routers", suffix), c.asn, c.bird);
      router.run(c.bird);
      return router;
    });
    // The upstream sends the cluster's block to the routers that hold every node's routes
    // (ECMP); the machines' /64 stays on the link.
    const nexthops = this.sharedRouters().flatMap((r) => ["nexthop", "via", r.address, "dev", "metro"]);
    const hub = spawnSync("ip", ["netns", "exec", fabric.hub, "ip", "-6", "route", "replace", CLUSTER_BLOCK, ...nexthops], { encoding: "utf8" });
    if (hub.status !== 0) throw new Error(`hub route to the routers: ${hub.stderr}`);
    this.internet = addInternet(fabric, { gateway: INTERNET_GATEWAY, hosts: [INTERNET_HOST] });
    const firstBoot = Date.now();
    this.init = await bootInitNode(this.cp1, this.logDir(this.cp1.hostname), { extraImages: CALICO_ARCHIVES, runKubeProxy: true });
    this.figures.push(`init node: kubeadm init ${(this.init.kubeadmDoneMs / 1000).toFixed(1)} s, add-ons ${(this.init.addonsDoneMs / 1000).toFixed(1)} s after its first unit`);
    for (const m of MACHINES.filter((x) => x.name !== this.cp1.hostname)) {
      const boot = await bootJoinNode(this.node(m.name), this.logDir(m.name), { role: m.role === "worker" ? "worker" : "control-plane", extraImages: CALICO_ARCHIVES });
      this.joins.set(m.name, boot);
    }
    this.figures.push(`the other nodes joined ${((Date.now() - firstBoot) / 1000).toFixed(1)} s after the first boot`);
  }

  /** The routers every machine names as a neighbour. */
  sharedRouters(): TorRouter[] {
    return this.routers.filter((r) => MACHINES.every((m) => m.neighbors.some((n) => n.address === r.address)));
  }

  async stop(): Promise<void> {
    await this.stopBoots(`Matchbox fabric, ${MACHINES.length} nodes`, this.cluster?.fabric.id);
    try {
      for (const r of this.routers) r.stop();
      await this.cluster?.destroy();
    } finally {
      if (this.work && !process.env.V6FABRIC_KEEP_WORK) fs.rmSync(this.work, { recursive: true, force: true });
    }
  }
}
