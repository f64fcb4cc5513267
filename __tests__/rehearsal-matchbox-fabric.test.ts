/**
 * The Matchbox target's fabric rehearsal (issue #26, acceptance line 2), lean: one control
 * plane and one worker of __tests__/fixtures/matchbox-inventory-fabric.json, applied with
 * the real Terraform and poseidon/matchbox provider against the real Matchbox, each booted
 * from the Ignition Matchbox serves its MAC with os=installed, Calico running, and the
 * rack's two routers running the `router_configs` output's BIRD 2 configuration unchanged
 * (support/matchbox-fabric.ts), with a third only the worker names (per rack). The nodes form the cluster, pods get addresses from the
 * pod range, the routers learn each node's pod block over BGP, and a client on the
 * Internet reaches a pod through a LoadBalancer address the routers route.
 *
 * The fabric's other behaviour (joins under faults, policies, prefix limits) is the same
 * user data's and is rehearsed on Metal's emulator by rehearsal-fabric.test.ts.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { ignitionValidateBinary } from "../rehearsal/matchbox-tools";
import { runUnit } from "../rehearsal/units";
import { TCP_SERVER, inside, podRange, waitFor } from "./support/fabric";
import { CLUSTER_BLOCK, EXTERNAL_RANGE, INTERNET_HOST, PROJECT_ASN } from "./support/fabric-rehearsal";
import { MACHINES, MatchboxFabricRehearsal, matchboxFabricSkipReason } from "./support/matchbox-fabric";
import { decodeDataUrl } from "./support/ignition";

const why = matchboxFabricSkipReason();
if (why) console.warn(`SKIPPED Matchbox fabric rehearsal (1 + 1 machines booted from Matchbox, Calico, BIRD 2 top-of-rack routers): ${why}`);
const describeRehearsal = why ? describe.skip : describe;

const NAMES = MACHINES.map((m) => m.name);
/** The inventory's routers, written apart from the output, all in AS 65100: the rack's two, which every machine names... */
const RACK_ROUTERS = ["2001:db8:0:ab00::2", "2001:db8:0:ab00::3"];
/** ...and one only the worker names (as another rack's machine would name its own). */
const WORKER_ROUTER = "2001:db8:0:ab00::4";
const ROUTER_ASN = 65100;
const WORKER = "v6fabric-worker-01";

