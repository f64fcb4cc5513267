/**
 * The overlay the design avoids, measured beside the native path (issue #23's figure):
 * iperf3 between pods of two workers over their routed public addresses, then between
 * two pods of a Calico VXLAN pool on the same workers, in the same run. The pool is
 * made for the test (never exported over BGP) and removed after it; it runs last, as
 * felix's VXLAN device may stay behind.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { HOST_SELECTOR } from "../../lib/policies";
import { waitFor } from "./fabric";
import { FabricRehearsal, WORKERS } from "./fabric-rehearsal";

/** A /64 of zone 15, which the address plan leaves to the operator (lib/address-plan.ts: zones 4-15 free). */
const VXLAN_POOL = "2001:db8:0:abf0::/64";

export function iperf3Missing(): string {
  return fs.existsSync("/usr/bin/iperf3") ? "" : "iperf3 is missing (Debian's iperf3; .ci/run installs it)";
}

interface Pair {
  readonly server: { node: string; netns: string; address: string };
  readonly client: { node: string; netns: string };
}

/** Bits per second iperf3 measured from the client pod to the server pod over TCP in 5 s. */
async function throughput(f: FabricRehearsal, pair: Pair, label: string): Promise<number> {
  const server = f.node(pair.server.node);
  const proc = server.start(["ip", "netns", "exec", pair.server.netns, "iperf3", "--server"], path.join(f.logDir(pair.server.node), `iperf3-${label}.log`));
  try {
    const client = f.node(pair.client.node);
    let last = "";
    for (let i = 0; i < 10; i++) {
      const run = client.exec(["ip", "netns", "exec", pair.client.netns, "iperf3", "--client", pair.server.address, "--time", "5", "--connect-timeout", "3000", "--json"], { timeoutMs: 30_000 });
      let result: any;
      try {
        result = JSON.parse(run.stdout);
      } catch {
        result = { error: `exit ${run.status}: ${run.stderr.trim()}` };
      }
      const bits = result?.end?.sum_received?.bits_per_second;
      if (run.status === 0 && typeof bits === "number") return bits;
      last = result?.error ?? `exit ${run.status}, no result`;
      await new Promise((r) => setTimeout(r, 1000));
    }
    throw new Error(`iperf3 ${label} from ${pair.client.node} to ${pair.server.address}: ${last}`);
  } finally {
    if (proc.pid && proc.exitCode === null) process.kill(-proc.pid, "SIGKILL");
  }
}

/** The CNI network namespace in `node` that holds `address`. */
function podNetns(f: FabricRehearsal, node: string, address: string): string {
  const n = f.node(node);
  const list = n.exec(["ip", "netns", "list"]).stdout.split("\n").map((l) => l.split(" ")[0]).filter((x) => x.startsWith("cni-"));
  const found = list.find((ns) => n.exec(["ip", "-n", ns, "-6", "addr", "show"]).stdout.includes(`${address}/`));
  if (!found) throw new Error(`${node}: no network namespace holds ${address}`);
  return found;
}

