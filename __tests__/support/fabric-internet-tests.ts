/**
 * The fabric rehearsal from an Internet beyond the routers (issue #23): default deny, a
 * LoadBalancer address from every node that announces (ECMP), a Local Service's /128 from
 * the node of its endpoint only, kubectl through the admin_kubeconfig output, and the
 * host ports nobody outside may reach.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import YAML from "yaml";
import { runUnit } from "../../rehearsal/units";
import { kubernetesBinary } from "../../rehearsal/tools";
import { TCP_SERVER, dropped, inside, waitFor } from "./fabric";
import { API_ALLOWED, CLUSTER_BLOCK, EXTERNAL_RANGE, FabricRehearsal, INTERNET_HOST, NODES, STRANGER, WORKERS } from "./fabric-rehearsal";
import { Probes } from "./fabric-dataplane-tests";

const EXCLUSION_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers";

/** Each node's exclusion label: "true", "" or "(none)". */
function exclusionLabels(f: FabricRehearsal): Record<string, string> {
  return Object.fromEntries((f.json(["get", "nodes"]).items as any[]).map((n) => [n.metadata.name, n.metadata.labels[EXCLUSION_LABEL] ?? "(none)"]));
}

function byRouter(f: FabricRehearsal, nexthops: readonly string[]): Record<string, string[]> {
  return Object.fromEntries(f.routers.map((r) => [r.address, [...nexthops]]));
}

/** The next hops each router holds for `prefix`, once they are `want` (sorted), or as they are after `timeoutMs`. */
async function nexthopsHeld(f: FabricRehearsal, prefix: string, want: readonly string[], timeoutMs = 60_000): Promise<Record<string, string[]>> {
  const held: Record<string, string[]> = {};
  const now = (router: (typeof f.routers)[number]) => [...(router.routes().find((r) => r.prefix === prefix)?.nexthops ?? [])].sort();
  for (const router of f.routers) {
    held[router.address] = await waitFor(`${router.address}: ${prefix} from ${want.join(", ")}`, timeoutMs, () => (JSON.stringify(now(router)) === JSON.stringify(want) ? now(router) : undefined)).catch(() => now(router));
  }
  return held;
}

/** What each router holds for the external range, once it holds `want` (or after 60 s). */
const externalRangeNexthops = (f: FabricRehearsal, want: readonly string[]) => nexthopsHeld(f, EXTERNAL_RANGE, want);

