/**
 * The fabric rehearsal (issue #23): one cluster of 1 control plane and 2 workers formed
 * from the applied user data, as in rehearsal-cluster.test.ts, with Calico's images in
 * every node's containerd. The init node's add-on unit applies the operator manifest and
 * the Installation as on Metal; the operator deploys calico-node, the CNI plugin, typha,
 * kube-controllers and the CSI driver. Metal's two routers run as bird2 in their own
 * namespaces (rehearsal/metal-router-namespaces.ts), configured from the bgp_neighbors
 * the nodes read in their metadata, before any node boots; every node's calico-node
 * peers with both over BGP. The metro sends the project's block up to the routers (the
 * gateway of a Metal server is its router), so traffic between pods of different nodes
 * crosses a router, which forwards it by the routes it learned over BGP.
 *
 * What differs from Metal is in docs/rehearsal.md's table of differences.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import YAML from "yaml";
import { calicoImageArchiveDir, calicoImages } from "../rehearsal/calico-images";
import { PreparedCluster } from "../rehearsal/cluster";
import { InitNodeBoot, JoinNodeBoot, bootInitNode, bootJoinNode } from "../rehearsal/control-plane";
import { MetalRouter, birdSupport, startMetalRouters } from "../rehearsal/metal-router-namespaces";
import { MetalBgpNeighbor } from "../rehearsal/metal-routers";
import { RehearsalNode } from "../rehearsal/nodes";
import { kubernetesBinary } from "../rehearsal/tools";
import { runUnit } from "../rehearsal/units";
import { controlPlaneRehearsalSkipReason } from "./support/control-plane-rehearsal";
import { ICMPV6_ECHO, Internet, TCP_CLIENT, TCP_SERVER, addInternet, dropped, inside, podRange, waitFor } from "./support/fabric";

const CALICO_ARCHIVES = calicoImages().map((i) => path.join(calicoImageArchiveDir(), i.archive));

function skipReason(): string {
  const why = controlPlaneRehearsalSkipReason(["ignition-validate", "jq", "systemd-analyze", "curl"]);
  if (why) return why;
  const bird = birdSupport();
  if (!bird.ok) return bird.why;
  const missing = CALICO_ARCHIVES.filter((a) => !fs.existsSync(a));
  if (missing.length > 0) return `Calico's images are missing (${missing.map((m) => path.basename(m)).join(", ")}): run \`npm run tools -- calico\` as root`;
  if (!fs.existsSync("/usr/bin/python3")) return "/usr/bin/python3 is missing (the pods' TCP and ICMPv6 probes run it in their network namespaces)";
  return "";
}

const why = skipReason();
if (why) console.warn(`SKIPPED fabric rehearsal (Calico's data plane, Metal's routers): ${why}`);
const describeRehearsal = why ? describe.skip : describe;

/** The default CLUSTER_IPV6_BLOCK and METAL_BGP_ASN (lib/settings.ts). */
const CLUSTER_BLOCK = "2001:db8:0:ab00::/56";
const PROJECT_ASN = 65000;
const METAL_ASN = 65530;
const NODES = ["v6fabric-cp-1", "v6fabric-worker-01", "v6fabric-worker-02"];
const ADMIN = ["kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf"];
/**
 * Hosts on the Internet, from the documentation range but outside the cluster's block:
 * the operator's (in API_ALLOWED_PREFIXES) with its gateway in the metro, and a stranger's.
 */
const INTERNET_HOST = "2001:db8:ffff::2";
const INTERNET_GATEWAY = "2001:db8:ffff::1";
const API_ALLOWED = "2001:db8:ffff::/64";
const STRANGER = "2001:db8:fffe::2";
/** The external range (LoadBalancer addresses, announced whole): the block's fourth /60, its first /112. */
const EXTERNAL_RANGE = "2001:db8:0:ab30::/112";