export function overlayTests(f: FabricRehearsal): void {
  const skip = iperf3Missing();
  if (skip) console.warn(`SKIPPED the VXLAN comparison: ${skip}`);
  (skip ? test.skip : test)("pod-to-pod throughput across workers: the routed path, and beside it the same pair of nodes over a Calico VXLAN pool", async () => {
    const [serverNode, clientNode] = WORKERS;
    const pool = {
      apiVersion: "projectcalico.org/v3",
      kind: "IPPool",
      metadata: { name: "vxlan-comparison" },
      spec: { cidr: VXLAN_POOL, vxlanMode: "Always", ipipMode: "Never", natOutgoing: false, disableBGPExport: true, blockSize: 122, nodeSelector: "all()" },
    };
    // The app's policies treat any address outside the pod range as outside the cluster
    // (lib/policies.ts), and forwarding between the pool's pods crosses the nodes' host
    // endpoints: a test-only policy ahead of the app's lets the pool talk to itself. It
    // selects only the host endpoints and the two pods: a policy that selected every pod
    // would drop the rest of their traffic at the end of the tier.
    const allow = {
      apiVersion: "projectcalico.org/v3",
      kind: "GlobalNetworkPolicy",
      metadata: { name: "vxlan-comparison" },
      spec: {
        order: 1,
        selector: `(${HOST_SELECTOR}) || vxlan-comparison == 'true'`,
        applyOnForward: true,
        types: ["Ingress", "Egress"],
        ingress: [{ action: "Allow", ipVersion: 6, source: { nets: [VXLAN_POOL] }, destination: { nets: [VXLAN_POOL] } }],
        egress: [{ action: "Allow", ipVersion: 6, source: { nets: [VXLAN_POOL] }, destination: { nets: [VXLAN_POOL] } }],
      },
    };
    const names = WORKERS.map((n) => `vxlan-${n}`);
    try {
      for (const doc of [allow, pool]) {
        const created = f.kubectl(["create", "-f", "-"], JSON.stringify(doc));
        expect([doc.metadata.name, created.status, created.stderr]).toEqual([doc.metadata.name, 0, ""]);
      }
      for (const node of WORKERS) {
        const pod = {
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name: `vxlan-${node}`, namespace: "default", labels: { "vxlan-comparison": "true" }, annotations: { "cni.projectcalico.org/ipv6pools": '["vxlan-comparison"]' } },
          spec: { nodeName: node, tolerations: [{ operator: "Exists" }], containers: [{ name: "pause", image: "registry.k8s.io/pause:3.10.2" }] },
        };
        const r = f.kubectl(["apply", "-f", "-"], JSON.stringify(pod));
        expect([node, r.status, r.stderr]).toEqual([node, 0, ""]);
      }
      const addresses = new Map<string, string>();
      for (const node of WORKERS) {
        addresses.set(node, await waitFor(`vxlan-${node} Running`, 120_000, () => {
          const p = f.json(["-n", "default", "get", "pod", `vxlan-${node}`]);
          return p.status.phase === "Running" && p.status.podIP ? (p.status.podIP as string) : undefined;
        }));
      }
      // felix made its VXLAN device on both workers once the pool asked for it.
      for (const node of WORKERS) {
        await waitFor(`${node}'s vxlan-v6.calico device`, 60_000, () => (f.node(node).exec(["ip", "link", "show", "vxlan-v6.calico"]).status === 0 ? true : undefined));
      }
      // Each pair by the pods' addresses now: a rebooted node's probe pod has a new sandbox.
      const pair = (name: (node: string) => string): Pair => {
        const at = (node: string) => f.json(["-n", "default", "get", "pod", name(node)]).status.podIP as string;
        const server = at(serverNode);
        return { server: { node: serverNode, address: server, netns: podNetns(f, serverNode, server) }, client: { node: clientNode, netns: podNetns(f, clientNode, at(clientNode)) } };
      };
      const routed = await throughput(f, pair((n) => `probe-${n}`), "routed");
      const overlay = await throughput(f, pair((n) => `vxlan-${n}`), "vxlan");
      const mbit = (b: number) => `${(b / 1e6).toFixed(0)} Mbit/s`;
      f.figures.push(`pod-to-pod TCP ${clientNode} -> ${serverNode} (iperf3, 5 s): routed ${mbit(routed)}, over VXLAN ${mbit(overlay)}, ratio ${(routed / overlay).toFixed(2)}`);
      expect([routed > 0, overlay > 0]).toEqual([true, true]);
    } finally {
      f.kubectl(["-n", "default", "delete", "pod", ...names, "--ignore-not-found", "--wait=false"]);
      f.kubectl(["delete", "ippools.projectcalico.org", "vxlan-comparison", "--ignore-not-found", "--wait=false"]);
      f.kubectl(["delete", "globalnetworkpolicies.projectcalico.org", "vxlan-comparison", "--ignore-not-found"]);
    }
  }, 300_000);
}
