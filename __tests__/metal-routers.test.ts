/**
 * Metal's routers in the rehearsal (issue #23 item 4): the rendered bird2 configuration
 * is read by the real `bird -p`, then two routers and three nodes, each a network
 * namespace running Debian's bird2, show the behaviour docs/facts.md describes: the
 * routers hold the nodes' more-specifics of the /56 with the node as next hop, ECMP
 * across the nodes announcing one prefix, nothing else imported and nothing sent back,
 * MD5 enforced, a node past 10 prefixes torn down alone, and a stopped node withdrawn.
 *
 * The nodes' bird configuration is written here (AS 65000, both peers multihop, static
 * routes exported); the routers' is the renderer's, from `bgp_neighbors` entries as the
 * Metal emulator serves them. Expected prefixes are literals of the test's /56.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { MetalBgpNeighbor, renderMetalRouterConfig, sessionProtocolName } from "../rehearsal/metal-routers";
import { birdSupport, MetalRouter, RouterSession, startMetalRouters } from "../rehearsal/metal-router-namespaces";
import { Fabric, nodeSupport, RehearsalNode } from "../rehearsal/nodes";

const BLOCK = "2001:db8:500:ab00::/56";
const MD5 = "v6fabric-md5-Test";

function neighbor(customerIp: string, md5?: string): MetalBgpNeighbor {
  return {
    address_family: 6,
    customer_as: 65000,
    customer_ip: customerIp,
    md5_enabled: md5 !== undefined,
    md5_password: md5 ?? null,
    multihop: true,
    peer_as: 65530,
    peer_ips: ["fc00::e", "fc00::f"],
    // As the emulator serves it: the routers accept more-specifics of the project's /56.
    routes_in: [{ route: BLOCK, exact: false }],
    routes_out: [],
  };
}

const bird = birdSupport();
if (!bird.ok) console.warn(`SKIPPED bird -p checks of Metal's router configuration: ${bird.why}`);
const describeBird = bird.ok ? describe : describe.skip;

describe("renderMetalRouterConfig", () => {
  const config = renderMetalRouterConfig({
    routerAddress: "fc00::f",
    projectBlock: BLOCK,
    nodeInterface: "eth0",
    neighbors: [neighbor("2001:db8:500:ab00::3", MD5), neighbor("2001:db8:500:ab00::5"), { ...neighbor("2001:db8:500:ab00::7"), peer_ips: ["fc00::e"] }],
  });

  test("one session per node that peers with this router, MD5 only where enabled", () => {
    expect(config.sessions).toEqual([
      { protocol: "node_2001_db8_500_ab00__3", neighbor: "2001:db8:500:ab00::3", neighborAs: 65000, md5: true },
      { protocol: "node_2001_db8_500_ab00__5", neighbor: "2001:db8:500:ab00::5", neighborAs: 65000, md5: false },
    ]);
    expect(config.text.match(/password "([^"]*)"/g)).toEqual([`password "${MD5}"`]);
    expect(config.text).toContain("router id 0.0.0.15;");
  });

  test("more-specifics of the /56 only, 10 prefixes then disable, nothing exported, ECMP", () => {
    expect(config.text.match(/import where net ~ \[ 2001:db8:500:ab00::\/56\{57,128\} \];/g)).toHaveLength(2);
    expect(config.text.match(/import limit 10 action disable;/g)).toHaveLength(2);
    expect(config.text.match(/export none;/g)).toHaveLength(2);
    expect(config.text.match(/source address fc00::f;/g)).toHaveLength(2);
    expect(config.text).toContain("merge paths on;");
  });

  test("each session offers the rehearsal's 30 s hold time, or the one asked for", () => {
    expect(config.text.match(/hold time 30;/g)).toHaveLength(2);
    const other = renderMetalRouterConfig({ routerAddress: "fc00::e", projectBlock: BLOCK, nodeInterface: "eth0", neighbors: [neighbor("2001:db8:500:ab00::3")], holdTimeSeconds: 90 });
    expect(other.text.match(/hold time \d+;/g)).toEqual(["hold time 90;"]);
  });

  test("the import filter is the node's routes_in: exact routes as themselves, others' more-specifics; none: the /56's", () => {
    const filter = (routes_in: MetalBgpNeighbor["routes_in"]) =>
      /import where net ~ \[ (.*) \];/.exec(renderMetalRouterConfig({ routerAddress: "fc00::e", projectBlock: BLOCK, nodeInterface: "eth0", neighbors: [{ ...neighbor("2001:db8:500:ab00::3"), routes_in }] }).text)?.[1];
    expect(filter([{ route: "2001:db8:500:ab40::/60", exact: false }, { route: "2001:db8:500:ab50::/64", exact: true }])).toBe("2001:db8:500:ab40::/60{61,128}, 2001:db8:500:ab50::/64");
    expect(filter([])).toBe("2001:db8:500:ab00::/56{57,128}");
  });

  test.each([
    ["routes_in outside the /56", { neighbors: [{ ...neighbor("2001:db8:500:ab00::3"), routes_in: [{ route: "2001:db8:500:ac00::/64", exact: false }] }] }, /routes_in 2001:db8:500:ac00::\/64 is not inside the project's block/],
    ["routes_in wider than the /56", { neighbors: [{ ...neighbor("2001:db8:500:ab00::3"), routes_in: [{ route: "2001:db8:500::/48", exact: false }] }] }, /not inside the project's block/],
    ["a /48", { projectBlock: "2001:db8:500::/48" }, /projectBlock=2001:db8:500::\/48 is not valid/],
    ["host bits", { projectBlock: "2001:db8:500:ab01::/56" }, /bits set past \/56/],
    ["another router", { routerAddress: "fc00::1" }, /routerAddress=fc00::1/],
    ["peer_as", { neighbors: [{ ...neighbor("2001:db8:500:ab00::3"), peer_as: 65000 }] }, /peer_as=65000.*AS 65530/],
    ["single hop", { neighbors: [{ ...neighbor("2001:db8:500:ab00::3"), multihop: false }] }, /multihop is false/],
    ["empty password", { neighbors: [{ ...neighbor("2001:db8:500:ab00::3"), md5_enabled: true, md5_password: "" }] }, /md5_password is empty/],
    ["quote in password", { neighbors: [neighbor("2001:db8:500:ab00::3", 'a"b')] }, /cannot be written for BIRD/],
    ["twice", { neighbors: [neighbor("2001:db8:500:ab00::3"), neighbor("2001:db8:500:ab00:0::3")] }, /listed twice/],
    ["a hold time of 2 s", { holdTimeSeconds: 2 }, /holdTimeSeconds=2 is not valid: a BGP hold time is a whole number of seconds from 3 to 65535/],
  ])("refuses %s", (_name, change, message) => {
    expect(() => renderMetalRouterConfig({ routerAddress: "fc00::e", projectBlock: BLOCK, nodeInterface: "eth0", neighbors: [neighbor("2001:db8:500:ab00::3")], ...change } as never)).toThrow(message);
  });
});

describeBird("bird -p reads every rendered configuration", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "metal-routers-parse-"));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  test.each([
    ["no MD5", [neighbor("2001:db8:500:ab00::3"), neighbor("2001:db8:500:ab00::5")]],
    ["MD5", [neighbor("2001:db8:500:ab00::3", MD5), neighbor("2001:db8:500:ab00::5", MD5)]],
    ["routes_in with exact and wider entries", [{ ...neighbor("2001:db8:500:ab00::3"), routes_in: [{ route: "2001:db8:500:ab40::/60", exact: false }, { route: "2001:db8:500:ab50::/64", exact: true }] }]],
    ["no nodes yet", []],
  ])("%s", (name, neighbors) => {
    for (const routerAddress of ["fc00::e", "fc00::f"] as const) {
      const file = path.join(dir, `${name.replace(/\W/g, "_")}-${routerAddress.slice(-1)}.conf`);
      fs.writeFileSync(file, renderMetalRouterConfig({ routerAddress, projectBlock: BLOCK, neighbors, nodeInterface: "eth0" }).text);
      const result = spawnSync("bird", ["-p", "-c", file], { encoding: "utf8" });
      expect(`${result.stderr}${result.stdout}`.trim()).toBe("");
      expect(result.status).toBe(0);
    }
  });
  test("and refuses a broken one (the check can fail)", () => {
    const file = path.join(dir, "broken.conf");
    const text = renderMetalRouterConfig({ routerAddress: "fc00::e", projectBlock: BLOCK, neighbors: [neighbor("2001:db8:500:ab00::3")], nodeInterface: "eth0" }).text;
    fs.writeFileSync(file, text.replace("import limit 10 action disable;", "import limit ten action disable;"));
    expect(spawnSync("bird", ["-p", "-c", file], { encoding: "utf8" }).status).not.toBe(0);
  });
});

// ---- The routers and nodes, running ----------------------------------------------

const support = nodeSupport();
const why = !support.ok ? support.why : !bird.ok ? bird.why : undefined;
if (why) console.warn(`SKIPPED Metal routers rehearsal (bird2 in namespaces): ${why}`);
const describeRouters = why ? describe.skip : describe;

/** The nodes: public IPv6 /127s of the /56's first /64, the gateway on the hub. */
const NODES = [
  { hostname: "node-a", ipv6: "2001:db8:500:ab00::3", gateway: "2001:db8:500:ab00::2", ipv4: "10.66.0.3", ipv4Gateway: "10.66.0.2" },
  { hostname: "node-b", ipv6: "2001:db8:500:ab00::5", gateway: "2001:db8:500:ab00::4", ipv4: "10.66.0.5", ipv4Gateway: "10.66.0.4" },
  { hostname: "node-c", ipv6: "2001:db8:500:ab00::7", gateway: "2001:db8:500:ab00::6", ipv4: "10.66.0.7", ipv4Gateway: "10.66.0.6" },
];
const [A, B, C] = NODES.map((n) => n.ipv6);
const ONLY_A = "2001:db8:500:ab10::/64";
const ONLY_B = "2001:db8:500:ab20::/64";
const ONLY_C = "2001:db8:500:ab30::/64";
const SHARED = "2001:db8:500:abf0::/64";
const OUTSIDE = "2001:db8:999::/64";
/** Ten /128s of node C's /64 and one more: the 11th is past Metal's limit. */
const C_HOSTS = Array.from({ length: 11 }, (_, i) => `2001:db8:500:ab30::${(i + 1).toString(16)}/128`);