export function internetTests(f: FabricRehearsal, probes: Probes): void {
  test("from an Internet beyond the routers: a pod's own address stays closed (the app's public surface); a LoadBalancer address answers only once its pod opts in, and the routers hold the LoadBalancer range from every node (ECMP)", async () => {
    expect([inside(INTERNET_HOST, CLUSTER_BLOCK), inside(INTERNET_HOST, API_ALLOWED), inside(STRANGER, API_ALLOWED)]).toEqual([false, true, false]);
    const [server] = NODES;
    const podAddress = probes.get(server)!.address;

    // A LoadBalancer Service for the server pod; Calico's IPAM gives it an address from the external range.
    const lbAddress = await f.probeLoadBalancer(server);
    expect([lbAddress, inside(lbAddress, EXTERNAL_RANGE)]).toEqual([lbAddress, true]);
    f.figures.push(`LoadBalancer address ${lbAddress}`);

    // Default deny: nothing is labelled fabric.v6/public=true yet.
    expect(dropped(f.internet.greet(podAddress, 8080))).toEqual([1, "", true]);
    expect(dropped(f.internet.greet(lbAddress, 80))).toEqual([1, "", true]);

    const label = f.kubectl(["-n", "default", "label", "pod", `probe-${server}`, "fabric.v6/public=true"]);
    expect([label.status, label.stderr]).toEqual([0, ""]);
    const opened = Date.now();
    const answer = await waitFor("the Internet's connection to the LoadBalancer address once the pod opts in", 60_000, () => {
      const r = f.internet.greet(lbAddress, 80);
      return r.status === 0 ? r.stdout.trim() : undefined;
    });
    expect(answer).toMatch(new RegExp(`^hello from ${server} to `));
    f.figures.push(`Internet -> LoadBalancer address answered ${((Date.now() - opened) / 1000).toFixed(1)} s after the opt-in label`);
    // Opted in or not, a pod is never addressed directly from outside (lib/policies.ts publicSurfacePolicy).
    expect(dropped(f.internet.greet(podAddress, 8080))).toEqual([1, "", true]);

    // Every node announces the LoadBalancer range (aggregated, Cluster policy) once its
    // service-announcement unit, started by its timer every 30 s, finds kube-proxy healthy
    // and lifts the exclusion label the node registered with (docs/bgp-fabric.md).
    // Workers register withdrawn (kubeadm nodeRegistration); kubeadm's mark-control-plane
    // sets the label to "" on control planes, which Calico does not count as excluded.
    expect(exclusionLabels(f)).toEqual(Object.fromEntries(NODES.map((n) => [n, WORKERS.includes(n) ? "true" : ""])));
    for (const name of NODES) {
      const node = f.node(name);
      const run = await runUnit(node, "v6fabric-service-announcement.service", { logFile: path.join(f.work, "logs", name, "units.log") });
      // Workers registered with the label (they announce now); kubeadm left it "" on the control plane (nothing to do).
      const expected = name.includes("worker") ? expect.stringContaining(`${name} announces the Service ranges`) : "";
      expect([name, run[0].status, run[0].output.trim()]).toEqual([name, 0, expected]);
    }
    expect(exclusionLabels(f)).toEqual(Object.fromEntries(NODES.map((n) => [n, WORKERS.includes(n) ? "(none)" : ""])));
    const everyNode = NODES.map((n) => f.node(n).addresses.ipv6).sort();
    expect(await externalRangeNexthops(f, everyNode)).toEqual(byRouter(f, everyNode));
  });

  // docs/bgp-fabric.md, "When a node announces the Service ranges": the node's own unit
  // labels it when its kube-proxy stops answering, and Calico's BIRD withdraws its Service
  // routes; the routers then spread the Service traffic over the others only.
  test("a worker whose kube-proxy stops answering labels itself withdrawn, and both routers drop it from the LoadBalancer range; healthy again, it is back", async () => {
    const name = "v6fabric-worker-01";
    const worker = f.node(name);
    const logFile = path.join(f.work, "logs", name, "units.log");
    const others = NODES.filter((n) => n !== name).map((n) => f.node(n).addresses.ipv6).sort();
    // Nothing listens on port 1: kube-proxy's health check does not answer.
    const down = await runUnit(worker, "v6fabric-service-announcement.service", { logFile, extraEnv: { V6FABRIC_KUBE_PROXY_HEALTHZ: "http://[::1]:1/healthz" } });
    expect([down[0].status, down[0].output]).toEqual([0, expect.stringContaining(`${name} withdraws the Service ranges`)]);
    expect(exclusionLabels(f)[name]).toBe("true");
    const withdrawn = Date.now();
    expect(await externalRangeNexthops(f, others)).toEqual(byRouter(f, others));
    f.figures.push(`${name} labelled withdrawn: both routers dropped it from the LoadBalancer range within ${((Date.now() - withdrawn) / 1000).toFixed(1)} s`);
    const up = await runUnit(worker, "v6fabric-service-announcement.service", { logFile });
    expect([up[0].status, up[0].output]).toEqual([0, expect.stringContaining(`${name} announces the Service ranges`)]);
    const everyNode = NODES.map((n) => f.node(n).addresses.ipv6).sort();
    expect(await externalRangeNexthops(f, everyNode)).toEqual(byRouter(f, everyNode));
  });
  test("from the Internet: kubectl with the admin_kubeconfig output (the kubernetes Service's ClusterIP on 443) lists the nodes from API_ALLOWED_PREFIXES; a stranger's connection to that address is dropped", async () => {
    const kubeconfig = f.cluster!.outputs.admin_kubeconfig.value as string;
    const file = path.join(f.work, "admin.kubeconfig");
    fs.writeFileSync(file, kubeconfig, { mode: 0o600 });
    const clusterIp = f.json(["-n", "default", "get", "service", "kubernetes"]).spec.clusterIP as string;
    expect(YAML.parse(kubeconfig).clusters[0].cluster.server).toBe(`https://[${clusterIp}]:443`);
    let last = "";
    const listed = await waitFor("kubectl from the Internet", 90_000, () => {
      const r = f.internet.run([kubernetesBinary("kubectl"), "--kubeconfig", file, "--request-timeout=10s", "get", "nodes", "-o", "name"], 20_000);
      last = r.stderr.trim();
      return r.status === 0 ? r.stdout.trim().split("\n").sort() : undefined;
    }).catch((err) => {
      throw new Error(`${err.message}; kubectl said: ${last}; the f.routers hold for the Service range: ${JSON.stringify(f.routers.map((r) => r.routes().filter((x) => inside(clusterIp, x.prefix))))}`);
    });
    expect(listed).toEqual(NODES.map((n) => `node/${n}`));
    const reached = f.internet.connect(clusterIp, 443);
    expect([reached.stdout.trim(), reached.stderr.trim().split("\n").pop()]).toEqual(["connected", ""]);
    expect(dropped(f.internet.connect(clusterIp, 443, STRANGER))).toEqual([1, "", true]);
  });

  test("from the Internet, every node answers ICMPv6 echo, its kubelet, etcd and NodePort ports are dropped, and the API server's port (443, kubeadm's bindPort here) answers API_ALLOWED_PREFIXES only", () => {
    const nodePort = f.json(["-n", "default", "get", "service", "fabric-probe"]).spec.ports[0].nodePort as number;
    expect(nodePort).toBeGreaterThanOrEqual(30000);
    const closed = NODES.flatMap((name) => [10250, 2379, 2380, nodePort].map((port) => ({ address: f.node(name).addresses.ipv6, port })));
    const met = f.internet.connectAll(closed);
    expect(met).toEqual(Object.fromEntries(closed.map((t) => [`${t.address} ${t.port}`, "timed out"])));
    for (const name of NODES) {
      const address = f.node(name).addresses.ipv6;
      expect([name, f.internet.echo(address).stdout.trim()]).toEqual([name, `echo reply from ${address}`]);
    }
    const apiServer = f.cp1.addresses.ipv6;
    const reached = f.internet.connect(apiServer, 443);
    expect([reached.stdout.trim(), reached.stderr.trim().split("\n").pop()]).toEqual(["connected", ""]);
    expect(dropped(f.internet.connect(apiServer, 443, STRANGER))).toEqual([1, "", true]);
  }, 240_000);
  test("a Local Service's /128 is announced only by the node with its ready endpoint, follows the endpoint, and its pod sees the client's own address", async () => {
    const [first, second] = WORKERS;
    const firstProbe = probes.get(first)!;
    const proc = f.node(first).start(["ip", "netns", "exec", firstProbe.netns, "/usr/bin/python3", "-c", TCP_SERVER, "8080"], path.join(f.work, "logs", "tcp-server-local.log"));
    f.background.push({ kill: () => proc.pid && process.kill(-proc.pid, "SIGKILL") });
    const label = f.kubectl(["-n", "default", "label", "pod", `probe-${first}`, "fabric.v6/public=true"]);
    expect([label.status, label.stderr]).toEqual([0, ""]);
    const service = {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "fabric-local", namespace: "default", annotations: { "projectcalico.org/ipv6pools": '["local-services-ipv6"]' } },
      spec: { type: "LoadBalancer", externalTrafficPolicy: "Local", selector: { "fabric-probe-node": first }, ports: [{ port: 80, targetPort: 8080, protocol: "TCP" }] },
    };
    const apply = f.kubectl(["apply", "-f", "-"], JSON.stringify(service));
    expect([apply.status, apply.stderr]).toEqual([0, ""]);
    const created = Date.now();
    const address = await waitFor("the Local Service's address", 60_000, () => f.json(["-n", "default", "get", "service", "fabric-local"]).status?.loadBalancer?.ingress?.[0]?.ip as string | undefined);
    const localPool = f.json(["get", "ippools.projectcalico.org", "local-services-ipv6"]).spec.cidr as string;
    expect([address, localPool, inside(address, localPool), inside(address, EXTERNAL_RANGE)]).toEqual([address, localPool, true, true]);
    f.figures.push(`Local Service address ${address} (pool ${localPool})`);
    const nexthopsOf = (node: string) => nexthopsHeld(f, `${address}/128`, [f.node(node).addresses.ipv6], 90_000);
    const from = (node: string) => byRouter(f, [f.node(node).addresses.ipv6]);
    expect(await nexthopsOf(first)).toEqual(from(first));
    f.figures.push(`Local /128 on both routers from ${first} only, ${((Date.now() - created) / 1000).toFixed(1)} s after the Service was created`);
    const answer = await waitFor("the Internet's connection to the Local Service", 60_000, () => {
      const r = f.internet.greet(address, 80);
      return r.status === 0 ? r.stdout.trim() : undefined;
    });
    // Local keeps the client's address: the pod sees the Internet host itself.
    expect(answer).toBe(`hello from ${first} to ${INTERNET_HOST}`);
    const moved = Date.now();
    const patched = f.kubectl(["-n", "default", "patch", "service", "fabric-local", "--type=merge", "-p", JSON.stringify({ spec: { selector: { "fabric-probe-node": second } } })]);
    expect([patched.status, patched.stderr]).toEqual([0, ""]);
    expect(await nexthopsOf(second)).toEqual(from(second));
    f.figures.push(`Local /128 moved from ${first} to ${second} on both routers in ${((Date.now() - moved) / 1000).toFixed(1)} s`);
  }, 300_000);
}
