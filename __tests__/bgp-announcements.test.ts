/**
 * What one node announces to a Metal router, computed from the rendered Calico objects
 * with a model of Calico's export logic (support/bgp-export-model.ts), for the worst case
 * the cluster allows: 110 pods, IPAM's maximum of blocks, a pod on someone else's block,
 * the budget's worth of Local Services and more Local addresses than the budget. The
 * routers tear a session down past 10 prefixes (docs/facts.md), so the answer must stay
 * at or under 10 whatever users create.
 * Addresses are written out from the default plan (docs/address-plan.md) by hand.
 */
import { planAddresses } from "../lib/address-plan";
import { CalicoInput, calicoAddonManifests } from "../lib/calico";
import { CalicoObjects, NodeRouteState, announcements, exportDecision } from "./support/bgp-export-model";
import { parseManifest } from "./support/calico-validate";

const plan = planAddresses("2001:db8:0:ab00::/56");
const SERVICE_RANGE = "2001:db8:0:ab20::/108";
const EXTERNAL_RANGE = "2001:db8:0:ab30::/112";
const BLOCKS = ["2001:db8:0:ab10::/120", "2001:db8:0:ab10::100/120"];
const OTHER_NODES_BLOCK_ADDRESS = "2001:db8:0:ab10::7:5/128";
const LOCAL_POOL = ["2001:db8:0:ab30::8000", "2001:db8:0:ab30::8001", "2001:db8:0:ab30::8002", "2001:db8:0:ab30::8003"];
const CLUSTER_POOL_ADDRESS = "2001:db8:0:ab30::10";
const PAST_THE_POOL = "2001:db8:0:ab30::8004";

function rendered(localServiceRoutes: number) {
  const input: CalicoInput = { plan, asNumber: 65000, localServiceRoutes };
  const docs = calicoAddonManifests(input).flatMap((m) => ("yaml" in m ? parseManifest(m.yaml) : []));
  const one = (kind: string) => docs.filter((d) => d.kind === kind);
  const objects: CalicoObjects = { exportRules: one("BGPFilter")[0].spec.exportV6, pools: one("IPPool").map((p) => p.spec) };
  return { objects, filter: one("BGPFilter")[0].spec, bgp: one("BGPConfiguration")[0].spec, ipam: one("IPAMConfiguration")[0].spec, pools: one("IPPool") };
}

/** The Calico static routes for the Service ranges of the BGPConfiguration, plus per-Service /128s. */
function serviceRoutes(bgp: any, localServices: { clusterIp: string; address: string }[]): string[] {
  const ranges = [...bgp.serviceClusterIPs, ...bgp.serviceExternalIPs, ...bgp.serviceLoadBalancerIPs].map((r: any) => r.cidr);
  return [...ranges, ...localServices.flatMap((s) => [`${s.clusterIp}/128`, `${s.address}/128`])];
}

const pods110 = Array.from({ length: 110 }, (_, i) => `2001:db8:0:ab10::${i.toString(16)}/128`);

describe("the IPAM settings are the caps of the pod row", () => {
  test("strictAffinity (no borrowed /128s) and at most 2 blocks of /120 per node (110 pods + 1 spare)", () => {
    const { ipam, pools } = rendered(4);
    expect(ipam).toEqual({ strictAffinity: true, autoAllocateBlocks: true, maxBlocksPerHost: 2 });
    expect(pools.find((p) => p.metadata.name === "pods-ipv6")!.spec.blockSize).toBe(120);
  });
});