describeRehearsal("fabric rehearsal: Calico's data plane and Metal's routers, 1 control plane and 2 workers", () => {
  let work: string;
  let cluster: PreparedCluster | undefined;
  let init: InitNodeBoot | undefined;
  const joins: JoinNodeBoot[] = [];
  let routers: MetalRouter[] = [];
  let cp1: RehearsalNode;
  let internet: Internet;
  const figures: string[] = [];
  const background: { kill: () => void }[] = [];

  const kubectl = (args: string[], input?: string) => cp1.exec([...ADMIN, ...args], { timeoutMs: 60_000, input });
  const json = (args: string[]) => {
    const r = kubectl([...args, "-o", "json"]);
    if (r.status !== 0) throw new Error(`kubectl ${args.join(" ")}: ${r.stderr.trim()}`);
    return JSON.parse(r.stdout);
  };

  beforeAll(async () => {
    const started = Date.now();
    work = fs.mkdtempSync(path.join(os.tmpdir(), "v6fabric-fabric-rehearsal-"));
    cluster = PreparedCluster.prepare(work, { PATH: process.env.PATH, HOME: process.env.HOME, CONTROL_PLANE_COUNT: "1", WORKER_COUNT: "2", API_ALLOWED_PREFIXES: API_ALLOWED });
    cp1 = cluster.byName("v6fabric-cp-1");
    const fabric = cluster.fabric!;
    // What each node will read at boot: its bgp_neighbors, from the metro's metadata service.
    const neighbors: MetalBgpNeighbor[] = [];
    for (const { node } of cluster.nodes) {
      const fetched = node.exec(["curl", "--fail", "--silent", "--max-time", "10", fabric.metadataUrl!], { timeoutMs: 20_000 });
      if (fetched.status !== 0) throw new Error(`${node.hostname}: no metadata: ${fetched.stderr}`);
      neighbors.push(...(JSON.parse(fetched.stdout).bgp_neighbors as MetalBgpNeighbor[]).filter((n) => n.address_family === 6));
    }
    routers = startMetalRouters(fabric, { projectBlock: CLUSTER_BLOCK, neighbors, workDir: path.join(work, "routers") });
    // A Metal server's gateway is its router: the metro sends the block's addresses it
    // has no link route for (the nodes' /127s) up to both routers.
    const hub = spawnSync("ip", ["netns", "exec", fabric.hub, "ip", "-6", "route", "replace", CLUSTER_BLOCK, "nexthop", "via", "fc00::e", "dev", "metro", "nexthop", "via", "fc00::f", "dev", "metro"], { encoding: "utf8" });
    if (hub.status !== 0) throw new Error(`metro route to the routers: ${hub.stderr}`);
    internet = addInternet(fabric, { gateway: INTERNET_GATEWAY, hosts: [INTERNET_HOST], otherHosts: [STRANGER] });
    const firstBoot = Date.now();
    init = await bootInitNode(cp1, path.join(work, "logs", cp1.hostname), { extraImages: CALICO_ARCHIVES, runKubeProxy: true });
    figures.push(`init node: kubeadm init ${(init.kubeadmDoneMs / 1000).toFixed(1)} s, add-ons ${(init.addonsDoneMs / 1000).toFixed(1)} s after its first unit`);
    for (const name of NODES.slice(1)) {
      joins.push(await bootJoinNode(cluster.byName(name), path.join(work, "logs", name), { role: "worker", extraImages: CALICO_ARCHIVES }));
    }
    figures.push(`joins done ${((Date.now() - firstBoot) / 1000).toFixed(1)} s after the first boot`);
    await waitFor("every Node Ready", 420_000, () => {
      const nodes = kubectl(["get", "nodes", "--no-headers"]).stdout;
      return NODES.every((n) => new RegExp(`^${n}\\s+Ready\\s`, "m").test(nodes)) ? true : undefined;
    });
    figures.push(`all ${NODES.length} Nodes Ready ${((Date.now() - firstBoot) / 1000).toFixed(1)} s after the first boot (${((Date.now() - started) / 1000).toFixed(1)} s with Terraform)`);
  }, 1_200_000);

  afterAll(async () => {
    console.log(`rehearsal figures (fabric):\n  ${figures.join("\n  ")}`);
    // V6FABRIC_HOLD_SECONDS keeps the running fabric for inspection (docs/rehearsal.md).
    const hold = Number(process.env.V6FABRIC_HOLD_SECONDS ?? 0);
    if (hold > 0) {
      console.log(`holding the fabric ${hold} s: work ${work}, namespaces ${cluster?.fabric?.id}-*`);
      await new Promise((r) => setTimeout(r, hold * 1000));
    }
    for (const b of background) b.kill();
    for (const boot of [init, ...joins]) boot?.agent.stop();
    try {
      cluster?.destroy();
    } finally {
      if (work && !process.env.V6FABRIC_KEEP_WORK) fs.rmSync(work, { recursive: true, force: true });
    }
  }, 300_000 + Number(process.env.V6FABRIC_HOLD_SECONDS ?? 0) * 1000);

  const calicoPods = () => json(["-n", "calico-system", "get", "pods"]).items as any[];

  test("the add-on unit applied the operator and the Installation; every Node is Ready and runs calico-node", async () => {
    expect([init!.kubeadm.at(-1)?.status, init!.addons.at(-1)?.status]).toEqual([0, 0]);
    for (const j of joins) expect(j.kubeadm.at(-1)?.status).toBe(0);
    const nodes = json(["get", "nodes"]).items as any[];
    expect(nodes.map((n) => [n.metadata.name, n.status.conditions.find((c: any) => c.type === "Ready").status]).sort()).toEqual(NODES.map((n) => [n, "True"]));
    const running = await waitFor("calico-node Running on every node", 180_000, () => {
      const byNode = calicoPods()
        .filter((p) => p.metadata.labels["k8s-app"] === "calico-node" && p.status.phase === "Running")
        .map((p) => p.spec.nodeName)
        .sort();
      return byNode.length === NODES.length ? byNode : undefined;
    });
    expect(running).toEqual(NODES);
    const deployed = new Set(calicoPods().map((p) => p.metadata.labels["k8s-app"]));
    figures.push(`calico-system: ${[...deployed].sort().join(", ")}`);
    for (const app of ["calico-node", "calico-kube-controllers", "calico-typha"]) expect([app, deployed.has(app)]).toEqual([app, true]);
  });

  test("Calico runs on the native projectcalico.org/v3 API: the operator chose v3 mode, gave its components the v3 group, and they write v3 objects", async () => {
    // Only the v3 CRDs exist: the operator found no crd.projectcalico.org group at start-up (pkg/apis/version.go UseV3CRDS).
    const crds = (json(["get", "crd"]).items as any[]).map((c) => c.metadata.name as string);
    expect(crds.filter((c) => c.endsWith(".crd.projectcalico.org"))).toEqual([]);
    for (const kind of ["bgppeers", "bgpfilters", "ippools", "ipamconfigurations", "blockaffinities", "globalnetworkpolicies"]) expect(crds).toContain(`${kind}.projectcalico.org`);
    const operatorLog = kubectl(["-n", "tigera-operator", "logs", "deployment/tigera-operator"]);
    expect(operatorLog.status).toBe(0);
    expect(operatorLog.stdout).toMatch(/"msg":"Detected API groups from API server".*"v3present":true,"v1present":false/);
    expect(operatorLog.stdout).toMatch(/"msg":"Ensuring CRDs are installed".*"v3":true/);
    // The operator injects CALICO_API_GROUP into what it deploys (pkg/controller/utils/component.go).
    const env = (app: string) => {
      const pod = calicoPods().find((p) => p.metadata.labels["k8s-app"] === app);
      return Object.fromEntries((pod?.spec.containers[0].env ?? []).map((e: any) => [e.name, e.value]));
    };
    for (const app of ["calico-node", "calico-kube-controllers"]) expect([app, env(app).CALICO_API_GROUP]).toEqual([app, "projectcalico.org/v3"]);
    // Its v3 admission policies act on a v3 policy written without tier or types
    // (operator pkg/imports/admission/calico: tierlabel and policytypes); it selects nothing.
    const name = "fabric-v3-admission";
    const probe = { apiVersion: "projectcalico.org/v3", kind: "GlobalNetworkPolicy", metadata: { name }, spec: { selector: `${name} == 'none'`, ingress: [{ action: "Allow" }] } };
    try {
      const created = kubectl(["create", "-f", "-"], JSON.stringify(probe));
      expect([created.status, created.stderr]).toEqual([0, ""]);
      const live = json(["get", "globalnetworkpolicies.projectcalico.org", name]);
      expect([live.spec.tier, live.spec.types, live.metadata.labels?.["projectcalico.org/tier"]]).toEqual(["default", ["Ingress"], "default"]);
    } finally {
      kubectl(["delete", "globalnetworkpolicies.projectcalico.org", name, "--ignore-not-found"]);
    }
    // kube-controllers read our v3 KubeControllersConfiguration: one automatic host endpoint per node, as v3 objects.
    const hostEndpoints = await waitFor("a v3 host endpoint per node", 60_000, () => {
      const nodes = (json(["get", "hostendpoints.projectcalico.org"]).items as any[]).map((h) => h.spec.node as string).sort();
      return JSON.stringify(nodes) === JSON.stringify(NODES) ? nodes : undefined;
    });
    expect(hostEndpoints).toEqual(NODES);
  });

  const podRangeOfBlock = podRange(CLUSTER_BLOCK);
  const probes = new Map<string, { address: string; netns: string }>();

  test(`a pod on every node gets an address from the pod range (${podRangeOfBlock}), and no node has a tunnel device`, async () => {
    expect(podRangeOfBlock).toBe("2001:db8:0:ab10::/64");
    for (const name of NODES) {
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
      const r = kubectl(["apply", "-f", "-"], JSON.stringify(pod));
      expect([name, r.status, r.stderr]).toEqual([name, 0, ""]);
    }
    for (const name of NODES) {
      const address = await waitFor(`probe-${name} Running with an address`, 120_000, () => {
        const p = json(["-n", "default", "get", "pod", `probe-${name}`]);
        return p.status.phase === "Running" && p.status.podIP ? (p.status.podIP as string) : undefined;
      });
      expect([name, address, inside(address, podRangeOfBlock)]).toEqual([name, address, true]);
      // The pod's network namespace, found by its address among the CNI's namespaces in the node.
      const node = cluster!.byName(name);
      const list = node.exec(["ip", "netns", "list"]).stdout.split("\n").map((l) => l.split(" ")[0]).filter((n) => n.startsWith("cni-"));
      const netns = list.find((ns) => node.exec(["ip", "-n", ns, "-6", "addr", "show"]).stdout.includes(`${address}/`));
      expect([name, netns]).toEqual([name, expect.stringMatching(/^cni-/)]);
      probes.set(name, { address, netns: netns! });
    }
    figures.push(`probe pods: ${[...probes].map(([n, p]) => `${n} ${p.address}`).join(", ")}`);
    for (const name of NODES) {
      const links = cluster!.byName(name).exec(["ip", "-d", "-o", "link", "show"]).stdout;
      expect([name, links.match(/\b(vxlan|ipip|ip6tnl|sit|wireguard|tunl0|vxlan\.calico|vxlan-v6\.calico|wg-v6\.cali)\b/g)]).toEqual([name, null]);
    }
  });

  test("both routers hold an Established session with every node (AS 65000) and each node's pod blocks, learned over BGP with the node as next hop", async () => {
    const blocks = json(["get", "blockaffinities.projectcalico.org"]).items as any[];
    const byNode = new Map<string, string[]>();
    for (const b of blocks.filter((x) => x.spec.state === "confirmed")) byNode.set(b.spec.node, [...(byNode.get(b.spec.node) ?? []), b.spec.cidr]);
    figures.push(`pod blocks: ${[...byNode].map(([n, c]) => `${n} ${c.join(" ")}`).join(", ")}`);
    expect([...byNode.keys()].sort()).toEqual(NODES);
    const established = Date.now();
    for (const router of routers) {
      await waitFor(`${router.address}: every node's blocks`, 120_000, () => {
        const routes = router.routes();
        return NODES.every((n) => byNode.get(n)!.every((cidr) => routes.some((r) => r.prefix === cidr))) ? true : undefined;
      });
      const sessions = router.sessions();
      for (const name of NODES) {
        const node = cluster!.byName(name);
        const session = sessions.find((s) => s.neighbor === node.addresses.ipv6);
        expect([router.address, name, session?.bgpState]).toEqual([router.address, name, "Established"]);
        const detail = router.birdc(["show", "protocols", "all", session!.protocol]);
        expect([router.address, name, /Neighbor AS:\s+(\d+)/.exec(detail)?.[1], /Local AS:\s+(\d+)/.exec(detail)?.[1]]).toEqual([router.address, name, String(PROJECT_ASN), String(METAL_ASN)]);
        for (const cidr of byNode.get(name)!) {
          const route = router.routes().find((r) => r.prefix === cidr);
          expect([router.address, cidr, route?.nexthops]).toEqual([router.address, cidr, [node.addresses.ipv6]]);
        }
      }
    }
    figures.push(`routers held every block ${((Date.now() - established) / 1000).toFixed(1)} s after the check began`);
  });

  test("pod to pod across nodes over TCP and ICMPv6, through a router", async () => {
    const [server, ...clients] = NODES;
    const serverProbe = probes.get(server)!;
    const serverNode = cluster!.byName(server);
    const proc = serverNode.start(["ip", "netns", "exec", serverProbe.netns, "/usr/bin/python3", "-c", TCP_SERVER, "8080"], path.join(work, "logs", "tcp-server.log"));
    background.push({ kill: () => proc.pid && process.kill(-proc.pid, "SIGKILL") });
    for (const client of clients) {
      const probe = probes.get(client)!;
      const node = cluster!.byName(client);
      const echo = node.exec(["ip", "netns", "exec", probe.netns, "/usr/bin/python3", "-c", ICMPV6_ECHO, serverProbe.address], { timeoutMs: 15_000 });
      expect([client, echo.status, echo.stdout.trim()]).toEqual([client, 0, `echo reply from ${serverProbe.address}`]);
      const tcp = await waitFor(`TCP from ${client}`, 30_000, () => {
        const r = node.exec(["ip", "netns", "exec", probe.netns, "/usr/bin/python3", "-c", TCP_CLIENT, serverProbe.address, "8080"], { timeoutMs: 15_000 });
        return r.status === 0 ? r.stdout.trim() : undefined;
      });
      // The server sees the client pod's own address: no NAT on the way.
      expect(tcp).toBe(`hello from ${server} to ${probe.address}`);
    }
  });

  test("from an Internet beyond the routers: a pod's own address stays closed (the app's public surface); a LoadBalancer address answers only once its pod opts in, and the routers hold the LoadBalancer range from every node (ECMP)", async () => {
    expect([inside(INTERNET_HOST, CLUSTER_BLOCK), inside(INTERNET_HOST, API_ALLOWED), inside(STRANGER, API_ALLOWED)]).toEqual([false, true, false]);
    const [server] = NODES;
    const podAddress = probes.get(server)!.address;

    // A LoadBalancer Service for the server pod; Calico's IPAM gives it an address from the external range.
    const service = {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "fabric-probe", namespace: "default" },
      spec: { type: "LoadBalancer", selector: { "fabric-probe-node": server }, ports: [{ port: 80, targetPort: 8080, protocol: "TCP" }] },
    };
    const created = kubectl(["apply", "-f", "-"], JSON.stringify(service));
    expect([created.status, created.stderr]).toEqual([0, ""]);
    const lbAddress = await waitFor("the LoadBalancer address", 60_000, () => json(["-n", "default", "get", "service", "fabric-probe"]).status?.loadBalancer?.ingress?.[0]?.ip as string | undefined);
    expect([lbAddress, inside(lbAddress, EXTERNAL_RANGE)]).toEqual([lbAddress, true]);
    figures.push(`LoadBalancer address ${lbAddress}`);

    // Default deny: nothing is labelled fabric.v6/public=true yet.
    expect(dropped(internet.greet(podAddress, 8080))).toEqual([1, "", true]);
    expect(dropped(internet.greet(lbAddress, 80))).toEqual([1, "", true]);

    const label = kubectl(["-n", "default", "label", "pod", `probe-${server}`, "fabric.v6/public=true"]);
    expect([label.status, label.stderr]).toEqual([0, ""]);
    const opened = Date.now();
    const answer = await waitFor("the Internet's connection to the LoadBalancer address once the pod opts in", 60_000, () => {
      const r = internet.greet(lbAddress, 80);
      return r.status === 0 ? r.stdout.trim() : undefined;
    });
    expect(answer).toMatch(new RegExp(`^hello from ${server} to `));
    figures.push(`Internet -> LoadBalancer address answered ${((Date.now() - opened) / 1000).toFixed(1)} s after the opt-in label`);
    // Opted in or not, a pod is never addressed directly from outside (lib/policies.ts publicSurfacePolicy).
    expect(dropped(internet.greet(podAddress, 8080))).toEqual([1, "", true]);

    // Every node announces the LoadBalancer range (aggregated, Cluster policy) once its
    // service-announcement unit, started by its timer every 30 s, finds kube-proxy healthy
    // and lifts the exclusion label the node registered with (docs/bgp-fabric.md).
    for (const name of NODES) {
      const node = cluster!.byName(name);
      const run = await runUnit(node, "v6fabric-service-announcement.service", { logFile: path.join(work, "logs", name, "units.log") });
      // Workers registered with the label (they announce now); kubeadm left it "" on the control plane (nothing to do).
      const expected = name.includes("worker") ? expect.stringContaining(`${name} announces the Service ranges`) : "";
      expect([name, run[0].status, run[0].output.trim()]).toEqual([name, 0, expected]);
    }
    const excluded = (json(["get", "nodes"]).items as any[]).filter((n) => n.metadata.labels["node.kubernetes.io/exclude-from-external-load-balancers"] === "true");
    expect(excluded.map((n) => n.metadata.name)).toEqual([]);
    const everyNode = NODES.map((n) => cluster!.byName(n).addresses.ipv6).sort();
    for (const router of routers) {
      const nexthops = await waitFor(`${router.address}: the external range from every node`, 60_000, () => {
        const found = [...(router.routes().find((r) => r.prefix === EXTERNAL_RANGE)?.nexthops ?? [])].sort();
        return found.length === everyNode.length ? found : undefined;
      }).catch(() => [...(router.routes().find((r) => r.prefix === EXTERNAL_RANGE)?.nexthops ?? [])].sort());
      expect([router.address, nexthops]).toEqual([router.address, everyNode]);
    }
  });
  test("from the Internet: kubectl with the admin_kubeconfig output (the kubernetes Service's ClusterIP on 443) lists the nodes from API_ALLOWED_PREFIXES; a stranger's connection to that address is dropped", async () => {
    const kubeconfig = cluster!.outputs.admin_kubeconfig.value as string;
    const file = path.join(work, "admin.kubeconfig");
    fs.writeFileSync(file, kubeconfig, { mode: 0o600 });
    const clusterIp = json(["-n", "default", "get", "service", "kubernetes"]).spec.clusterIP as string;
    expect(YAML.parse(kubeconfig).clusters[0].cluster.server).toBe(`https://[${clusterIp}]:443`);
    let last = "";
    const listed = await waitFor("kubectl from the Internet", 90_000, () => {
      const r = internet.run([kubernetesBinary("kubectl"), "--kubeconfig", file, "--request-timeout=10s", "get", "nodes", "-o", "name"], 20_000);
      last = r.stderr.trim();
      return r.status === 0 ? r.stdout.trim().split("\n").sort() : undefined;
    }).catch((err) => {
      throw new Error(`${err.message}; kubectl said: ${last}; the routers hold for the Service range: ${JSON.stringify(routers.map((r) => r.routes().filter((x) => inside(clusterIp, x.prefix))))}`);
    });
    expect(listed).toEqual(NODES.map((n) => `node/${n}`));
    const reached = internet.connect(clusterIp, 443);
    expect([reached.stdout.trim(), reached.stderr.trim().split("\n").pop()]).toEqual(["connected", ""]);
    expect(dropped(internet.connect(clusterIp, 443, STRANGER))).toEqual([1, "", true]);
  });

  test("from the Internet, every node answers ICMPv6 echo, its kubelet, etcd and NodePort ports are dropped, and the API server's port (443, kubeadm's bindPort here) answers API_ALLOWED_PREFIXES only", () => {
    const nodePort = json(["-n", "default", "get", "service", "fabric-probe"]).spec.ports[0].nodePort as number;
    expect(nodePort).toBeGreaterThanOrEqual(30000);
    for (const name of NODES) {
      const address = cluster!.byName(name).addresses.ipv6;
      expect([name, internet.echo(address).stdout.trim()]).toEqual([name, `echo reply from ${address}`]);
      for (const port of [10250, 2379, 2380, nodePort]) expect([name, port, ...dropped(internet.connect(address, port))]).toEqual([name, port, 1, "", true]);
    }
    const apiServer = cp1.addresses.ipv6;
    const reached = internet.connect(apiServer, 443);
    expect([reached.stdout.trim(), reached.stderr.trim().split("\n").pop()]).toEqual(["connected", ""]);
    expect(dropped(internet.connect(apiServer, 443, STRANGER))).toEqual([1, "", true]);
  }, 240_000);
});
