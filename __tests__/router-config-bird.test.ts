/**
 * The generated BIRD 2 configuration of a top-of-rack router (NODE_TARGET=matchbox,
 * `router_configs` output), run unchanged by Debian's bird2 in a network namespace, with a
 * node's BIRD on the same link announcing what calico-node could: the router imports
 * exactly the prefixes a node may announce, sends nothing back, installs the routes in
 * its kernel, and cuts a node off past the prefix budget. Expectations are literals from
 * the README's address plan and prefix budget. Needs root, iproute2 and bird2.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { TorLab } from "../rehearsal/tor-lab";
import { onlyStack, synthesize } from "./support/synth";
import { ACCEPTED, TEN_BLOCKS, NODE, REFUSED, ROUTER, labUnavailable, nodeConfig, waitFor } from "./support/tor-node";

const example = path.join(__dirname, "..", "examples", "matchbox-inventory.json");
const why = labUnavailable(["bird", "birdc", "ip"]);
if (why) console.warn(`SKIPPED router BIRD sessions: ${why}`);
const describeLab = why ? describe.skip : describe;

describeLab("the generated BIRD 2 router configuration, running", () => {
  let dir: string;
  let lab: TorLab;
  const session = () => lab.birdc("router", ["show", "protocols", "all", "node_v6fabric_cp_1"]);
  const imported = () => Number(/Routes:\s+(\d+) imported/.exec(session())?.[1] ?? -1);

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "v6fabric-tor-lab-"));
    const configs = onlyStack(synthesize({ NODE_TARGET: "matchbox", MATCHBOX_INVENTORY: example })).output!.router_configs.value;
    lab = new TorLab({ dir, routerAddress: `${ROUTER}/64`, nodeAddress: `${NODE}/64`, routerConfig: configs[ROUTER].bird });
    lab.start(nodeConfig([...ACCEPTED, ...REFUSED]));
    const took = await waitFor("the node's session Established at the router", () => /BGP state:\s+Established/.test(session()));
    console.log(`router BIRD: node session Established ${took} ms after the node's BIRD started`);
  }, 60_000);

  afterAll(async () => {
    await lab?.destroy();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test("it imports the pod blocks, the Service ranges and Local /128s, and nothing else", async () => {
    await waitFor("five imported routes", () => imported() === ACCEPTED.length, 15_000);
    const table = lab.birdc("router", ["show", "route"]);
    for (const p of ACCEPTED) expect([p, table.includes(p)]).toEqual([p, true]);
    for (const p of REFUSED) expect([p, table.includes(p)]).toEqual([p, false]);
  });

  test("it installs them in its kernel via the node, and sends the node nothing", () => {
    const kernel = lab.routerKernelRoutes();
    for (const p of ACCEPTED) expect(kernel).toMatch(new RegExp(`^${p.replace(/\/128$/, "")}(/\\d+)? via ${NODE} `, "m"));
    expect(lab.birdc("node", ["show", "protocols", "all", "tor"])).toMatch(/Routes:\s+0 imported, \d+ exported/);
  });

  test("eight acceptable prefixes keep the session; a ninth disables it (the prefix budget)", async () => {
    const blocks = TEN_BLOCKS.slice(0, 9);
    lab.announce(nodeConfig(blocks.slice(0, 8)));
    await waitFor("eight imported", () => imported() === 8, 15_000);
    await new Promise((r) => setTimeout(r, 2000));
    expect(session()).toMatch(/BGP state:\s+Established/);
    lab.announce(nodeConfig(blocks));
    await waitFor("the session disabled past the limit", () => /^node_v6fabric_cp_1\s+BGP\s+\S+\s+down\b/m.test(session()), 15_000);
    console.log(`router BIRD past the limit:\n${session().split("\n").slice(1, 3).join("\n")}`);
    expect(session()).toMatch(/limit/i);
    expect(lab.routerKernelRoutes()).not.toContain("2001:db8:0:ab10::100");
  });
});

describeLab("the generated BIRD 2 router configuration with the BGP password (METAL_BGP_MD5_ENABLED=true), running", () => {
  const PASSWORD = "v6fabric MD5 key/1";
  let dir: string;
  let router: string;
  const labs: TorLab[] = [];
  const state = (lab: TorLab) => /BGP state:\s+(\S+)/.exec(lab.birdc("router", ["show", "protocols", "all", "node_v6fabric_cp_1"]))?.[1];

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "v6fabric-tor-md5-"));
    const text: string = onlyStack(synthesize({ NODE_TARGET: "matchbox", MATCHBOX_INVENTORY: example, METAL_BGP_MD5_ENABLED: "true" })).output!.router_configs.value[ROUTER].bird;
    // What Terraform writes for the output: the variable's value where the configuration references it.
    router = text.split("${var.metal_bgp_md5_password}").join(PASSWORD);
    expect(router).toContain(`  password "${PASSWORD}";`);
  });

  afterAll(async () => {
    for (const lab of labs) await lab.destroy();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const lab = (name: string, nodePassword: string | undefined) => {
    const l = new TorLab({ dir: path.join(dir, name), routerAddress: `${ROUTER}/64`, nodeAddress: `${NODE}/64`, routerConfig: router });
    labs.push(l);
    l.start(nodeConfig(ACCEPTED, nodePassword));
    return l;
  };

  test("a node with the same password gets its session and its routes in", async () => {
    const same = lab("same", PASSWORD);
    const took = await waitFor("the session Established with the password", () => state(same) === "Established");
    console.log(`router BIRD with MD5: session Established ${took} ms after the node's BIRD started`);
    expect(same.birdc("router", ["show", "protocols", "all", "node_v6fabric_cp_1"])).toMatch(new RegExp(`Routes:\\s+${ACCEPTED.length} imported`));
  }, 60_000);

  test("a node without it, or with another, never gets a session", async () => {
    const none = lab("none", undefined);
    const other = lab("other", "another key");
    await new Promise((r) => setTimeout(r, 12_000));
    expect([state(none), state(other)]).toEqual([expect.not.stringMatching(/Established/), expect.not.stringMatching(/Established/)]);
  }, 60_000);
});
