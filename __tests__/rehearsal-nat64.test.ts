/**
 * The NAT64/DNS64 rehearsal (issue #14's acceptance): real programs in network
 * namespaces (rehearsal/nat64.ts draws them), each fed with what a deploy sends.
 *
 * From the synthesized user data (DNS_UPSTREAM_RESOLVERS pointed at the lab's
 * authoritative server, NAT64_TAYGA_PACKAGE_URL at the lab's mirror LAB.taygaPackageUrl,
 * everything else default), decoded the way Terraform and Ignition would:
 * - a worker's tayga.conf, nftables ruleset and nat64 script: the script runs as the
 *   unit would (it unpacks tayga from a .deb, makes the TUN device, routes, rules), then
 *   tayga runs with the unit's ExecStart;
 * - the init node's kube-system/coredns ConfigMap: CoreDNS 1.14.2 (built by
 *   `npm run tools`) runs its Corefile in a "pod".
 * What is substituted, and only this:
 * - paths: tayga.conf's data-dir, and the files' locations, point into this test's temp
 *   folder (the script's V6FABRIC_* variables), so nothing is written to the host;
 * - the download from LAB.taygaPackageUrl: the pinned Debian package when it is on this
 *   machine (V6FABRIC_TAYGA_DEB or apt's cache; its SHA-256 must be the pin, as Ignition
 *   checks it), else one built with dpkg-deb from this machine's Debian tayga, of the
 *   pinned version;
 * - the Corefile's `kubernetes` block is removed (withoutKubernetesPlugin): it needs an
 *   API server, and no cluster name is asked here.
 * Expected values are written out from RFC 6052 and the lab's addresses.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import YAML from "yaml";
import { NAT64_BLOCKED_IPV4, nat64Ruleset } from "../lib/nat64";
import { TAYGA } from "../lib/versions";
import { LAB, Nat64Lab, labZone, taygaPackage, withoutKubernetesPlugin } from "../rehearsal/nat64";
import { corednsBinary, toolsPresent } from "../rehearsal/tools";
import { fileText, ignitionFiles, evaluateTemplate } from "./support/calico-userdata";
import { IgnConfig, hasCommand, installHint, unpackMerges } from "./support/ignition";
import { onlyStack, resourcesOf, synthesize } from "./support/synth";

const TOOLS = ["ip", "nft", "tayga", "dig", "curl", "dpkg-deb", "tar", "xz"];
const root = typeof process.getuid === "function" && process.getuid() === 0;
const missing = TOOLS.filter((t) => !hasCommand(t));
const why = !root
  ? "not root (network namespaces need root; CI runs as root)"
  : missing.length > 0
    ? `missing ${missing.join(", ")}: ${installHint(missing)}`
    : !fs.existsSync("/dev/net/tun")
      ? "/dev/net/tun is missing (tayga needs the TUN driver; a container needs --device /dev/net/tun)"
      : !toolsPresent(["coredns"])
        ? "the CoreDNS build is missing: run `npm run tools -- coredns` (.ci/run runs `npm run tools`)"
        : "";
if (why) console.warn(`SKIPPED NAT64/DNS64 rehearsal: ${why}`);
const describeRehearsal = why ? describe.skip : describe;

/** RFC 6052 forms of the lab's IPv4 addresses in 64:ff9b::/96, written out. */
const WEB_NAT64 = "64:ff9b::8c52:7003"; // 140.82.112.3
const METADATA_NAT64 = "64:ff9b::c050:87c"; // 192.80.8.124
const PRIVATE_NAT64 = "64:ff9b::a14:1e28"; // 10.20.30.40

