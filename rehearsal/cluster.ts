/**
 * A whole rehearsal cluster: the Terraform rehearsal applies the stack with the real
 * metal provider against the Metal API emulator, then every device Metal holds becomes
 * a node (nodes.ts): written by the real ignition binary from the user data the
 * provider sent, with the addresses Metal gave it and the rehearsal's Kubernetes builds.
 * The metro serves Metal's metadata from the emulator's state; control-plane.ts boots
 * the nodes, each reading its metadata first as on Metal.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { applyIgnition, installBinaries, installDownloads } from "./node-root";
import { seconds, table } from "./format";
import type { RehearsalDevice } from "./metal";
import { Fabric, NodeAddresses, RehearsalNode } from "./nodes";
import { StackRehearsal, readStack, synthesize } from "./rehearse";

export type NodeRole = "init" | "control-plane" | "worker";

export interface ClusterNode {
  readonly node: RehearsalNode;
  readonly role: NodeRole;
  /** Downloads in the user data the rehearsal has no copy of (the Kubernetes binaries it builds itself). */
  readonly missingDownloads: readonly string[];
}

/** The node of `hostname` among a cluster's nodes; throws when there is none. */
export function nodeByName(nodes: readonly ClusterNode[], hostname: string): RehearsalNode {
  const found = nodes.find((n) => n.node.hostname === hostname);
  if (!found) throw new Error(`no node ${hostname} in the rehearsal`);
  return found.node;
}

/** A cluster's nodes of one role, in their order. */
export function nodesOfRole(nodes: readonly ClusterNode[], role: NodeRole): RehearsalNode[] {
  return nodes.filter((n) => n.role === role).map((n) => n.node);
}

/** What the cluster rehearsal makes a node of, from a device Metal holds. */
export interface NodeSource {
  readonly hostname: string;
  readonly role: NodeRole;
  /** The bytes the real ignition binary writes the node's root from. */
  readonly userData: string;
  /** What the node's link gets (Fabric.addNode). */
  readonly addresses: NodeAddresses;
}

/**
 * Each device as the cluster rehearsal boots it: its user data as Metal holds it, and the
 * addresses Metal gave it, with Metal's prefix length. One function for PreparedCluster
 * and the Terraform rehearsal's check that it is what Terraform's state holds
 * (rehearsal-terraform.test.ts), so that check cannot drift from what the nodes get.
 */
export function nodeSources(devices: readonly RehearsalDevice[]): NodeSource[] {
  return devices.map((device) => ({
    hostname: device.hostname,
    role: device.tags.includes("k8s-role-worker") ? "worker" : /-cp-1$/.test(device.hostname) ? "init" : "control-plane",
    userData: device.userData,
    addresses: {
      ipv6: device.publicIpv6.address,
      ipv6Gateway: device.publicIpv6.gateway,
      ipv6PrefixLength: device.publicIpv6.cidr,
      privateIpv4: device.privateIpv4.address,
      privateIpv4Gateway: device.privateIpv4.gateway,
    },
  }));
}

export class PreparedCluster {
  readonly nodes: ClusterNode[] = [];
  fabric?: Fabric;

  private constructor(
    readonly work: string,
    readonly terraform: StackRehearsal,
    readonly outputs: Record<string, { value: unknown; sensitive: boolean }>,
  ) {}

  /** Synthesizes with `env`, applies with Terraform, and makes one node per device. */
  static prepare(work: string, env: NodeJS.ProcessEnv): PreparedCluster {
    const outdir = path.join(work, "cdktf.out");
    const [stack] = synthesize(env, outdir);
    const terraform = new StackRehearsal(stack, readStack(outdir, stack), path.join(work, "terraform"), env);
    try {
      terraform.init();
      terraform.plan();
      terraform.apply();
    } catch (err) {
      try {
        terraform.destroy();
      } finally {
        terraform.close();
      }
      throw err;
    }
    const cluster = new PreparedCluster(work, terraform, terraform.outputs());
    try {
      cluster.fabric = new Fabric(work);
      cluster.fabric.serveMetadata(terraform.metal.stateFile, path.join(work, "metadata"));
      for (const source of nodeSources(terraform.devices())) {
        const { root } = applyIgnition(source.userData, path.join(work, "nodes", source.hostname));
        installBinaries(root);
        const missingDownloads = installDownloads(root, source.userData);
        cluster.nodes.push({ node: cluster.fabric!.addNode(source.hostname, root, source.addresses), role: source.role, missingDownloads });
      }
    } catch (err) {
      cluster.destroy();
      throw err;
    }
    return cluster;
  }

  byName(hostname: string): RehearsalNode {
    return nodeByName(this.nodes, hostname);
  }

