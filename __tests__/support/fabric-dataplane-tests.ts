/**
 * The fabric rehearsal's data plane (issue #23): Calico on its native projectcalico.org/v3
 * API, a pod on every node with an address from the pod range, both routers holding
 * every node's blocks over BGP, and pod-to-pod traffic through a router with no tunnel.
 */
import * as path from "node:path";
import { FabricRehearsal, CLUSTER_BLOCK, METAL_ASN, NODES, PROJECT_ASN } from "./fabric-rehearsal";
import { ICMPV6_ECHO, TCP_CLIENT, TCP_SERVER, inside, podRange, waitFor } from "./fabric";

/** Each node's probe pod: its address and the CNI's network namespace it lives in. */
export type Probes = Map<string, { address: string; netns: string }>;

export function dataPlaneTests(f: FabricRehearsal, probes: Probes): void {
  test("Calico runs on the native projectcalico.org/v3 API: the operator chose v3 mode, gave its components the v3 group, and they write v3 objects", async () => {
    // Only the v3 CRDs exist: the operator found no crd.projectcalico.org group at start-up (pkg/apis/version.go UseV3CRDS).
    const crds = (f.json(["get", "crd"]).items as any[]).map((c) => c.metadata.name as string);
    expect(crds.filter((c) => c.endsWith(".crd.projectcalico.org"))).toEqual([]);
    for (const kind of ["bgppeers", "bgpfilters", "ippools", "ipamconfigurations", "blockaffinities", "globalnetworkpolicies"]) expect(crds).toContain(`${kind}.projectcalico.org`);
    const operatorLog = f.kubectl(["-n", "tigera-operator", "logs", "deployment/tigera-operator"]);
    expect(operatorLog.status).toBe(0);
    expect(operatorLog.stdout).toMatch(/"msg":"Detected API groups from API server".*"v3present":true,"v1present":false/);
    expect(operatorLog.stdout).toMatch(/"msg":"Ensuring CRDs are installed".*"v3":true/);
    // The operator injects CALICO_API_GROUP into what it deploys (pkg/controller/utils/component.go).
    const env = (app: string) => {
      const pod = f.calicoPods().find((p) => p.metadata.labels["k8s-app"] === app);
      return Object.fromEntries((pod?.spec.containers[0].env ?? []).map((e: any) => [e.name, e.value]));
    };
    for (const app of ["calico-node", "calico-kube-controllers"]) expect([app, env(app).CALICO_API_GROUP]).toEqual([app, "projectcalico.org/v3"]);
    // Its v3 admission policies act on a v3 policy written without tier or types
    // (operator pkg/imports/admission/calico: tierlabel and policytypes); it selects nothing.
    const name = "fabric-v3-admission";
    const probe = { apiVersion: "projectcalico.org/v3", kind: "GlobalNetworkPolicy", metadata: { name }, spec: { selector: `${name} == 'none'`, ingress: [{ action: "Allow" }] } };
    try {
      // An API server that started before the v3 CRDs were served refuses every v3 policy
      // until its admission REST mapper's next reset, at most 30 s later (docs/facts.md,
      // "paramKind"): the create is repeated for that window only.
      const paramKindMiss = /failed to find resource referenced by paramKind/;
      let refused = 0;
      const created = await waitFor("the v3 probe policy admitted", 75_000, () => {
        const r = f.kubectl(["create", "-f", "-"], JSON.stringify(probe));
        if (r.status !== 0 && paramKindMiss.test(r.stderr)) return void refused++;
        return r;
      });
      if (refused > 0) f.figures.push(`v3 probe policy refused ${refused} time(s) for an unresolved paramKind before it was admitted`);
      expect([created.status, created.stderr]).toEqual([0, ""]);
      const live = f.json(["get", "globalnetworkpolicies.projectcalico.org", name]);
      expect([live.spec.tier, live.spec.types, live.metadata.labels?.["projectcalico.org/tier"]]).toEqual(["default", ["Ingress"], "default"]);
    } finally {
      f.kubectl(["delete", "globalnetworkpolicies.projectcalico.org", name, "--ignore-not-found"]);
    }
    // kube-controllers read our v3 KubeControllersConfiguration: one automatic host endpoint per node, as v3 objects.
    const hostEndpoints = await waitFor("a v3 host endpoint per node", 60_000, () => {
      const nodes = (f.json(["get", "hostendpoints.projectcalico.org"]).items as any[]).map((h) => h.spec.node as string).sort();
      return JSON.stringify(nodes) === JSON.stringify(NODES) ? nodes : undefined;
    });
    expect(hostEndpoints).toEqual(NODES);
  });

  const podRangeOfBlock = podRange(CLUSTER_BLOCK);

  test(`a pod on every node gets an address from the pod range (${podRangeOfBlock}), and no node has a tunnel device`, async () => {
    expect(podRangeOfBlock).toBe("2001:db8:0:ab10::/64");
    for (const [name, { address, netns }] of await f.probePods(NODES)) {
      expect([name, address, inside(address, podRangeOfBlock)]).toEqual([name, address, true]);
      // The pod's network namespace, found by its address among the CNI's namespaces in the node.
      expect([name, netns]).toEqual([name, expect.stringMatching(/^cni-/)]);
      probes.set(name, { address, netns: netns! });
    }
    f.figures.push(`probe pods: ${[...probes].map(([n, p]) => `${n} ${p.address}`).join(", ")}`);
    for (const name of NODES) {
      const links = f.node(name).exec(["ip", "-d", "-o", "link", "show"]).stdout;
      expect([name, links.match(/\b(vxlan|ipip|ip6tnl|sit|wireguard|tunl0|vxlan\.calico|vxlan-v6\.calico|wg-v6\.cali)\b/g)]).toEqual([name, null]);
    }
  });

  test("both routers hold an Established session with every node (AS 65000) and each node's pod blocks, learned over BGP with the node as next hop", async () => {
    const blocks = f.json(["get", "blockaffinities.projectcalico.org"]).items as any[];
    const byNode = new Map<string, string[]>();
    for (const b of blocks.filter((x) => x.spec.state === "confirmed")) byNode.set(b.spec.node, [...(byNode.get(b.spec.node) ?? []), b.spec.cidr]);
    f.figures.push(`pod blocks: ${[...byNode].map(([n, c]) => `${n} ${c.join(" ")}`).join(", ")}`);
    expect([...byNode.keys()].sort()).toEqual(NODES);
    const established = Date.now();
    for (const router of f.routers) {
      await waitFor(`${router.address}: every node's blocks`, 120_000, () => {
        const routes = router.routes();
        return NODES.every((n) => byNode.get(n)!.every((cidr) => routes.some((r) => r.prefix === cidr))) ? true : undefined;
      });
      const sessions = router.sessions();
      for (const name of NODES) {
        const node = f.node(name);
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
    f.figures.push(`routers held every block ${((Date.now() - established) / 1000).toFixed(1)} s after the check began`);
  });

  test("pod to pod across nodes over TCP and ICMPv6, through a router", async () => {
    const [server, ...clients] = NODES;
    const serverProbe = probes.get(server)!;
    const serverNode = f.node(server);
    const proc = serverNode.start(["ip", "netns", "exec", serverProbe.netns, "/usr/bin/python3", "-c", TCP_SERVER, "8080"], path.join(f.work, "logs", "tcp-server.log"));
    f.background.push({ kill: () => proc.pid && process.kill(-proc.pid, "SIGKILL") });
    for (const client of clients) {
      const probe = probes.get(client)!;
      const node = f.node(client);
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
}
