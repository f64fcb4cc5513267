/**
 * NAT64 and DNS64 on the running fabric (issue #23): every node runs its
 * v6fabric-nat64.service (tayga unpacked from the package Ignition downloaded, its TUN
 * device, routes and nftables ruleset), cluster DNS (kubeadm's CoreDNS with the
 * Corefile of the user data) forwards to a resolver in the Internet that knows only an
 * A record for the IPv4-only server, and a pod on every node reaches that server by
 * name, seen there as its node's public IPv4, while the metadata address stays closed.
 *
 * The Internet's side (the servers, the metro's IPv4, the nodes' public IPv4) is set up
 * with the fabric (prepareNat64Internet, called by fabric-rehearsal.ts before any node
 * boots). Expected addresses are written out from RFC 6052 and the lab's plan.
 */
import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { LAB, labZone } from "../../rehearsal/nat64";
import { corednsBinary } from "../../rehearsal/tools";
import { startSimpleUnit } from "../../rehearsal/units";
import { InternetIpv4 } from "./fabric";
import { Probes } from "./fabric-dataplane-tests";
import type { FabricRehearsal } from "./fabric-rehearsal";
import { NODES } from "./fabric-rehearsal";

/** The resolver the fabric synthesizes as DNS_UPSTREAM_RESOLVERS: an authoritative server in the Internet. */
export const INTERNET_RESOLVER = LAB.authoritativeDnsIpv6;
/** The IPv4-only server's name (an A record, no AAAA) and address (global: tayga refuses non-global ones). */
const WEB_NAME = `v4only.${LAB.zone}`;
const WEB_IPV4 = LAB.webIpv4;
/** Metal's metadata service's IPv4 (docs/nat64.md); the Internet answers there too, so only a block can stop a request. */
const METADATA_IPV4 = LAB.metadataIpv4;
/** RFC 6052 forms in 64:ff9b::/96, written out: 140.82.112.3 and 192.80.8.124. */
const WEB_NAT64 = "64:ff9b::8c52:7003";
const METADATA_NAT64 = "64:ff9b::c050:87c";

/** The Internet's IPv4: a link to the metro (TEST-NET-2) and the two servers behind it. */
export const INTERNET_IPV4: InternetIpv4 = {
  link: { gateway: "198.51.100.1", address: "198.51.100.2", prefixLength: 30 },
  servers: [WEB_IPV4, METADATA_IPV4],
};

/** Answers on every IPv4 address of its namespace; logs "local remote host" per request. */
const WEB_SERVER = `
const fs = require("fs");
require("http").createServer((q, r) => {
  fs.appendFileSync(process.argv[1], q.socket.localAddress + " " + q.socket.remoteAddress + " " + q.headers.host + "\\n");
  r.end("hello from " + q.socket.localAddress + " to " + q.socket.remoteAddress + "\\n");
}).listen(80, "0.0.0.0");
`;

/**
 * Starts the Internet's IPv4-only web server and its authoritative DNS server (CoreDNS
 * with the lab's zone) in the Internet namespace; they end with the fabric. Returns the
 * web server's request log.
 */
export function startInternetServers(f: FabricRehearsal): string {
  const dir = path.join(f.work, "internet");
  fs.mkdirSync(dir, { recursive: true });
  const webLog = path.join(dir, "web-requests.log");
  fs.writeFileSync(webLog, "");
  fs.writeFileSync(path.join(dir, "zone"), labZone());
  fs.writeFileSync(path.join(dir, "Corefile"), `${LAB.zone}:53 {\n    bind ${INTERNET_RESOLVER}\n    file ${path.join(dir, "zone")}\n}\n`);
  const start = (name: string, argv: string[]): ChildProcess => {
    const out = fs.openSync(path.join(dir, `${name}.log`), "a");
    const child = spawn("ip", ["netns", "exec", f.internet.netns, ...argv], { stdio: ["ignore", out, out], detached: true });
    fs.closeSync(out);
    f.background.push({ kill: () => child.pid && child.exitCode === null && process.kill(-child.pid, "SIGKILL") });
    return child;
  };
  start("web", [process.execPath, "-e", WEB_SERVER, webLog]);
  start("authoritative-dns", [corednsBinary(), "-conf", path.join(dir, "Corefile")]);
  return webLog;
}