  ofRole(role: NodeRole): RehearsalNode[] {
    return nodesOfRole(this.nodes, role);
  }

  /** Removes the nodes, destroys what Terraform applied and stops the emulator. Safe to call twice. */
  destroy(): void {
    try {
      this.fabric?.destroy();
    } finally {
      try {
        this.terraform.destroy();
      } finally {
        this.terraform.close();
      }
    }
  }
}

/** What the control-plane rehearsal needs of a prepared cluster, whichever target made it. */
interface BootableCluster {
  ofRole(role: NodeRole): RehearsalNode[];
  destroy(): void | Promise<void>;
}

/**
 * The environment's cluster, applied and made into nodes: from the Metal emulator, or
 * with NODE_TARGET=matchbox from what the real Matchbox serves each machine of
 * MATCHBOX_INVENTORY (matchbox-cluster.ts).
 */
async function prepareCluster(work: string, env: NodeJS.ProcessEnv): Promise<BootableCluster> {
  if (env.NODE_TARGET?.trim() !== "matchbox") return PreparedCluster.prepare(work, env);
  const inventory = env.MATCHBOX_INVENTORY?.trim();
  if (!inventory) throw new Error("NODE_TARGET=matchbox needs MATCHBOX_INVENTORY (README \"Your own bare metal\")");
  const { MatchboxCluster } = await import("./matchbox-cluster");
  return MatchboxCluster.prepare(work, path.resolve(inventory), env);
}

/**
 * `npm run rehearse -- --control-plane`: the whole cluster of the environment's
 * settings forms in namespaces on this machine, then everything is removed. Prints a
 * line per node and etcd's members; returns the exit status.
 */
export async function rehearseControlPlane(env: NodeJS.ProcessEnv): Promise<number> {
  // Imported here: control-plane.ts imports this module's neighbours, not the other way round.
  const { bootInitNode, bootJoinNode, etcdMembers } = await import("./control-plane");
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const os = await import("node:os");
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "v6fabric-rehearsal-cp-"));
  const started = Date.now();
  let cluster: BootableCluster | undefined;
  const stops: (() => void)[] = [];
  const rows: string[][] = [["node", "role", "kubeadm", "add-ons", "done after"]];
  let failed = false;
  try {
    say(`rehearse: Terraform apply and node roots${env.NODE_TARGET?.trim() === "matchbox" ? " from what Matchbox serves" : ""} ...`);
    cluster = await prepareCluster(work, env);
    const init = cluster.ofRole("init")[0];
    // No route for the Service range on the metro: every node reaches the API through its own path (docs/control-plane.md).
    say(`rehearse: ${init.hostname}: kubeadm init ...`);
    const boot = await bootInitNode(init, path.join(work, "logs", init.hostname));
    stops.push(() => boot.agent.stop());
    const status = (runs: { status: number }[]) => (runs.at(-1)?.status === 0 ? "ok" : `FAILED (exit ${runs.at(-1)?.status})`);
    rows.push([init.hostname, "init", status(boot.kubeadm), status(boot.addons), seconds(Date.now() - started)]);
    failed ||= rows.at(-1)!.some((c) => c.startsWith("FAILED"));
    for (const role of ["control-plane", "worker"] as const) {
      for (const node of cluster.ofRole(role)) {
        say(`rehearse: ${node.hostname}: kubeadm join ...`);
        const join = await bootJoinNode(node, path.join(work, "logs", node.hostname), { role: role === "worker" ? "worker" : "control-plane" });
        stops.push(() => join.agent.stop());
        rows.push([node.hostname, role, status(join.kubeadm), "", seconds(Date.now() - started)]);
        failed ||= rows.at(-1)![2].startsWith("FAILED");
      }
    }
    say("");
    say(table(rows));
    say(`etcd members: ${etcdMembers(init).map((m) => `${m.name || "(unstarted)"}${m.isLearner ? " (learner)" : ""}`).join(", ")}`);
    const nodes = init.exec(["kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "get", "nodes", "--no-headers"]).stdout.trim();
    say(`Nodes (NotReady is expected: no CNI runs here, docs/rehearsal.md):\n${nodes}`);
    if (failed) say(`rehearse: logs of each node's units are in ${work}/logs (kept because something failed)`);
  } finally {
    for (const stop of stops) stop();
    await cluster?.destroy();
    if (!failed) fs.rmSync(work, { recursive: true, force: true });
  }
  say(`rehearse: control plane ${failed ? "FAILED" : "formed"} in ${seconds(Date.now() - started)}; namespaces and processes removed`);
  return failed ? 1 : 0;
}
