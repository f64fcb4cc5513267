/**
 * The NAT64 renderers (lib/nat64.ts): the IPv6 forms of IPv4 ranges, the tayga
 * configuration and the nftables ruleset. Expected values are written out from RFC 6052
 * and the issue (#14); the ruleset is also loaded by the real `nft` in a scratch network
 * namespace. What the rules *do* to packets is proven by the NAT64 rehearsal
 * (rehearsal-nat64.test.ts), with the real tayga. Where nodes get tayga from: the
 * operator's NAT64_TAYGA_PACKAGE_URL, with the pinned hash (synthesized user data).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { NAT64_BLOCKED_IPV4, NAT64_POOL, NAT64_PREFIX, nat64Form, nat64Ruleset, taygaConfig } from "../lib/nat64";
import { TAYGA } from "../lib/versions";
import { PLACEHOLDER_TAYGA_PACKAGE_URL } from "../lib/settings";
import { ignitionFiles } from "./support/calico-userdata";
import { onlyStack, resourcesOf, synthesize } from "./support/synth";
import { planAddresses } from "../lib/address-plan";
import { calicoAddonManifests } from "../lib/calico";
import { CalicoObjects, NodeRouteState, announcements, exportDecision } from "./support/bgp-export-model";
import { parseManifest } from "./support/calico-validate";
import { describeWithTools, tempDir } from "./support/ignition";

test.each([
  // RFC 6052 2.4: 192.0.2.33 in the Well-Known Prefix.
  ["192.0.2.33/32", "64:ff9b::c000:221/128"],
  ["192.80.8.124/32", "64:ff9b::c050:87c/128"],
  ["10.0.0.0/8", "64:ff9b::a00:0/104"],
  ["172.16.0.0/12", "64:ff9b::ac10:0/108"],
  ["192.168.0.0/16", "64:ff9b::c0a8:0/112"],
  ["169.254.0.0/16", "64:ff9b::a9fe:0/112"],
  ["127.0.0.0/8", "64:ff9b::7f00:0/104"],
  ["0.0.0.0/8", "64:ff9b::/104"],
])("%s behind 64:ff9b::/96 is %s", (v4, v6) => {
  expect(nat64Form(v4)).toBe(v6);
});

test("only /96 prefixes are supported (the address sits in the last 32 bits)", () => {
  expect(() => nat64Form("10.0.0.0/8", "2001:db8:64::/64")).toThrow(/only \/96/);
});

test("the translator never takes pods to the metadata service or a non-global range the issue names", () => {
  const blocked = NAT64_BLOCKED_IPV4.map((b) => b.net);
  expect(blocked).toEqual(expect.arrayContaining(["192.80.8.124/32", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "127.0.0.0/8"]));
  // The pool itself lies in a blocked range, so no pod reaches another pod's mapping through it.
  expect(blocked).toContain("100.64.0.0/10");
  expect(NAT64_POOL.startsWith("100.64.")).toBe(true);
  for (const b of NAT64_BLOCKED_IPV4) expect(b.why.length).toBeGreaterThan(5);
});

test("tayga.conf: its own TUN device, the Well-Known Prefix, the node-local pool, a data dir", () => {
  const directives = Object.fromEntries(
    taygaConfig()
      .trim()
      .split("\n")
      .map((line) => line.split(/\s+/)),
  );
  expect(directives).toEqual({
    "tun-device": "nat64",
    "ipv4-addr": "100.64.0.1",
    prefix: "64:ff9b::/96",
    "dynamic-pool": "100.64.0.0/22",
    "data-dir": "/var/lib/tayga",
  });
  expect(NAT64_PREFIX).toBe("64:ff9b::/96");
});

test("the ruleset rejects every blocked range from the TUN device, masquerades the pool, and owns only its table", () => {
  const rules = nat64Ruleset();
  const rejectLine = rules.split("\n").find((l) => l.includes("reject") && l.includes("daddr"))!;
  for (const b of NAT64_BLOCKED_IPV4) expect(rejectLine).toContain(b.net);
  expect(rules).toMatch(/ip saddr 100\.64\.0\.0\/22 oifname != "nat64" masquerade/);
  expect([...rules.matchAll(/^(?:delete )?table (\S+ \S+)/gm)].map((m) => m[1])).toEqual(["ip v6fabric-nat64", "ip v6fabric-nat64", "ip v6fabric-nat64"]);
  expect(rules).not.toMatch(/flush ruleset/);
});

test("tayga is pinned by Debian's file name and SHA-256; where nodes download it from is the operator's", () => {
  expect(TAYGA.packageFile).toBe(`tayga_${TAYGA.version}_amd64.deb`);
  expect(TAYGA.poolPath).toBe(`pool/main/t/tayga/${TAYGA.packageFile}`);
  expect(TAYGA.hash).toMatch(/^sha256-[0-9a-f]{64}$/);
  expect(PLACEHOLDER_TAYGA_PACKAGE_URL).toBe(`https://debian-mirror.example/debian/${TAYGA.poolPath}`);
  // Only the placeholder host and path are ours: no mirror is named in the project.
  expect(Object.values(TAYGA).join(" ")).not.toMatch(/https?:/);
});

describe("every node downloads tayga from NAT64_TAYGA_PACKAGE_URL, checked against the pin", () => {
  const mirror = `https://debian-mirror.corp.internal/debian/${TAYGA.poolPath}`;
  const taygaDownloads = (env: Record<string, string>) =>
    resourcesOf(onlyStack(synthesize(env)), "metal_device").map(([, d]) => {
      const deb = ignitionFiles(d.user_data, () => "stand-in").find((f) => f.path === "/opt/v6fabric/tayga.deb");
      return { hostname: d.hostname, source: deb?.source, hash: deb?.hash, preconditions: d.lifecycle.precondition?.length ?? 0 };
    });

  test.each([
    ["the default placeholder", {}, PLACEHOLDER_TAYGA_PACKAGE_URL],
    ["an operator's mirror", { NAT64_TAYGA_PACKAGE_URL: mirror }, mirror],
  ])("%s: the URL as given, the pinned hash, and the plan-time check on every device", (_, env, url) => {
    expect(taygaDownloads(env)).toEqual(
      ["v6fabric-cp-1", "v6fabric-worker-01", "v6fabric-worker-02"].map((hostname) => ({ hostname, source: url, hash: TAYGA.hash, preconditions: 1 })),
    );
  });

  test("with NAT64_ENABLED=false: no download and no check", () => {
    expect(taygaDownloads({ NAT64_ENABLED: "false" }).map((d) => [d.source, d.preconditions])).toEqual([[undefined, 0], [undefined, 0], [undefined, 0]]);
  });
});

test("64:ff9b::/96 is a kernel route only: Calico never exports it to the routers, whatever length BIRD learns it at", () => {
  // The model of Calico's export (support/bgp-export-model.ts), fed with the rendered objects.
  const docs = calicoAddonManifests({ plan: planAddresses("2001:db8:0:ab00::/56"), asNumber: 65000, localServiceRoutes: 4 }).flatMap((m) => ("yaml" in m ? parseManifest(m.yaml) : []));
  const objects: CalicoObjects = { exportRules: docs.find((d) => d.kind === "BGPFilter")!.spec.exportV6, pools: docs.filter((d) => d.kind === "IPPool").map((p) => p.spec) };
  const state: NodeRouteState = { affineBlocks: ["2001:db8:0:ab10::/120"], workloadRoutes: [], serviceRoutes: ["2001:db8:0:ab20::/108", "2001:db8:0:ab30::/112"] };
  for (const route of [NAT64_PREFIX, "64:ff9b::c050:87c/128", "64:ff9b::/64"]) expect({ route, decision: exportDecision(route, state, objects) }).toEqual({ route, decision: "Reject" });
  expect(announcements(state, objects, [NAT64_PREFIX])).toEqual(["2001:db8:0:ab10::/120", "2001:db8:0:ab20::/108", "2001:db8:0:ab30::/112"]);
});

const root = typeof process.getuid === "function" && process.getuid() === 0;
if (!root) console.warn("SKIPPED nft ruleset check: not root (a scratch network namespace needs root; CI runs as root)");
const describeAsRoot = root ? describeWithTools : (_tools: readonly string[], name: string, body: () => void) => describe.skip(name, body);
describeAsRoot(["nft", "ip"], "the real nft loads the ruleset", () => {
  test("twice in a row (the unit runs it before every start), leaving one table", () => {
    const dir = tempDir("nat64-nft");
    const file = path.join(dir, "nat64.nft");
    fs.writeFileSync(file, nat64Ruleset());
    const ns = `v6nft${process.pid}`;
    expect(spawnSync("ip", ["netns", "add", ns]).status).toBe(0);
    try {
      for (let i = 0; i < 2; i++) {
        const r = spawnSync("ip", ["netns", "exec", ns, "nft", "-f", file], { encoding: "utf8" });
        expect([r.status, r.stderr]).toEqual([0, ""]);
      }
      const listed = spawnSync("ip", ["netns", "exec", ns, "nft", "list", "tables"], { encoding: "utf8" }).stdout.trim();
      expect(listed).toBe("table ip v6fabric-nat64");
    } finally {
      spawnSync("ip", ["netns", "del", ns]);
    }
  });
});