export function nat64Tests(f: FabricRehearsal, probes: Probes): void {
  const inPod = (name: string, argv: readonly string[], timeoutMs = 15_000) => f.node(name).exec(["ip", "netns", "exec", probes.get(name)!.netns, ...argv], { timeoutMs });
  const requests = () => fs.readFileSync(f.nat64WebLog, "utf8").split("\n").filter(Boolean);

  test("every node runs its NAT64 unit from the user data: tayga unpacked from the downloaded package, its TUN device and routes, the ruleset, and the node's public IPv4", async () => {
    for (const name of NODES) {
      const node = f.node(name);
      const started = Date.now();
      await startSimpleUnit(node, "v6fabric-nat64.service", { logFile: path.join(f.logDir(name), "nat64.log") });
      expect([name, fs.readFileSync(path.join(f.logDir(name), "nat64.log"), "utf8")]).toEqual([name, expect.stringContaining("nat64: unpacked /opt/bin/tayga from /opt/v6fabric/tayga.deb")]);
      expect([name, node.exec(["ip", "-6", "route", "show", "64:ff9b::/96"]).stdout.trim()]).toEqual([name, "64:ff9b::/96 dev nat64 metric 1024 pref medium"]);
      expect([name, node.exec(["ip", "-4", "route", "show", "100.64.0.0/22"]).stdout.trim()]).toEqual([name, "100.64.0.0/22 dev nat64 scope link"]);
      expect([name, node.exec(["nft", "list", "table", "ip", "v6fabric-nat64"]).status]).toEqual([name, 0]);
      expect([name, node.exec(["ip", "-4", "-o", "addr", "show", "dev", "eth0"]).stdout]).toEqual([name, expect.stringContaining(` ${f.publicIpv4.get(name)}/31 `)]);
      if (name === NODES[0]) f.figures.push(`NAT64 unit on ${name}: started in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
  }, 120_000);

  test("a pod on every node resolves the IPv4-only server's name through cluster DNS to 64:ff9b::/96 (DNS64), fetches from it through its node's NAT64, and the server sees that node's public IPv4", async () => {
    // The upstream knows an A record only: the AAAA the pods get is CoreDNS's.
    const upstream = (type: string) => f.internet.run(["dig", "+short", "+time=2", "+tries=2", `@${INTERNET_RESOLVER}`, WEB_NAME, type]).stdout.trim();
    expect([upstream("A"), upstream("AAAA")]).toEqual([WEB_IPV4, ""]);
    const clusterDns = f.json(["-n", "kube-system", "get", "service", "kube-dns"]).spec.clusterIP as string;
    const before = requests().length;
    for (const name of NODES) {
      const aaaa = await waitForAnswer(() => inPod(name, ["dig", "+short", "+time=2", "+tries=2", `@${clusterDns}`, WEB_NAME, "AAAA"]));
      expect([name, aaaa]).toEqual([name, WEB_NAT64]);
      const fetched = inPod(name, ["curl", "-sS", "-g", "--max-time", "5", "--resolve", `${WEB_NAME}:80:[${aaaa}]`, `http://${WEB_NAME}/`]);
      expect([name, fetched.status, fetched.stdout.trim(), fetched.stderr]).toEqual([name, 0, `hello from ${WEB_IPV4} to ${f.publicIpv4.get(name)}`, ""]);
    }
    // The server's own log: one request per node, each from that node's public IPv4.
    expect(requests().slice(before)).toEqual(NODES.map((n) => `${WEB_IPV4} ${f.publicIpv4.get(n)} ${WEB_NAME}`));
  }, 180_000);

  test("a pod cannot reach the metadata address, neither in its 64:ff9b:: form nor as IPv4, while its node reaches it", async () => {
    const clusterDns = f.json(["-n", "kube-system", "get", "service", "kube-dns"]).spec.clusterIP as string;
    for (const name of NODES) {
      const before = requests().length;
      // A name leads there too: DNS64 synthesizes the blocked form like any other.
      expect([name, await waitForAnswer(() => inPod(name, ["dig", "+short", "+time=2", "+tries=2", `@${clusterDns}`, `metadata.${LAB.zone}`, "AAAA"]))]).toEqual([name, METADATA_NAT64]);
      for (const url of [`http://[${METADATA_NAT64}]/`, `http://${METADATA_IPV4}/`]) {
        const r = inPod(name, ["curl", "-sS", "-g", "--max-time", "4", url]);
        expect([name, url, r.status === 0, r.stdout]).toEqual([name, url, false, ""]);
      }
      expect([name, requests().length - before]).toEqual([name, 0]);
      // The node's own IPv4 is unchanged: it reaches the same address directly.
      const direct = f.node(name).exec(["curl", "-sS", "--max-time", "5", `http://${METADATA_IPV4}/`], { timeoutMs: 15_000 });
      expect([name, direct.status, direct.stdout.trim()]).toEqual([name, 0, `hello from ${METADATA_IPV4} to ${f.publicIpv4.get(name)}`]);
    }
  }, 180_000);
}

/** The first non-empty answer of `dig +short` within 60 s (CoreDNS's first upstream query may be slow). */
async function waitForAnswer(dig: () => { status: number; stdout: string }): Promise<string> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const r = dig();
    if (r.status === 0 && r.stdout.trim() !== "") return r.stdout.trim();
    if (Date.now() > deadline) return `(no answer: exit ${r.status})`;
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}
