/**
 * What the fabric rehearsals share once their nodes booted, whichever target made the
 * nodes (Metal's emulator: fabric-rehearsal.ts; Matchbox: matchbox-fabric.ts): kubectl on
 * the init node, the nodes' readiness, the boots' agents, the figures printed at the end,
 * and stopping it all.
 */
import * as path from "node:path";
import { InitNodeBoot, JoinNodeBoot } from "../../rehearsal/control-plane";
import { RehearsalNode } from "../../rehearsal/nodes";
import { Internet, waitFor } from "./fabric";

const ADMIN = ["kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf"];

export abstract class RunningCluster {
  work = "";
  init: InitNodeBoot | undefined;
  readonly joins = new Map<string, JoinNodeBoot>();
  internet!: Internet;
  /** Printed at the end of the run (the figures). */
  readonly figures: string[] = [];
  /** Processes a test started in a node, killed before the nodes stop. */
  readonly background: { kill: () => void }[] = [];
  started = 0;

  abstract node(name: string): RehearsalNode;

  /** The node that ran `kubeadm init`: kubectl runs there with its admin kubeconfig. */
  abstract get cp1(): RehearsalNode;

  kubectl(args: readonly string[], input?: string) {
    return this.cp1.exec([...ADMIN, ...args], { timeoutMs: 60_000, input });
  }

  json(args: readonly string[]): any {
    const r = this.kubectl([...args, "-o", "json"]);
    if (r.status !== 0) throw new Error(`kubectl ${args.join(" ")}: ${r.stderr.trim()}`);
    return JSON.parse(r.stdout);
  }

  calicoPods(): any[] {
    return this.json(["-n", "calico-system", "get", "pods"]).items;
  }

  /**
   * Each node's Ready condition status ("True", "False", "Unknown"), by name; none while
   * the API does not answer. A Node the kubelet has only just registered has no
   * conditions yet: "?".
   */
  readiness(): Record<string, string> {
    const r = this.kubectl(["get", "nodes", "-o", "json"]);
    if (r.status !== 0) return {};
    const nodes = JSON.parse(r.stdout).items as any[];
    return Object.fromEntries(nodes.map((n) => [n.metadata.name, n.status?.conditions?.find((c: any) => c.type === "Ready")?.status ?? "?"]));
  }

  logDir(name: string): string {
    return path.join(this.work, "logs", name);
  }

  /** Waits until every node that booted is Ready. */
  async everyNodeReady(names: readonly string[], timeoutMs = 420_000): Promise<void> {
    await waitFor(`${names.join(", ")} Ready`, timeoutMs, () => (names.every((n) => this.readiness()[n] === "True") ? true : undefined));
  }

  /**
   * A LoadBalancer Service `fabric-probe` in front of the probe pod on `node` (port 80 to
   * its 8080); returns the address Calico's IPAM gives it.
   */
  async probeLoadBalancer(node: string): Promise<string> {
    const service = {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "fabric-probe", namespace: "default" },
      spec: { type: "LoadBalancer", selector: { "fabric-probe-node": node }, ports: [{ port: 80, targetPort: 8080, protocol: "TCP" }] },
    };
    const created = this.kubectl(["apply", "-f", "-"], JSON.stringify(service));
    expect([created.status, created.stderr]).toEqual([0, ""]);
    return waitFor("the LoadBalancer address", 60_000, () => this.json(["-n", "default", "get", "service", "fabric-probe"]).status?.loadBalancer?.ingress?.[0]?.ip as string | undefined);
  }

  /**
   * A pause pod on each named node (`probe-<node>`, labelled `fabric-probe-node=<node>`),
   * each once Running with an address: that address, and the CNI's network namespace that
   * holds it in the node (where a test runs the pod's probes with the host's Python).
   */
  async probePods(names: readonly string[]): Promise<Map<string, { address: string; netns: string | undefined }>> {
    for (const name of names) {
      const pod = {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: `probe-${name}`, namespace: "default", labels: { app: "fabric-probe", "fabric-probe-node": name } },
        spec: {
          nodeName: name,
          tolerations: [{ operator: "Exists" }],
          containers: [{ name: "pause", image: "registry.k8s.io/pause:3.10.2" }],
        },
      };
      const r = this.kubectl(["apply", "-f", "-"], JSON.stringify(pod));
      if (r.status !== 0) throw new Error(`probe-${name}: ${r.stderr}`);
    }
    const found = new Map<string, { address: string; netns: string | undefined }>();
    for (const name of names) {
      const address = await waitFor(`probe-${name} Running with an address`, 120_000, () => {
        const p = this.json(["-n", "default", "get", "pod", `probe-${name}`]);
        return p.status.phase === "Running" && p.status.podIP ? (p.status.podIP as string) : undefined;
      });
      const node = this.node(name);
      const list = node.exec(["ip", "netns", "list"]).stdout.split("\n").map((l) => l.split(" ")[0]).filter((n) => n.startsWith("cni-"));
      found.set(name, { address, netns: list.find((ns) => node.exec(["ip", "-n", ns, "-6", "addr", "show"]).stdout.includes(`${address}/`)) });
    }
    return found;
  }

  /**
   * Prints the figures, holds the fabric V6FABRIC_HOLD_SECONDS for inspection
   * (docs/rehearsal.md), then kills the tests' processes and stops every boot's agent.
   */
  protected async stopBoots(title: string, namespaces: string | undefined): Promise<void> {
    console.log(`rehearsal figures (${title}):\n  ${this.figures.join("\n  ")}`);
    const hold = Number(process.env.V6FABRIC_HOLD_SECONDS ?? 0);
    if (hold > 0) {
      console.log(`holding the fabric ${hold} s: work ${this.work}, namespaces ${namespaces}-*`);
      await new Promise((r) => setTimeout(r, hold * 1000));
    }
    for (const b of this.background) {
      try {
        b.kill();
      } catch {
        // gone already (a reboot ended it)
      }
    }
    for (const boot of [this.init, ...this.joins.values()]) boot?.agent.stop();
  }
}
