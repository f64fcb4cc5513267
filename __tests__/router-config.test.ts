/**
 * NODE_TARGET=matchbox: the `router_configs` output holds, for each router of the
 * inventory, a BIRD 2 configuration that the real `bird -p` accepts and an FRR
 * configuration that FRR's own dry run (`vtysh --dryrun`, which runs each daemon's
 * parser) accepts. The expectations are literals from the example inventory and the
 * README's address plan and prefix budget, not values the code computes.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { parseAllDocuments } from "yaml";
import { onlyStack, resourcesOf, synthesize } from "./support/synth";
import { describeWithTools, tempDir } from "./support/ignition";
import { fileText, ignitionFiles } from "./support/calico-userdata";

const example = path.join(__dirname, "..", "examples", "matchbox-inventory.json");
const ROUTERS = ["2001:db8:0:ab00::2", "2001:db8:0:ab00::3"];
const NODES = ["2001:db8:0:ab00::11", "2001:db8:0:ab00::12", "2001:db8:0:ab00::13", "2001:db8:0:ab00::14", "2001:db8:0:ab00::15"];

let configs: Record<string, { asn: number; bird: string; frr: string }>;
let stack: ReturnType<typeof onlyStack>;

beforeAll(() => {
  stack = onlyStack(synthesize({ NODE_TARGET: "matchbox", MATCHBOX_INVENTORY: example }));
  configs = stack.output!.router_configs.value;
});

test("one entry per router of the inventory, with its AS", () => {
  expect(Object.keys(configs)).toEqual(ROUTERS);
  for (const r of ROUTERS) expect(configs[r].asn).toBe(65100);
});

test("the Metal target has no router output", () => {
  expect(onlyStack(synthesize({})).output!.router_configs).toBeUndefined();
});

test("the nodes' BGPPeers (the init node's Calico manifest) are the routers the configurations are for", () => {
  const profile = resourcesOf(stack, "matchbox_profile").find(([, p]) => p.name === "v6fabric-cp-1")![1];
  const local = /local\.([^)]+)\)/.exec(profile.raw_ignition)![1];
  const files = ignitionFiles(stack.locals![local], () => "");
  const bgp = files.find((f) => f.path.endsWith("/20-bgp.yaml"))!;
  const peers = parseAllDocuments(fileText(bgp))
    .map((d) => d.toJS())
    .filter((d) => d.kind === "BGPPeer")
    .map((d) => [d.spec.peerIP, d.spec.asNumber]);
  expect(peers).toEqual(ROUTERS.map((r) => [r, 65100]));
  const policies = files.find((f) => f.path.endsWith("/41-host-policies.yaml"))!;
  for (const r of ROUTERS) expect(fileText(policies)).toContain(`${r}/128`);
});

describe("BIRD 2", () => {
  test.each(ROUTERS)("%s: AS, router ID, the five nodes, the import filter and the prefix limit", (router) => {
    const bird = configs[router].bird;
    expect(bird).toContain(`local ${router} as 65100;`);
    expect(bird).toContain(`router id 0.0.0.${router.endsWith("2") ? 2 : 3};`);
    expect(bird.match(/neighbor (\S+) as (\d+);/g)).toEqual(NODES.map((n) => `neighbor ${n} as 65000;`));
    // On-link routers: no multihop.
    expect(bird).not.toContain("multihop");
    expect(bird).toContain(
      [
        "  if net ~ [",
        "    2001:db8:0:ab10::/64{120,120},",
        "    2001:db8:0:ab20::/108{108,108},",
        "    2001:db8:0:ab30::/112{112,112},",
        "    2001:db8:0:ab30::8000/126{128,128}",
        "  ] then accept;",
        "  reject;",
      ].join("\n"),
    );
    expect(bird).toContain("    import filter v6fabric_import;\n    import limit 8 action disable;\n    export none;\n");
  });
});

describe("FRR", () => {
  test.each(ROUTERS)("%s: AS, the five nodes, the prefix list, nothing exported and the prefix limit", (router) => {
    const frr = configs[router].frr;
    expect(frr).toContain(`\nrouter bgp 65100\n`);
    expect(frr).toContain(` neighbor V6FABRIC remote-as 65000\n`);
    expect(frr).toContain(` neighbor V6FABRIC update-source ${router}\n`);
    expect(frr.match(/^ neighbor (\S+) peer-group V6FABRIC$/gm)).toEqual(NODES.map((n) => ` neighbor ${n} peer-group V6FABRIC`));
    expect(frr.match(/^ipv6 prefix-list .*$/gm)).toEqual([
      "ipv6 prefix-list V6FABRIC-IN seq 5 permit 2001:db8:0:ab10::/64 ge 120 le 120",
      "ipv6 prefix-list V6FABRIC-IN seq 10 permit 2001:db8:0:ab20::/108",
      "ipv6 prefix-list V6FABRIC-IN seq 15 permit 2001:db8:0:ab30::/112",
      "ipv6 prefix-list V6FABRIC-IN seq 20 permit 2001:db8:0:ab30::8000/126 ge 128 le 128",
      "ipv6 prefix-list V6FABRIC-IN seq 1000 deny any",
    ]);
    expect(frr).toContain("  neighbor V6FABRIC prefix-list V6FABRIC-IN in\n  neighbor V6FABRIC route-map V6FABRIC-OUT out\n  neighbor V6FABRIC maximum-prefix 8\n");
    expect(frr).toContain("route-map V6FABRIC-OUT deny 10\n");
  });
});

/** Writes `text` to a file in a temp folder of this test file; returns the path. */
function written(text: string, name: string): string {
  const file = path.join(tempDir("router-config"), name);
  fs.writeFileSync(file, text);
  return file;
}

describeWithTools(["bird"], "bird -p (Debian's bird2)", () => {
  const check = (text: string) => spawnSync("bird", ["-p", "-c", written(text, "bird.conf")], { encoding: "utf8" });

  test.each(ROUTERS)("%s: the real BIRD parses the configuration", (router) => {
    const result = check(configs[router].bird);
    expect([result.status, `${result.stdout}${result.stderr}`.trim()]).toEqual([0, ""]);
  });

  test("and refuses a broken one (the check can fail)", () => {
    const result = check(configs[ROUTERS[0]].bird.replace("import limit", "import limt"));
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/syntax error/);
  });
});

describeWithTools(["vtysh"], "vtysh --dryrun (Debian's frr)", () => {
  const check = (text: string) => spawnSync("vtysh", ["--dryrun", "-f", written(text, "frr.conf")], { encoding: "utf8" });

  test.each(ROUTERS)("%s: FRR's dry run accepts the configuration", (router) => {
    const result = check(configs[router].frr);
    expect([result.status, `${result.stdout}${result.stderr}`.trim()]).toEqual([0, ""]);
  });

  test("and refuses a broken one (the check can fail)", () => {
    const result = check(configs[ROUTERS[0]].frr.replace("maximum-prefix 8", "maximum-prefx 8"));
    expect(configs[ROUTERS[0]].frr).toContain("maximum-prefix 8");
    expect(result.status).not.toBe(0);
    expect(`${result.stdout}${result.stderr}`).toMatch(/Unknown command/);
  });
});
