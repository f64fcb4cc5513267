/**
 * The generated BIRD 2 configuration of a top-of-rack router (NODE_TARGET=matchbox,
 * `router_configs` output), run unchanged by Debian's bird2 in a network namespace, with a
 * node's BIRD on the same link announcing what calico-node could: the router imports
 * exactly the prefixes a node may announce, sends nothing back, installs the routes in
 * its kernel, and cuts a node off past the prefix budget. Expectations are literals from
 * the README's address plan and prefix budget. Needs root, iproute2 and bird2.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { TorLab } from "../rehearsal/tor-lab";
import { onlyStack, synthesize } from "./support/synth";

const example = path.join(__dirname, "..", "examples", "matchbox-inventory.json");
const ROUTER = "2001:db8:0:ab00::2";
const NODE = "2001:db8:0:ab00::11";
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
const missing = ["bird", "birdc", "ip"].filter((t) => spawnSync("sh", ["-c", `command -v ${t}`]).status !== 0);
const runnable = isRoot && missing.length === 0;
if (!runnable) console.warn(`SKIPPED router BIRD sessions: ${!isRoot ? "not root (network namespaces)" : `missing ${missing.join(", ")} (apt-get install bird2 iproute2)`}`);
const describeLab = runnable ? describe : describe.skip;

const ACCEPTED = ["2001:db8:0:ab10::100/120", "2001:db8:0:ab10::1:0/120", "2001:db8:0:ab20::/108", "2001:db8:0:ab30::/112", "2001:db8:0:ab30::8001/128"];
const REFUSED = ["2001:db8:0:ab10::105/128", "2001:db8:0:ab20::a/128", "2001:db8:0:ab30::5/128", "2001:db8:0:ab00::/56", "2001:db8:ff::/48"];

/** A node's BIRD announcing `prefixes` to the router, as calico-node's BIRD peers (AS 65000). */
function nodeConfig(prefixes: readonly string[]): string {
  return [
    "router id 10.70.0.11;",
    "protocol device {",
    "}",
    "protocol static announced {",
    "  ipv6;",
    ...prefixes.map((p) => `  route ${p} blackhole;`),
    "}",
    "protocol bgp tor {",
    `  local ${NODE} as 65000;`,
    `  neighbor ${ROUTER} as 65100;`,
    "  connect retry time 2;",
    "  ipv6 { import all; export all; };",
    "}",
    "",
  ].join("\n");
}

async function waitFor(what: string, check: () => boolean, ms = 30_000): Promise<number> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  return Date.now() - started;
}

describeLab("the generated BIRD 2 router configuration, running", () => {
  let dir: string;
  let lab: TorLab;
  const session = () => lab.birdc("router", ["show", "protocols", "all", "node_v6fabric_cp_1"]);
  const imported = () => Number(/Routes:\s+(\d+) imported/.exec(session())?.[1] ?? -1);

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "v6fabric-tor-lab-"));
    const configs = onlyStack(synthesize({ NODE_TARGET: "matchbox", MATCHBOX_INVENTORY: example })).output!.router_configs.value;
    lab = new TorLab({ dir, routerAddress: `${ROUTER}/64`, nodeAddress: `${NODE}/64`, routerConfig: configs[ROUTER].bird });
    lab.start();
    lab.announce(nodeConfig([...ACCEPTED, ...REFUSED]));
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
    const blocks = Array.from({ length: 9 }, (_, i) => `2001:db8:0:ab10::${(i + 1).toString(16)}00/120`);
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