/** The node side, as the test's nodes run it: AS 65000, both peers, static routes exported. */
function nodeBirdConfig(index: number, ipv6: string, prefixes: readonly string[], password?: string): string {
  const peer = (name: string, address: string) => [
    `protocol bgp ${name} {`,
    `  local ${ipv6} as 65000;`,
    `  neighbor ${address} as 65530;`,
    "  multihop;",
    ...(password !== undefined ? [`  password "${password}";`] : []),
    "  connect delay time 1;",
    "  connect retry time 3;",
    "  error wait time 1, 3;",
    "  ipv6 { import all; export all; };",
    "}",
  ];
  return [
    `router id 10.0.0.${index + 1};`,
    "protocol device {}",
    "protocol static announced {",
    "  ipv6;",
    ...prefixes.map((p) => `  route ${p} blackhole;`),
    "}",
    ...peer("metal_e", "fc00::e"),
    ...peer("metal_f", "fc00::f"),
    "",
  ].join("\n");
}

/** Polls `check` until it returns true or `timeoutMs` passes; returns the time it took, or throws with `what`. */
async function waitFor(what: string, check: () => boolean, timeoutMs = 30_000): Promise<number> {
  const start = Date.now();
  for (;;) {
    if (check()) return Date.now() - start;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeRouters("Metal's routers (bird2) peering with nodes (bird2) in namespaces", () => {
  let workDir = "";
  let fabric: Fabric | undefined;
  let routers: MetalRouter[] = [];
  const nodes: RehearsalNode[] = [];
  const files = (i: number) => ({ conf: path.join(workDir, `node${i}.conf`), ctl: path.join(workDir, `node${i}.ctl`), pid: path.join(workDir, `node${i}.pid`) });

  function session(router: MetalRouter, ip: string): RouterSession {
    const found = router.sessions().find((s) => s.protocol === sessionProtocolName(ip));
    if (!found) throw new Error(`no session for ${ip} on ${router.address}`);
    return found;
  }
  const established = (ip: string) => routers.every((r) => session(r, ip).bgpState === "Established");
  const nexthops = (router: MetalRouter, prefix: string) => router.routes(prefix)[0]?.nexthops ?? [];

  function nodeBird(i: number, prefixes: readonly string[], password?: string): void {
    fs.writeFileSync(files(i).conf, nodeBirdConfig(i, NODES[i].ipv6, prefixes, password));
    expect(spawnSync("bird", ["-p", "-c", files(i).conf], { encoding: "utf8" }).stderr).toBe("");
  }
  function startNodeBird(i: number): void {
    const { conf, ctl, pid } = files(i);
    nodes[i].start(["bird", "-f", "-c", conf, "-s", ctl, "-P", pid], path.join(workDir, `node${i}.log`));
  }
  function nodeBirdc(i: number, args: readonly string[]): string {
    return spawnSync("birdc", ["-s", files(i).ctl, ...args], { encoding: "utf8" }).stdout;
  }
  async function reconfigureNode(i: number, prefixes: readonly string[], password?: string): Promise<void> {
    nodeBird(i, prefixes, password);
    expect(nodeBirdc(i, ["configure"])).toMatch(/Reconfigur/);
  }

  beforeAll(async () => {
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), "metal-routers-"));
    fabric = new Fabric(workDir);
    for (const [i, n] of NODES.entries()) {
      const root = path.join(workDir, `root${i}`);
      fs.mkdirSync(root);
      const node = fabric.addNode(n.hostname, root, { ipv6: n.ipv6, ipv6Gateway: n.gateway, privateIpv4: n.ipv4, privateIpv4Gateway: n.ipv4Gateway });
      // As bgp-peer-routes.sh does on a node: the peers via the public IPv6 gateway.
      for (const peer of ["fc00::e", "fc00::f"]) expect(node.exec(["ip", "-6", "route", "add", `${peer}/128`, "via", n.gateway]).status).toBe(0);
      nodes.push(node);
    }
    // Node B's sessions carry the project's MD5 password at the routers.
    routers = startMetalRouters(fabric, { projectBlock: BLOCK, workDir, neighbors: [neighbor(A), neighbor(B, MD5), neighbor(C)] });
    nodeBird(0, [ONLY_A, SHARED, OUTSIDE, BLOCK]);
    nodeBird(1, [ONLY_B, SHARED], "a-wrong-password");
    nodeBird(2, [ONLY_C]);
    for (const i of [0, 1, 2]) startNodeBird(i);
    await waitFor("nodes A and C Established with both routers", () => established(A) && established(C));
  }, 60_000);

  afterAll(() => {
    for (const r of routers) r.stop();
    fabric?.destroy();
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
  });

  test("each router holds every node's more-specific with that node as next hop", () => {
    for (const r of routers) {
      expect(nexthops(r, ONLY_A)).toEqual([A]);
      expect(nexthops(r, ONLY_C)).toEqual([C]);
    }
  });

  test("the /56 itself and a prefix outside it are not imported", () => {
    for (const r of routers) {
      expect(r.routes(BLOCK)).toEqual([]);
      expect(r.routes(OUTSIDE)).toEqual([]);
      const s = session(r, A);
      // Node A announced four prefixes; two pass the filter.
      expect([s.imported, s.exported]).toEqual([2, 0]);
      const table = r.birdc(["show", "route"]);
      expect(table).toContain(ONLY_A);
      expect(table).not.toContain(OUTSIDE);
      expect(table).not.toContain(BLOCK);
    }
  });

  test("MD5: a wrong or missing password keeps the session down, the right one brings it up", async () => {
    await sleep(8000); // several connect attempts of node B (connect retry time 3)
    for (const r of routers) expect(session(r, B).bgpState).not.toBe("Established");
    await reconfigureNode(1, [ONLY_B, SHARED]);
    await sleep(8000);
    for (const r of routers) expect(session(r, B).bgpState).not.toBe("Established");
    await reconfigureNode(1, [ONLY_B, SHARED], MD5);
    const took = await waitFor("node B Established with the right password", () => established(B));
    console.log(`MD5 session of node B came up ${took} ms after its password was set`);
  }, 60_000);

  test("a prefix announced by two nodes is one route with both nodes as next hops (ECMP)", async () => {
    await waitFor("the shared prefix via A and B on both routers", () => routers.every((r) => nexthops(r, SHARED).length === 2), 15_000);
    for (const r of routers) {
      expect(nexthops(r, SHARED)).toEqual([A, B].sort());
      expect(nexthops(r, ONLY_B)).toEqual([B]);
    }
  });

  test("nothing is sent back: the nodes import no route from the routers", () => {
    for (const i of [0, 1, 2]) {
      for (const peer of ["metal_e", "metal_f"]) {
        const text = nodeBirdc(i, ["show", "protocols", "all", peer]);
        expect(text).toMatch(/BGP state:\s+Established/);
        expect(text).toMatch(/Routes:\s+0 imported, \d+ exported/);
        expect(text).not.toMatch(/Routes:\s+0 imported, 0 exported/);
      }
    }
  });

  test("ten prefixes are accepted; the eleventh tears that node's session down, and only that one", async () => {
    await reconfigureNode(2, C_HOSTS.slice(0, 10));
    await waitFor("node C's ten /128s at both routers", () => routers.every((r) => session(r, C).imported === 10));
    await sleep(2000);
    for (const r of routers) expect(session(r, C).bgpState).toBe("Established");

    await reconfigureNode(2, C_HOSTS);
    await waitFor("node C's sessions disabled at both routers", () => routers.every((r) => session(r, C).state === "down"));
    for (const r of routers) {
      const s = session(r, C);
      expect(`${s.info} ${s.lastError}`).toMatch(/limit/i);
      if (r === routers[0]) console.log(`node C at ${r.address} past the limit: state ${s.state}, info "${s.info}", last error "${s.lastError}"`);
      expect(r.routes(C_HOSTS[0])).toEqual([]);
      expect(session(r, A).bgpState).toBe("Established");
      expect(session(r, B).bgpState).toBe("Established");
      expect(nexthops(r, ONLY_A)).toEqual([A]);
      expect(nexthops(r, SHARED)).toEqual([A, B].sort());
    }
    // Disabled, not restarting: still down after the node's retry interval.
    await sleep(5000);
    for (const r of routers) expect(session(r, C).state).toBe("down");

    // Back within the limit, the session returns only when the router's operator enables it.
    await reconfigureNode(2, [ONLY_C]);
    for (const r of routers) r.enableSession(C);
    await waitFor("node C Established again after enable", () => established(C));
    await waitFor("node C's /64 back at both routers", () => routers.every((r) => nexthops(r, ONLY_C).join() === C), 10_000);
  }, 90_000);

  test("a node whose BGP daemon stops is withdrawn by both routers", async () => {
    expect(nodes[0].killMatching(new RegExp(`bird -f -c ${files(0).conf}`))).toBe(1);
    const took = await waitFor("node A withdrawn by both routers", () => routers.every((r) => r.routes(ONLY_A).length === 0 && nexthops(r, SHARED).join() === B));
    console.log(`route withdrawal: both routers dropped node A's routes ${took} ms after its bird was killed (SIGKILL)`);
    for (const r of routers) expect(session(r, A).bgpState).not.toBe("Established");
  }, 60_000);
});