describe("one node's announcements in the worst case the cluster allows", () => {
  test.each([
    [0, []],
    [1, LOCAL_POOL.slice(0, 1)],
    [2, LOCAL_POOL.slice(0, 2)],
    [4, LOCAL_POOL],
  ])("LOCAL_SERVICE_ROUTES=%i: 2 pod blocks, the two Service ranges and the Local pool's /128s", (budget, expectedLocal) => {
    const { objects, bgp } = rendered(budget);
    // Local Services with an endpoint here: every address of the pool, then more that a
    // user could only get past the admission policy (say it was deleted): one past the
    // pool, one from the Cluster pool. Their ClusterIPs get /128s too (confd routes.go).
    const local = [...LOCAL_POOL, PAST_THE_POOL, CLUSTER_POOL_ADDRESS].map((address, i) => ({ clusterIp: `2001:db8:0:ab20::${(0x100 + i).toString(16)}`, address }));
    const state: NodeRouteState = {
      affineBlocks: BLOCKS,
      workloadRoutes: [...pods110, OTHER_NODES_BLOCK_ADDRESS],
      serviceRoutes: serviceRoutes(bgp, local),
    };
    const announced = announcements(state, objects, ["::/0", "2001:db8:0:ab00::2/127", "fc00::e/128"]);
    expect(announced.sort()).toEqual([...BLOCKS, SERVICE_RANGE, EXTERNAL_RANGE, ...expectedLocal.map((a) => `${a}/128`)].sort());
    expect(announced.length).toBeLessThanOrEqual(10);
  });
});

describe("the filter only adds to Calico's logic", () => {
  const { objects, bgp } = rendered(4);
  const state: NodeRouteState = { affineBlocks: [BLOCKS[0]], workloadRoutes: [], serviceRoutes: serviceRoutes(bgp, []) };

  test.each([
    // Calico decides: blocks with confirmed affinity to this node (IPAM's maxBlocksPerHost caps how many).
    ["this node's block", BLOCKS[0], "Accept"],
    // The filter decides.
    ["a pod's /128 in this node's block", "2001:db8:0:ab10::5/128", "Reject"],
    ["a pod's /128 in another node's block (a requested address)", OTHER_NODES_BLOCK_ADDRESS, "Reject"],
    ["the Service range", SERVICE_RANGE, "Accept"],
    ["a Local Service's ClusterIP /128", "2001:db8:0:ab20::a/128", "Reject"],
    ["the API ClusterIP on a control plane's lo", "2001:db8:0:ab20::1/128", "Reject"],
    ["the external range", EXTERNAL_RANGE, "Accept"],
    ["a Local pool /128", `${LOCAL_POOL[3]}/128`, "Accept"],
    ["the first address past the Local pool", `${PAST_THE_POOL}/128`, "Reject"],
    ["a Cluster-pool /128", `${CLUSTER_POOL_ADDRESS}/128`, "Reject"],
    ["a /120 inside the external range", "2001:db8:0:ab30::/120", "Reject"],
    // Calico decides: nothing outside its pools and Service ranges leaves.
    ["the default route", "::/0", "Reject"],
    ["the node's own /127", "2001:db8:0:ab00::2/127", "Reject"],
    ["a route to a BGP peer", "fc00::e/128", "Reject"],
  ])("%s (%s): %s", (_what, route, decision) => {
    expect(exportDecision(route, state, objects)).toBe(decision);
  });

  test("no rule accepts pod or Service ranges by itself: without Calico's routes nothing would leave", () => {
    const empty: NodeRouteState = { affineBlocks: [], workloadRoutes: [], serviceRoutes: [] };
    for (const route of [BLOCKS[0], SERVICE_RANGE, EXTERNAL_RANGE]) expect([route, exportDecision(route, empty, { ...objects, pools: [] })]).toEqual([route, "Reject"]);
  });

  test("the only Accept is the Local pool's /128s; imports nothing (the routers send nothing; the default route carries node-to-node traffic)", () => {
    const { filter } = rendered(4);
    expect(filter.exportV6.filter((r: any) => r.action === "Accept")).toEqual([
      { action: "Accept", matchOperator: "In", cidr: "2001:db8:0:ab30::8000/126", prefixLength: { min: 128, max: 128 } },
    ]);
    expect(filter.importV6).toEqual([{ action: "Reject" }]);
  });
});
