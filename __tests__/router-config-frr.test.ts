/**
 * The generated FRR configuration of a top-of-rack router (NODE_TARGET=matchbox,
 * `router_configs` output), run unchanged by Debian's FRR (zebra and bgpd) in a network
 * namespace, with a node's BIRD on the same link: the router accepts exactly the prefixes
 * a node may announce, installs them in its kernel, sends nothing back, and tears the
 * session down when updates push the node past the prefix budget (one prefix later than
 * BIRD: FRR 8.4 checks the limit before it counts the arriving prefix). Expectations are
 * literals from the README's address plan and prefix budget. Needs root, iproute2, bird2
 * and frr.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { TorLab } from "../rehearsal/tor-lab";
import { onlyStack, synthesize } from "./support/synth";
import { ACCEPTED, TEN_BLOCKS, NODE, REFUSED, ROUTER, labUnavailable, nodeConfig, waitFor } from "./support/tor-node";

const example = path.join(__dirname, "..", "examples", "matchbox-inventory.json");
const why = labUnavailable(["bird", "birdc", "ip", "vtysh", "/usr/lib/frr/bgpd", "/usr/lib/frr/zebra"]);
if (why) console.warn(`SKIPPED router FRR sessions: ${why}`);
const describeLab = why ? describe.skip : describe;

describeLab("the generated FRR router configuration, running", () => {
  let dir: string;
  let lab: TorLab;
  const neighbor = () => JSON.parse(lab.vtysh(`show bgp neighbor ${NODE} json`) || "{}")[NODE] ?? {};
  const routes = (): string[] => Object.keys(JSON.parse(lab.vtysh("show bgp ipv6 unicast json") || "{}").routes ?? {});

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "v6fabric-tor-frr-"));
    const configs = onlyStack(synthesize({ NODE_TARGET: "matchbox", MATCHBOX_INVENTORY: example })).output!.router_configs.value;
    lab = new TorLab({ dir, routerAddress: `${ROUTER}/64`, nodeAddress: `${NODE}/64`, routerConfig: configs[ROUTER].frr, routerDaemon: "frr" });
    lab.start(nodeConfig([...ACCEPTED, ...REFUSED]));
    // Right after it starts, bgpd often ends its first session with a finite state machine
    // error (Neighbor Events Error), and both sides then wait their retry timers (FRR's
    // connect-retry 120 s, BIRD's error wait 60 s). What an operator would do, the lab
    // does after 4 s: restart the node's session and `clear bgp` it at the router.
    let tried = Date.now();
    const took = await waitFor("the node's session Established at the router", () => {
      if (neighbor().bgpState === "Established") return true;
      if (Date.now() - tried > 4000) {
        lab.birdc("node", ["restart", "tor"]);
        lab.vtysh(`clear bgp ${NODE}`);
        tried = Date.now();
      }
      return false;
    });
    console.log(`router FRR: node session Established ${took} ms after the node's BIRD started`);
  }, 60_000);

  afterAll(async () => {
    await lab?.destroy();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test("it accepts the pod blocks, the Service ranges and Local /128s, and nothing else", async () => {
    await waitFor("five accepted routes", () => routes().length === ACCEPTED.length, 15_000);
    expect(routes().sort()).toEqual([...ACCEPTED].sort());
    for (const p of REFUSED) expect(routes()).not.toContain(p);
  });

  test("it installs them in its kernel, and sends the node nothing", async () => {
    await waitFor("five kernel routes", () => lab.routerKernelRoutes().trim().split("\n").length === ACCEPTED.length, 15_000);
    const kernel = lab.routerKernelRoutes();
    for (const p of ACCEPTED) expect(kernel).toMatch(new RegExp(`^${p.replace(/\/128$/, "")}(/\\d+)? `, "m"));
    expect(lab.birdc("node", ["show", "protocols", "all", "tor"])).toMatch(/Routes:\s+0 imported, \d+ exported/);
  });

  test("eight acceptable prefixes keep the session; FRR 8.4 tears it down at the tenth, a prefix arriving while it holds more than eight", async () => {
    lab.announce(nodeConfig(TEN_BLOCKS.slice(0, 8)));
    await waitFor("eight accepted", () => routes().length === 8, 15_000);
    await new Promise((r) => setTimeout(r, 2000));
    expect(neighbor().bgpState).toBe("Established");
    // FRR checks the limit before it counts the new prefix, so the ninth is still taken.
    lab.announce(nodeConfig(TEN_BLOCKS.slice(0, 9)));
    await waitFor("nine accepted", () => routes().length === 9, 15_000);
    await new Promise((r) => setTimeout(r, 2000));
    expect([neighbor().bgpState, neighbor().addressFamilyInfo?.ipv6Unicast?.acceptedPrefixCounter]).toEqual(["Established", 9]);
    lab.announce(nodeConfig(TEN_BLOCKS));
    await waitFor("the session down past the limit", () => neighbor().bgpState !== "Established", 15_000);
    const n = neighbor();
    console.log(`router FRR past the limit: state ${n.bgpState}, last notification "${n.lastNotificationReason}"`);
    expect(n.lastNotificationReason).toBe("Cease/Maximum Number of Prefixes Reached");
    expect(routes()).toEqual([]);
  });
});