describeRehearsal("NAT64/DNS64 rehearsal: an IPv6-only pod reaches the IPv4 Internet through its node, and nothing it must not", () => {
  let work: string;
  let lab: Nat64Lab;
  let debSource: string;
  let corefile: string;

  const dig = (name: string, type: "A" | "AAAA") =>
    lab.must(lab.ns.pod, ["dig", "+short", "+time=2", "+tries=2", `@${LAB.dnsPodIpv6}`, name, type]).trim().split("\n").filter(Boolean);
  const curl = (ns: string, url: string) => lab.exec(ns, ["curl", "-sS", "-g", "--max-time", "4", url], { timeoutMs: 10_000 });
  const logs = () => ["tayga", "coredns", "authoritative", "web", "nat64-script"].map((n) => `--- ${n}\n${fs.existsSync(lab.logPath(n)) ? fs.readFileSync(lab.logPath(n), "utf8").slice(-2000) : ""}`).join("\n");

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), "v6fabric-nat64-rehearsal-"));
    lab = new Nat64Lab(work);
    try {
      // What a deploy sends, decoded.
      const stack = onlyStack(synthesize({ DNS_UPSTREAM_RESOLVERS: LAB.authoritativeDnsIpv6, NAT64_TAYGA_PACKAGE_URL: LAB.taygaPackageUrl }));
      const devices = resourcesOf(stack, "metal_device").map(([, d]) => d);
      const token = () => "abcdef.0123456789abcdef";
      const worker = devices.find((d) => d.hostname === "v6fabric-worker-01")!;
      const init = devices.find((d) => d.hostname === "v6fabric-cp-1")!;
      const workerFile = (p: string) => fileText(ignitionFiles(worker.user_data, token).find((f) => f.path === p)!);
      const workerUnits = unpackMerges(JSON.parse(evaluateTemplate(worker.user_data, token)) as IgnConfig).systemd!.units as { name: string; contents?: string }[];
      const execStart = /^ExecStart=(.*)$/m.exec(workerUnits.find((u) => u.name === "v6fabric-nat64.service")!.contents!)![1].split(" ");
      const debFile = ignitionFiles(worker.user_data, token).find((f) => f.path === "/opt/v6fabric/tayga.deb")!;
      expect([debFile.source, debFile.hash]).toEqual([LAB.taygaPackageUrl, TAYGA.hash]);
      const configMap = YAML.parse(fileText(ignitionFiles(init.user_data, token).find((f) => f.path === "/etc/kubernetes/addons/dns/50-coredns-corefile.yaml")!), { version: "1.1" });
      corefile = configMap.data.Corefile;

      // The node's files, at paths in this test's folder.
      const taygaConfig = workerFile("/etc/v6fabric/tayga.conf").replace(/^data-dir .*$/m, `data-dir ${path.join(work, "tayga-data")}`);
      fs.writeFileSync(path.join(work, "tayga.conf"), taygaConfig);
      fs.writeFileSync(path.join(work, "nat64.nft"), workerFile("/etc/v6fabric/nat64.nft"));
      fs.writeFileSync(path.join(work, "nat64.sh"), workerFile("/opt/v6fabric/bin/nat64"));
      debSource = taygaPackage(work).path;

      lab.build();
      // The Internet: an IPv4-only web server on every IPv4 address it has, and the zone's authoritative server.
      fs.writeFileSync(
        path.join(work, "web.js"),
        `require("http").createServer((q, r) => r.end("hello from " + q.socket.localAddress + " to " + q.socket.remoteAddress + "\\n")).listen(80, "0.0.0.0");\n`,
      );
      lab.start(lab.ns.internet, "web", [process.execPath, path.join(work, "web.js")]);
      fs.writeFileSync(path.join(work, "example.test.zone"), labZone());
      fs.writeFileSync(path.join(work, "Corefile.authoritative"), `${LAB.zone}:53 {\n    bind ${LAB.authoritativeDnsIpv6}\n    file ${path.join(work, "example.test.zone")}\n}\n`);
      lab.start(lab.ns.internet, "authoritative", [corednsBinary(), "-conf", path.join(work, "Corefile.authoritative")]);

      // The node: the unit's ExecStartPre (the script), then its ExecStart (tayga).
      const tayga = path.join(work, "bin", "tayga");
      const script = lab.exec(lab.ns.node, ["bash", path.join(work, "nat64.sh")], {
        env: {
          PATH: process.env.PATH,
          V6FABRIC_TAYGA_DEB: debSource,
          V6FABRIC_TAYGA: tayga,
          V6FABRIC_TAYGA_CONFIG: path.join(work, "tayga.conf"),
          V6FABRIC_NAT64_RULES: path.join(work, "nat64.nft"),
          V6FABRIC_TAYGA_DATA_DIR: path.join(work, "tayga-data"),
        },
      });
      fs.writeFileSync(lab.logPath("nat64-script"), `${script.stdout}${script.stderr}`);
      if (script.status !== 0) throw new Error(`the nat64 script failed (${script.status}): ${script.stderr}`);
      const [unitBinary, ...args] = execStart;
      expect(unitBinary).toBe("/opt/bin/tayga");
      lab.start(lab.ns.node, "tayga", [tayga, ...args.map((a) => (a === "/etc/v6fabric/tayga.conf" ? path.join(work, "tayga.conf") : a))]);

      // Cluster DNS in its pod, with the rendered Corefile.
      fs.writeFileSync(path.join(work, "Corefile"), withoutKubernetesPlugin(corefile));
      lab.start(lab.ns.dns, "coredns", [corednsBinary(), "-conf", path.join(work, "Corefile")]);

      // Ready when the pod's DNS answers a name of the zone through CoreDNS.
      const deadline = Date.now() + 30_000;
      for (;;) {
        const r = lab.exec(lab.ns.pod, ["dig", "+short", "+time=1", "+tries=1", `@${LAB.dnsPodIpv6}`, `v4only.${LAB.zone}`, "A"]);
        if (r.status === 0 && r.stdout.trim() === LAB.webIpv4) break;
        if (Date.now() > deadline) throw new Error(`CoreDNS did not answer within 30 s:\n${logs()}`);
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    } catch (err) {
      lab.destroy();
      fs.rmSync(work, { recursive: true, force: true });
      throw err;
    }
  }, 120_000);

  afterAll(() => {
    try {
      lab?.destroy();
    } finally {
      if (work) fs.rmSync(work, { recursive: true, force: true });
    }
  });

  test("the script unpacked tayga from the package and wired the node: TUN device up, both routes, the ruleset", () => {
    console.log(`rehearsal: tayga from ${debSource}`);
    expect(fs.readFileSync(lab.logPath("nat64-script"), "utf8")).toContain("nat64: unpacked");
    expect(lab.must(lab.ns.node, ["ip", "-6", "route", "show", "64:ff9b::/96"]).trim()).toBe("64:ff9b::/96 dev nat64 metric 1024 pref medium");
    expect(lab.must(lab.ns.node, ["ip", "-4", "route", "show", "100.64.0.0/22"]).trim()).toBe("100.64.0.0/22 dev nat64 scope link");
    expect(lab.must(lab.ns.node, ["nft", "list", "tables"]).trim()).toBe("table ip v6fabric-nat64");
    expect(lab.must(lab.ns.node, ["sysctl", "-n", "net.ipv4.ip_forward"]).trim()).toBe("1");
  });

  test("the rendered Corefile is kubeadm's with dns64, and only its kubernetes block was left out here", () => {
    expect(corefile).toMatch(/^\s+dns64 \{\n\s+prefix 64:ff9b::\/96\n\s+\}$/m);
    expect(corefile).toContain(`forward . ${LAB.authoritativeDnsIpv6} {`);
    const removed = corefile.split("\n").filter((l) => !withoutKubernetesPlugin(corefile).split("\n").includes(l));
    expect(removed.map((l) => l.trim())).toEqual(["kubernetes cluster.local in-addr.arpa ip6.arpa {", "pods insecure", "fallthrough in-addr.arpa ip6.arpa", "ttl 30"]);
  });

  test("a name with only an A record gets a synthesized AAAA in 64:ff9b::/96 (DNS64)", () => {
    expect(dig(`v4only.${LAB.zone}`, "AAAA")).toEqual([WEB_NAT64]);
    expect(dig(`v4only.${LAB.zone}`, "A")).toEqual([LAB.webIpv4]);
  });

  test("a name with an AAAA record is answered as it is, not translated", () => {
    expect(dig(`dual.${LAB.zone}`, "AAAA")).toEqual([LAB.dualStackIpv6]);
  });

  test("an HTTP request from the IPv6-only pod reaches the IPv4-only server, which sees the node's public IPv4", () => {
    // The pod has no IPv4 address but loopback's, and no IPv4 route at all.
    expect(lab.must(lab.ns.pod, ["ip", "-4", "-o", "addr", "show"]).trim().split("\n").map((l) => l.split(/\s+/)[3])).toEqual(["127.0.0.1/8"]);
    expect(lab.must(lab.ns.pod, ["ip", "-4", "route", "show"]).trim()).toBe("");
    const r = curl(lab.ns.pod, `http://[${WEB_NAT64}]/`);
    expect([r.status, r.stdout.trim(), r.stderr]).toEqual([0, `hello from ${LAB.webIpv4} to ${LAB.nodeIpv4}`, ""]);
  });

  test.each([
    ["the metadata service", METADATA_NAT64, LAB.metadataIpv4],
    ["a 10.0.0.0/8 host", PRIVATE_NAT64, LAB.privateIpv4],
  ])("%s is not reachable through the translator, though it answers the node itself", (_what, nat64Address, ipv4) => {
    expect(dig(`${_what === "the metadata service" ? "metadata" : "private"}.${LAB.zone}`, "AAAA")).toEqual([nat64Address]);
    const fromPod = curl(lab.ns.pod, `http://[${nat64Address}]/`);
    expect(fromPod.status).not.toBe(0);
    expect(fromPod.stdout).toBe("");
    // The node's own IPv4 traffic is unchanged: it still reaches the same server directly.
    expect(curl(lab.ns.node, `http://${ipv4}/`)).toEqual({ status: 0, stdout: `hello from ${ipv4} to ${LAB.nodeIpv4}\n`, stderr: "" });
  });

  test("it is the node's ruleset that keeps the metadata service out (tayga alone would translate a public address)", () => {
    const without = path.join(work, "nat64-without-metadata.nft");
    fs.writeFileSync(without, nat64Ruleset({ blocked: NAT64_BLOCKED_IPV4.filter((b) => b.net !== `${LAB.metadataIpv4}/32`) }));
    try {
      lab.must(lab.ns.node, ["nft", "-f", without]);
      expect(curl(lab.ns.pod, `http://[${METADATA_NAT64}]/`)).toEqual({ status: 0, stdout: `hello from ${LAB.metadataIpv4} to ${LAB.nodeIpv4}\n`, stderr: "" });
    } finally {
      lab.must(lab.ns.node, ["nft", "-f", path.join(work, "nat64.nft")]);
    }
    expect(curl(lab.ns.pod, `http://[${METADATA_NAT64}]/`).status).not.toBe(0);
  });
});