describeRehearsal("Matchbox fabric rehearsal: machines booted from Matchbox, Calico, the generated BIRD 2 on the routers", () => {
  const f = new MatchboxFabricRehearsal();
  const probes = new Map<string, { address: string; netns: string | undefined }>();

  beforeAll(() => f.start(), 600_000);
  afterAll(() => f.stop(), 300_000 + Number(process.env.V6FABRIC_HOLD_SECONDS ?? 0) * 1000);

  test("each node booted from what Matchbox serves its MAC: valid to ignition-validate as served, its metadata source the inventory's, its link what the config's network file says", () => {
    for (const m of MACHINES) {
      const served = f.cluster!.served.get(m.name)!;
      const file = path.join(f.work, `${m.name}.served.ign`);
      fs.writeFileSync(file, served);
      const validated = spawnSync(ignitionValidateBinary(), [file], { encoding: "utf8" });
      expect([m.name, validated.status, `${validated.stdout}${validated.stderr}`]).toEqual([m.name, 0, ""]);
      const node = f.node(m.name);
      // What Ignition wrote from it, as the node sees it.
      const metadata = node.exec(["cat", "/etc/v6fabric/metadata/flatcar"]).stdout;
      expect([m.name, metadata]).toEqual([m.name, expect.stringContaining(`COREOS_PACKET_IPV6_PUBLIC_0=${m.address.split("/")[0]}\n`)]);
      const stored = JSON.parse(served).storage.files.find((x: any) => x.path === "/etc/v6fabric/metadata/flatcar");
      expect(decodeDataUrl(stored.contents.source).toString("utf8")).toBe(metadata);
      const link = node.exec(["ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global"]).stdout;
      expect([m.name, link]).toEqual([m.name, expect.stringContaining(`inet6 ${m.address} `)]);
    }
  });

  test("every Node is Ready", async () => {
    const before = Date.now();
    await f.everyNodeReady(NAMES);
    f.figures.push(`every Node Ready ${((Date.now() - f.started) / 1000).toFixed(1)} s after the start (waited ${((Date.now() - before) / 1000).toFixed(1)} s)`);
    expect(Object.keys(f.readiness()).sort()).toEqual([...NAMES].sort());
  });

  const pods = podRange(CLUSTER_BLOCK);

  test(`a pod on every node gets an address from the pod range (${pods})`, async () => {
    expect(pods).toBe("2001:db8:0:ab10::/64");
    for (const [name, probe] of await f.probePods(NAMES)) {
      expect([name, inside(probe.address, pods), probe.netns]).toEqual([name, true, expect.stringMatching(/^cni-/)]);
      probes.set(name, probe);
    }
    f.figures.push(`probe pods: ${[...probes].map(([n, p]) => `${n} ${p.address}`).join(", ")}`);
  });

  /** Each node's confirmed pod blocks, from Calico's block affinities. */
  const blocksByNode = () => {
    const byNode = new Map<string, string[]>();
    for (const b of (f.json(["get", "blockaffinities.projectcalico.org"]).items as any[]).filter((x) => x.spec.state === "confirmed")) byNode.set(b.spec.node, [...(byNode.get(b.spec.node) ?? []), b.spec.cidr]);
    return byNode;
  };

  /** Waits for `router` to hold `names`' pod blocks; then checks its sessions are exactly with them, Established, and each block came over BGP from its node. */
  async function holdsBlocksOf(router: (typeof f.routers)[number], names: readonly string[], byNode: Map<string, string[]>): Promise<void> {
    expect(fs.readFileSync(router.configFile, "utf8")).toBe(router.config);
    await waitFor(`${router.address}: the pod blocks of ${names.join(", ")}`, 120_000, () => {
      const routes = router.routes();
      return names.every((n) => byNode.get(n)!.every((cidr) => routes.some((r) => r.prefix === cidr))) ? true : undefined;
    });
    const addresses = MACHINES.filter((m) => names.includes(m.name)).map((m) => m.address.split("/")[0]);
    const sessions = router.sessions();
    expect([router.address, sessions.map((s) => [s.neighbor, s.bgpState]).sort()]).toEqual([router.address, addresses.map((a) => [a, "Established"]).sort()]);
    for (const m of MACHINES.filter((x) => names.includes(x.name))) {
      const address = m.address.split("/")[0];
      const session = sessions.find((s) => s.neighbor === address)!;
      const detail = router.birdc(["show", "protocols", "all", session.protocol]);
      expect([/Neighbor AS:\s+(\d+)/.exec(detail)?.[1], /Local AS:\s+(\d+)/.exec(detail)?.[1]]).toEqual([String(PROJECT_ASN), String(ROUTER_ASN)]);
      for (const cidr of byNode.get(m.name)!) {
        expect([router.address, cidr, inside(cidr.split("/")[0], pods), router.routes(cidr)[0]?.nexthops]).toEqual([router.address, cidr, true, [address]]);
        // BIRD's own table: the route came over BGP from that node.
        const table = router.birdc(["show", "route", "for", cidr, "all"]);
        expect([router.address, cidr, table.includes("BGP.origin"), table.includes(`via ${address} on`)]).toEqual([router.address, cidr, true, true]);
      }
    }
  }

  test("the rack's routers run the router_configs output's BIRD 2 configuration unchanged and hold an Established session with every node and each node's pod blocks, learned over BGP with the node as next hop", async () => {
    expect(f.routers.map((r) => [r.address, r.asn]).sort()).toEqual([...RACK_ROUTERS, WORKER_ROUTER].map((a) => [a, ROUTER_ASN]));
    expect(f.sharedRouters().map((r) => r.address).sort()).toEqual(RACK_ROUTERS);
    const byNode = blocksByNode();
    expect([...byNode.keys()].sort()).toEqual([...NAMES].sort());
    for (const router of f.sharedRouters()) await holdsBlocksOf(router, NAMES, byNode);
  });

  test("per rack: the router only the worker names has a session with the worker alone, holds only its blocks, and Calico peers only the worker with it (its BGPPeer's node selector)", async () => {
    const router = f.routers.find((r) => r.address === WORKER_ROUTER)!;
    const byNode = blocksByNode();
    await holdsBlocksOf(router, [WORKER], byNode);
    for (const cidr of byNode.get(MACHINES[0].name)!) expect([cidr, router.routes(cidr)]).toEqual([cidr, []]);
    // What each node's BIRD peers with, as calico-node reports it (CalicoNodeStatus).
    const peersOf = async (node: string) => {
      const status = { apiVersion: "projectcalico.org/v3", kind: "CalicoNodeStatus", metadata: { name: `peers-${node}` }, spec: { node, classes: ["BGP"], updatePeriodSeconds: 3 } };
      const created = f.kubectl(["apply", "-f", "-"], JSON.stringify(status));
      expect([created.status, created.stderr]).toEqual([0, ""]);
      return waitFor(`${node}'s BGP peers in its CalicoNodeStatus`, 60_000, () => {
        const peers = (f.json(["get", "caliconodestatuses.projectcalico.org", `peers-${node}`]).status?.bgp?.peersV6 ?? []) as { peerIP: string; state: string }[];
        return peers.length > 0 && peers.every((p) => p.state === "Established") ? peers.map((p) => p.peerIP).sort() : undefined;
      });
    };
    expect(await peersOf(MACHINES[0].name)).toEqual(RACK_ROUTERS);
    expect(await peersOf(WORKER)).toEqual([...RACK_ROUTERS, WORKER_ROUTER].sort());
  });

  test("from the Internet, through the routers: a LoadBalancer address of a pod that opted in answers, once its nodes announce the external range", async () => {
    const worker = WORKER;
    const probe = probes.get(worker)!;
    const proc = f.node(worker).start(["ip", "netns", "exec", probe.netns!, "/usr/bin/python3", "-c", TCP_SERVER, "8080"], path.join(f.work, "logs", "tcp-server.log"));
    f.background.push({ kill: () => proc.pid && process.kill(-proc.pid, "SIGKILL") });
    const lbAddress = await f.probeLoadBalancer(worker);
    expect([lbAddress, inside(lbAddress, EXTERNAL_RANGE)]).toEqual([lbAddress, true]);
    const label = f.kubectl(["-n", "default", "label", "pod", `probe-${worker}`, "fabric.v6/public=true"]);
    expect([label.status, label.stderr]).toEqual([0, ""]);
    // The worker registered withdrawn; its service-announcement unit lifts that once kube-proxy answers.
    const announced = await runUnit(f.node(worker), "v6fabric-service-announcement.service", { logFile: path.join(f.logDir(worker), "units.log") });
    expect([announced[0].status, announced[0].output]).toEqual([0, expect.stringContaining(`${worker} announces the Service ranges`)]);
    const everyNode = MACHINES.map((m) => m.address.split("/")[0]).sort();
    for (const router of f.sharedRouters()) {
      const held = await waitFor(`${router.address}: ${EXTERNAL_RANGE} from every node`, 90_000, () => {
        const nexthops = router.routes(EXTERNAL_RANGE)[0]?.nexthops ?? [];
        return JSON.stringify([...nexthops].sort()) === JSON.stringify(everyNode) ? nexthops : undefined;
      });
      expect([router.address, [...held].sort()]).toEqual([router.address, everyNode]);
    }
    // The hub, the Internet's way in, has no route to the external range but the routers.
    const viaHub = spawnSync("ip", ["netns", "exec", f.cluster!.fabric.hub, "ip", "-6", "route", "get", lbAddress], { encoding: "utf8" }).stdout;
    expect([viaHub, RACK_ROUTERS.some((r) => viaHub.includes(`via ${r} `))]).toEqual([viaHub, true]);
    const opened = Date.now();
    const answer = await waitFor("the Internet's connection to the LoadBalancer address", 90_000, () => {
      const r = f.internet.greet(lbAddress, 80);
      return r.status === 0 ? r.stdout.trim() : undefined;
    });
    expect(answer).toMatch(new RegExp(`^hello from ${worker} to `));
    f.figures.push(`Internet ${INTERNET_HOST} -> LoadBalancer ${lbAddress} answered ${((Date.now() - opened) / 1000).toFixed(1)} s after the routers held the range`);
  });
});
