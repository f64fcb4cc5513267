/**
 * The routers' per-session prefix limit on the running fabric (issue #23; lib/prefix-budget.ts):
 * what a namespace user creates never makes a node announce more than the limit, counted
 * at the routers, and a node forced past it by a test-only change is cut off there.
 */
import { METAL_MAX_PREFIXES } from "../../lib/prefix-budget";
import { waitFor } from "./fabric";
import { FabricRehearsal, NODES, WORKERS } from "./fabric-rehearsal";

/** Routes each router imported from each node's session, and the session's state. */
function counted(f: FabricRehearsal): { router: string; node: string; imported: number; state: string }[] {
  return f.routers.flatMap((r) =>
    r.sessions().map((s) => ({ router: r.address, node: NODES.find((n) => f.node(n).addresses.ipv6 === s.neighbor) ?? s.neighbor, imported: s.imported, state: s.bgpState || s.info })),
  );
}

export function prefixLimitTests(f: FabricRehearsal): void {
  test(`a namespace user's 20 LoadBalancer Services (4 of them Local on one node) and 40 pods: no node sends a router more than ${METAL_MAX_PREFIXES} prefixes, and every session stays up`, async () => {
    const ns = "tenant";
    const node = WORKERS[0];
    try {
      expect(f.kubectl(["create", "namespace", ns]).status).toBe(0);
      const deployment = {
        apiVersion: "apps/v1",
        kind: "Deployment",
        metadata: { name: "many", namespace: ns },
        spec: {
          replicas: 40,
          selector: { matchLabels: { app: "many" } },
          template: { metadata: { labels: { app: "many" } }, spec: { containers: [{ name: "pause", image: "registry.k8s.io/pause:3.10.2" }] } },
        },
      };
      // The Local Services' endpoints: one pod on one node.
      const pinned = { apiVersion: "v1", kind: "Pod", metadata: { name: "local-endpoint", namespace: ns, labels: { app: "local" } }, spec: { nodeName: node, containers: [{ name: "pause", image: "registry.k8s.io/pause:3.10.2" }] } };
      const services = Array.from({ length: 20 }, (_, i) => {
        const local = i < 4;
        return {
          apiVersion: "v1",
          kind: "Service",
          metadata: { name: `lb-${i}`, namespace: ns, ...(local ? { annotations: { "projectcalico.org/ipv6pools": '["local-services-ipv6"]' } } : {}) },
          spec: { type: "LoadBalancer", ...(local ? { externalTrafficPolicy: "Local" } : {}), selector: { app: local ? "local" : "many" }, ports: [{ port: 80, protocol: "TCP" }] },
        };
      });
      for (const doc of [deployment, pinned, ...services]) {
        const r = f.kubectl(["apply", "-f", "-"], JSON.stringify(doc));
        expect([doc.metadata.name, r.status, r.stderr]).toEqual([doc.metadata.name, 0, ""]);
      }
      const started = Date.now();
      await waitFor("40 + 1 pods Running", 300_000, () => {
        const pods = f.json(["-n", ns, "get", "pods"]).items as any[];
        return pods.filter((p) => p.status.phase === "Running").length === 41 ? true : undefined;
      });
      const addressed = await waitFor("the Services' addresses", 60_000, () => {
        const all = f.json(["-n", ns, "get", "services"]).items as any[];
        const withAddress = all.filter((s) => s.status.loadBalancer?.ingress?.[0]?.ip);
        // The Local pool holds 4 addresses, and the fabric's own Local Service took one.
        return withAddress.length >= 19 ? withAddress.length : undefined;
      });
      f.figures.push(`tenant: 41 pods Running and ${addressed} of 20 LoadBalancer Services addressed ${((Date.now() - started) / 1000).toFixed(1)} s after they were created`);
      // Let the nodes' BIRD export what follows from all that before counting.
      await new Promise((r) => setTimeout(r, 5000));
      const sessions = counted(f);
      f.figures.push(`prefixes the routers imported per session under load: ${sessions.map((s) => `${s.node} ${s.imported}`).join(", ")}`);
      expect(sessions.length).toBe(NODES.length * f.routers.length);
      for (const s of sessions) expect([s.router, s.node, s.state, s.imported <= METAL_MAX_PREFIXES]).toEqual([s.router, s.node, "Established", true]);
      // The node with the Local endpoint announces its Local /128s: the load shows in its count.
      const ofNode = sessions.filter((s) => s.node === node).map((s) => s.imported);
      expect(Math.min(...ofNode)).toBeGreaterThanOrEqual(6);
    } finally {
      f.kubectl(["delete", "namespace", ns, "--wait=false"]);
    }
  }, 600_000);

  // Nothing a user creates can pass the limit (above), so the test changes the fabric's
  // own settings: IPAM may give the node any number of blocks, and a pool outside the
  // export filter's ranges hands out /128 blocks to that node only.
  test(`a node forced past ${METAL_MAX_PREFIXES} prefixes (test-only: a /128-block pool for it and no block cap) is cut off by both routers, which hold none of its routes until the session is enabled again`, async () => {
    const node = WORKERS[1];
    const address = f.node(node).addresses.ipv6;
    const ipam = f.json(["get", "ipamconfigurations.projectcalico.org", "default"]);
    const maxBlocks = ipam.spec.maxBlocksPerHost;
    const pool = {
      apiVersion: "projectcalico.org/v3",
      kind: "IPPool",
      metadata: { name: "past-the-limit" },
      // Zone 14 of the block: free for the operator (lib/address-plan.ts), outside every export filter rule.
      spec: { cidr: "2001:db8:0:abe0::/120", blockSize: 128, ipipMode: "Never", vxlanMode: "Never", natOutgoing: false, nodeSelector: `kubernetes.io/hostname == '${node}'` },
    };
    const pods = Array.from({ length: 8 }, (_, i) => ({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: `past-${i}`, namespace: "default", annotations: { "cni.projectcalico.org/ipv6pools": '["past-the-limit"]' } },
      spec: { nodeName: node, containers: [{ name: "pause", image: "registry.k8s.io/pause:3.10.2" }] },
    }));
    try {
      expect(f.kubectl(["patch", "ipamconfigurations.projectcalico.org", "default", "--type=merge", "-p", JSON.stringify({ spec: { maxBlocksPerHost: 0 } })]).status).toBe(0);
      expect(f.kubectl(["create", "-f", "-"], JSON.stringify(pool)).status).toBe(0);
      for (const pod of pods) expect(f.kubectl(["apply", "-f", "-"], JSON.stringify(pod)).status).toBe(0);
      const cut = await waitFor(`both routers cutting ${node} off`, 180_000, () => {
        const own = counted(f).filter((s) => s.node === node);
        return own.every((s) => s.state !== "Established") ? own : undefined;
      });
      const errors = f.routers.map((r) => r.sessions().find((s) => s.neighbor === address)?.lastError);
      f.figures.push(`${node} past the limit: both routers disabled its session (${errors.join("; ")})`);
      expect(errors).toEqual(f.routers.map(() => expect.stringMatching(/limit/i)));
      // Nothing of the node stays on the routers: its pod block and its Service ranges are gone.
      for (const router of f.routers) expect([router.address, router.routes().filter((r) => r.nexthops.includes(address))]).toEqual([router.address, []]);
      expect(cut.length).toBe(f.routers.length);
    } finally {
      f.kubectl(["-n", "default", "delete", "pod", ...pods.map((p) => p.metadata.name), "--ignore-not-found", "--grace-period=0", "--force"]);
      f.kubectl(["delete", "ippools.projectcalico.org", "past-the-limit", "--ignore-not-found"]);
      f.kubectl(["patch", "ipamconfigurations.projectcalico.org", "default", "--type=merge", "-p", JSON.stringify({ spec: { maxBlocksPerHost: maxBlocks } })]);
    }
    // Back within the limit, the operator enables the session again (`birdc enable`).
    await waitFor(`${node}'s /128 blocks released`, 120_000, () => {
      const blocks = (f.json(["get", "blockaffinities.projectcalico.org"]).items as any[]).filter((b) => b.spec.node === node && b.spec.cidr.endsWith("/128"));
      return blocks.length === 0 ? true : undefined;
    });
    for (const router of f.routers) router.enableSession(address);
    await waitFor(`${node}'s sessions Established again`, 120_000, () => (counted(f).filter((s) => s.node === node).every((s) => s.state === "Established") ? true : undefined));
  }, 600_000);
}
