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
/** The example's two racks: the control planes with their routers on one /64, the workers with theirs on the next. */
const CONTROL_PLANE_RACK = { routers: ["2001:db8:0:ab00::2", "2001:db8:0:ab00::3"], nodes: ["2001:db8:0:ab00::11", "2001:db8:0:ab00::12", "2001:db8:0:ab00::13"], names: ["v6fabric-cp-1", "v6fabric-cp-2", "v6fabric-cp-3"] };
const WORKER_RACK = { routers: ["2001:db8:0:ab01::2", "2001:db8:0:ab01::3"], nodes: ["2001:db8:0:ab01::14", "2001:db8:0:ab01::15"], names: ["v6fabric-worker-01", "v6fabric-worker-02"] };
const RACKS = [CONTROL_PLANE_RACK, WORKER_RACK];
const ROUTERS = RACKS.flatMap((r) => r.routers);
const rackOf = (router: string) => RACKS.find((r) => r.routers.includes(router))!;

let configs: Record<string, { asn: number; bird: string; frr: string }>;
let stack: ReturnType<typeof onlyStack>;

beforeAll(() => {
  stack = onlyStack(synthesize({ NODE_TARGET: "matchbox", MATCHBOX_INVENTORY: example }));
  configs = stack.output!.router_configs.value;
});

test("one entry per router of the inventory, with its AS; without a BGP password the output is not sensitive", () => {
  expect(Object.keys(configs)).toEqual(ROUTERS);
  for (const r of ROUTERS) expect(configs[r].asn).toBe(65100);
  expect(stack.output!.router_configs.sensitive).toBeFalsy();
  for (const r of ROUTERS) expect([r, configs[r].bird.includes("password"), configs[r].frr.includes("password")]).toEqual([r, false, false]);
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
  // Per rack: each router's BGPPeer selects the machines that name it, by their node name.
  const selectors = parseAllDocuments(fileText(bgp))
    .map((d) => d.toJS())
    .filter((d) => d.kind === "BGPPeer")
    .map((d) => d.spec.nodeSelector);
  expect(selectors).toEqual([
    "kubernetes.io/hostname in {'v6fabric-cp-1', 'v6fabric-cp-2', 'v6fabric-cp-3'}",
    "kubernetes.io/hostname in {'v6fabric-cp-1', 'v6fabric-cp-2', 'v6fabric-cp-3'}",
    "kubernetes.io/hostname in {'v6fabric-worker-01', 'v6fabric-worker-02'}",
    "kubernetes.io/hostname in {'v6fabric-worker-01', 'v6fabric-worker-02'}",
  ]);
  const policies = files.find((f) => f.path.endsWith("/41-host-policies.yaml"))!;
  for (const r of ROUTERS) expect(fileText(policies)).toContain(`${r}/128`);
});

describe("BIRD 2", () => {
  test.each(ROUTERS)("%s: AS, router ID, its rack's nodes only, the import filter and the prefix limit", (router) => {
    const bird = configs[router].bird;
    expect(bird).toContain(`local ${router} as 65100;`);
    expect(bird).toContain(`router id 0.0.0.${router.endsWith("2") ? 2 : 3};`);
    expect(bird.match(/neighbor (\S+) as (\d+);/g)).toEqual(rackOf(router).nodes.map((n) => `neighbor ${n} as 65000;`));
    expect(bird.match(/^protocol bgp (\S+) from/gm)).toEqual(rackOf(router).names.map((n) => `protocol bgp node_${n.replace(/-/g, "_")} from`));
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
  test.each(ROUTERS)("%s: AS, its rack's nodes only, the prefix list, nothing exported and the prefix limit", (router) => {
    const frr = configs[router].frr;
    expect(frr).toContain(`\nrouter bgp 65100\n`);
    expect(frr).toContain(` neighbor V6FABRIC remote-as 65000\n`);
    expect(frr).toContain(` neighbor V6FABRIC update-source ${router}\n`);
    expect(frr.match(/^ neighbor (\S+) peer-group V6FABRIC$/gm)).toEqual(rackOf(router).nodes.map((n) => ` neighbor ${n} peer-group V6FABRIC`));
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

describe("with the BGP password (METAL_BGP_MD5_ENABLED=true)", () => {
  const REFERENCE = "${var.metal_bgp_md5_password}";
  let md5: ReturnType<typeof onlyStack>;
  beforeAll(() => {
    md5 = onlyStack(synthesize({ NODE_TARGET: "matchbox", MATCHBOX_INVENTORY: example, METAL_BGP_MD5_ENABLED: "true" }));
  });

  test("every router's configurations hold the nodes' password as a reference to the sensitive variable, and the output is sensitive", () => {
    const output = md5.output!.router_configs;
    expect(output.sensitive).toBe(true);
    expect(md5.variable!.metal_bgp_md5_password.sensitive).toBe(true);
    for (const r of ROUTERS) {
      const { bird, frr } = output.value[r];
      expect([r, bird.match(/^ *password .*$/gm)]).toEqual([r, [`  password "${REFERENCE}";`]]);
      expect([r, frr.match(/^ *neighbor .* password .*$/gm)]).toEqual([r, [` neighbor V6FABRIC password ${REFERENCE}`]]);
    }
    // The BIRD password sits in the template every session of the router uses.
    expect(output.value[ROUTERS[0]].bird).toMatch(/template bgp v6fabric_node \{\n  local \S+ as 65100;\n  password /);
    // The nodes' BGPPeers read the same variable (through their Secret).
    const profile = resourcesOf(md5, "matchbox_profile").find(([, p]) => p.name === "v6fabric-cp-1")![1];
    expect(JSON.stringify(md5.locals)).toContain("base64encode(base64encode(var.metal_bgp_md5_password))");
    expect(profile.raw_ignition).toBeDefined();
  });

  test("a password the BIRD configuration cannot quote stops the plan: the output's precondition", () => {
    const [{ condition }] = md5.output!.router_configs.precondition as { condition: string }[];
    expect(condition).toBe('${!strcontains(var.metal_bgp_md5_password, "\\"") && !strcontains(var.metal_bgp_md5_password, "\\\\") && !strcontains(var.metal_bgp_md5_password, "\\n")}');
  });

  /** What Terraform makes of a configuration with `password` as the variable's value. */
  const withPassword = (text: string, password: string) => text.split(REFERENCE).join(password);

  describeWithTools(["bird"], "bird -p", () => {
    test.each(ROUTERS)("%s: the real BIRD parses the configuration with a password", (router) => {
      const result = spawnSync("bird", ["-p", "-c", written(withPassword(md5.output!.router_configs.value[router].bird, "v6fabric MD5 key/1"), "bird-md5.conf")], { encoding: "utf8" });
      expect([result.status, `${result.stdout}${result.stderr}`.trim()]).toEqual([0, ""]);
    });
  });

  describeWithTools(["vtysh"], "vtysh --dryrun", () => {
    test.each(ROUTERS)("%s: FRR's dry run accepts the configuration with a password", (router) => {
      const result = spawnSync("vtysh", ["--dryrun", "-f", written(withPassword(md5.output!.router_configs.value[router].frr, "v6fabric-MD5-key/1"), "frr-md5.conf")], { encoding: "utf8" });
      expect([result.status, `${result.stdout}${result.stderr}`.trim()]).toEqual([0, ""]);
    });
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
