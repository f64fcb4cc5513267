/**
 * The NAT64/DNS64 rehearsal's lab: one node, two of its pods and a small Internet, as
 * network namespaces, running the real programs with what the app renders
 * (__tests__/rehearsal-nat64.test.ts asserts the acceptance of issue #14 on it).
 *
 *   pod  2001:db8:0:ab10::1:5   ─┐ veth, default via fe80::1   (IPv6 only, like every pod)
 *   dns  2001:db8:0:ab10::1:35  ─┤ CoreDNS with the rendered Corefile
 *                                node  tayga + nftables from the node's user data;
 *                                      public IPv4 203.0.113.10/31, IPv6 2001:db8:0:ab00::2/127
 *                                 │ veth (the uplink)
 *                                internet  203.0.113.11/31, 2001:db8:0:ab00::3/127, and on
 *                                      lo: 140.82.112.3 (an IPv4-only web server; public,
 *                                      since tayga refuses the documentation ranges),
 *                                      192.80.8.124 (the metadata service's address),
 *                                      10.20.30.40 (a private host), 2001:db8:ffff::53 (an
 *                                      authoritative DNS server: CoreDNS with a zone file)
 *
 * The internet routes the pod /64 to the node, as Metal's routers do for an announced
 * pod block; it has no route to the translator's pool, so IPv4 only comes back when the
 * node masqueraded it. The web server answers every IPv4 address of the internet
 * namespace, so a request that fails there was stopped on the way, not unanswered.
 *
 * Needs root, iproute2, nftables, tayga and the CoreDNS build (npm run tools). Every
 * namespace and process is recorded and removed by destroy(), also after a failure.
 */
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { TAYGA } from "../lib/versions";

export const LAB = {
  podIpv6: "2001:db8:0:ab10::1:5",
  dnsPodIpv6: "2001:db8:0:ab10::1:35",
  podCidr: "2001:db8:0:ab10::/64",
  nodeIpv4: "203.0.113.10",
  internetIpv4: "203.0.113.11",
  nodeIpv6: "2001:db8:0:ab00::2",
  internetIpv6: "2001:db8:0:ab00::3",
  webIpv4: "140.82.112.3",
  metadataIpv4: "192.80.8.124",
  privateIpv4: "10.20.30.40",
  authoritativeDnsIpv6: "2001:db8:ffff::53",
  /** The AAAA record of the dual-stack name; nothing needs to listen there. */
  dualStackIpv6: "2001:db8:ffff::80",
  zone: "example.test",
  /**
   * NAT64_TAYGA_PACKAGE_URL for the rehearsal: a mirror in the lab's zone (a .test name,
   * RFC 6761, so never a real host). Nothing downloads from it: the rehearsal hands the
   * node's script its local copy of the file that URL stands for, checked against the pin.
   */
  taygaPackageUrl: `https://debian-mirror.example.test/debian/${TAYGA.poolPath}`,
} as const;

/** The authoritative zone the internet serves: an A-only name, a dual-stack name, and names for the blocked addresses. */
export function labZone(): string {
  const z = LAB.zone;
  return [
    `$ORIGIN ${z}.`,
    `@ 3600 IN SOA ns.${z}. hostmaster.${z}. 1 7200 3600 1209600 300`,
    `@ 3600 IN NS ns.${z}.`,
    `ns 3600 IN AAAA ${LAB.authoritativeDnsIpv6}`,
    `v4only 300 IN A ${LAB.webIpv4}`,
    `dual 300 IN A ${LAB.webIpv4}`,
    `dual 300 IN AAAA ${LAB.dualStackIpv6}`,
    `metadata 300 IN A ${LAB.metadataIpv4}`,
    `private 300 IN A ${LAB.privateIpv4}`,
    "",
  ].join("\n");
}

/**
 * The rendered Corefile without its `kubernetes` plugin block, and nothing else changed.
 * The kubernetes plugin cannot start without an API server (it waits for one, then
 * fails); here no Service or pod names are asked, so removing the block removes nothing
 * the rehearsal looks at. Throws unless exactly one such block is there.
 */
export function withoutKubernetesPlugin(corefile: string): string {
  const lines = corefile.split("\n");
  const start = lines.findIndex((l) => /^\s*kubernetes\s.*\{$/.test(l));
  if (start < 0 || lines.slice(start + 1).some((l) => /^\s*kubernetes\s/.test(l))) throw new Error("expected exactly one kubernetes block in the Corefile");
  const indent = /^\s*/.exec(lines[start])![0];
  const end = lines.findIndex((l, i) => i > start && l === `${indent}}`);
  if (end < 0) throw new Error("the kubernetes block in the Corefile is not closed");
  return [...lines.slice(0, start), ...lines.slice(end + 1)].join("\n");
}

export interface CommandResult {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

export class Nat64Lab {
  readonly id = `n64${(process.pid % 100000).toString(36)}${Date.now().toString(36).slice(-3)}`;
  readonly ns = { node: `${this.id}-node`, pod: `${this.id}-pod`, dns: `${this.id}-dns`, internet: `${this.id}-inet` };
  private readonly processes: ChildProcess[] = [];
  private destroyed = false;

  constructor(readonly workDir: string) {}

  /** Runs `argv` in namespace `ns` and waits. */
  exec(ns: string, argv: readonly string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): CommandResult {
    const r = spawnSync("ip", ["netns", "exec", ns, ...argv], { encoding: "utf8", env: options.env ?? process.env, timeout: options.timeoutMs ?? 30_000 });
    return { status: r.status ?? -1, stdout: r.stdout ?? "", stderr: `${r.stderr ?? ""}${r.error ? String(r.error) : ""}` };
  }

  /** Like exec, but throws with the output when the command fails. */
  must(ns: string, argv: readonly string[], options: { env?: NodeJS.ProcessEnv } = {}): string {
    const r = this.exec(ns, argv, options);
    if (r.status !== 0) throw new Error(`in ${ns}: ${argv.join(" ")} failed (${r.status}): ${(r.stderr || r.stdout).trim()}`);
    return r.stdout;
  }

  /** Starts a long-running program in `ns`, its output in `<workDir>/<name>.log`; killed by destroy(). */
  start(ns: string, name: string, argv: readonly string[]): ChildProcess {
    const out = fs.openSync(this.logPath(name), "a");
    const child = spawn("ip", ["netns", "exec", ns, ...argv], { stdio: ["ignore", out, out], detached: true });
    fs.closeSync(out);
    this.processes.push(child);
    return child;
  }

  logPath(name: string): string {
    return path.join(this.workDir, `${name}.log`);
  }

  /** The namespaces, links and addresses of the drawing above; no program runs yet. */
  build(): void {
    const { node, pod, dns, internet } = this.ns;
    for (const ns of [node, pod, dns, internet]) {
      sh("ip", ["netns", "add", ns]);
      this.must(ns, ["ip", "link", "set", "lo", "up"]);
    }
    // Uplink: the node's public IPv4 /31 and IPv6 /127, as Metal gives a device.
    sh("ip", ["link", "add", "uplink", "netns", node, "type", "veth", "peer", "name", "uplink", "netns", internet]);
    this.must(node, ["ip", "-4", "addr", "add", `${LAB.nodeIpv4}/31`, "dev", "uplink"]);
    this.must(node, ["ip", "-6", "addr", "add", `${LAB.nodeIpv6}/127`, "dev", "uplink", "nodad"]);
    this.must(internet, ["ip", "-4", "addr", "add", `${LAB.internetIpv4}/31`, "dev", "uplink"]);
    this.must(internet, ["ip", "-6", "addr", "add", `${LAB.internetIpv6}/127`, "dev", "uplink", "nodad"]);
    for (const ns of [node, internet]) this.must(ns, ["ip", "link", "set", "uplink", "up"]);
    this.must(node, ["ip", "-4", "route", "add", "default", "via", LAB.internetIpv4]);
    this.must(node, ["ip", "-6", "route", "add", "default", "via", LAB.internetIpv6]);
    this.must(node, ["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
    // The Internet's hosts, and the route back to the pods (what BGP gives Metal's routers).
    // On lo: no dummy driver is needed, and local delivery is all the hosts need.
    for (const a of [LAB.webIpv4, LAB.metadataIpv4, LAB.privateIpv4]) this.must(internet, ["ip", "-4", "addr", "add", `${a}/32`, "dev", "lo"]);
    this.must(internet, ["ip", "-6", "addr", "add", `${LAB.authoritativeDnsIpv6}/128`, "dev", "lo"]);
    this.must(internet, ["ip", "-6", "route", "add", LAB.podCidr, "via", LAB.nodeIpv6]);
    // Pods: a /128 on eth0 and a default route via the node's link-local, as Calico does.
    for (const [ns, address, hostSide] of [[pod, LAB.podIpv6, "cali-pod"], [dns, LAB.dnsPodIpv6, "cali-dns"]] as const) {
      sh("ip", ["link", "add", hostSide, "netns", node, "type", "veth", "peer", "name", "eth0", "netns", ns]);
      this.must(node, ["ip", "-6", "addr", "add", "fe80::1/64", "dev", hostSide, "nodad"]);
      this.must(node, ["ip", "link", "set", hostSide, "up"]);
      this.must(node, ["ip", "-6", "route", "add", `${address}/128`, "dev", hostSide]);
      this.must(ns, ["ip", "-6", "addr", "add", "fe80::2/64", "dev", "eth0", "nodad"]);
      this.must(ns, ["ip", "-6", "addr", "add", `${address}/128`, "dev", "eth0", "nodad"]);
      this.must(ns, ["ip", "link", "set", "eth0", "up"]);
      this.must(ns, ["ip", "-6", "route", "add", "default", "via", "fe80::1", "dev", "eth0"]);
    }
  }

  /** Kills every process and removes every namespace (their links go with them). Safe to call twice. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const p of this.processes) {
      if (p.pid && p.exitCode === null) {
        try {
          process.kill(-p.pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    }
    for (const ns of Object.values(this.ns)) {
      for (const pid of spawnSync("ip", ["netns", "pids", ns], { encoding: "utf8" }).stdout?.split("\n").filter(Boolean) ?? []) {
        spawnSync("kill", ["-9", pid]);
      }
      spawnSync("ip", ["netns", "del", ns]);
    }
  }
}

function sh(command: string, args: readonly string[]): void {
  const r = spawnSync(command, [...args], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${command} ${args.join(" ")} failed (${r.status}): ${(r.stderr || r.stdout).trim()}`);
}

/** The tayga package a rehearsal's nodes unpack, standing for what NAT64_TAYGA_PACKAGE_URL serves. */
export interface TaygaPackage {
  readonly path: string;
  /** True when it is the pinned file itself (its SHA-256 is lib/versions.ts TAYGA.hash), so Ignition's check would pass. */
  readonly pinned: boolean;
}

/**
 * The pinned Debian file when this machine has it (V6FABRIC_TAYGA_DEB, or apt's cache,
 * where `apt-get install tayga` or `apt-get download tayga` leaves it; a file there with
 * another hash is an error), else a package built in `workDir` by dpkg-deb, the same
 * ar + xz layout as Debian's, from the installed Debian tayga of the pinned version.
 * Nothing is downloaded.
 */
export function taygaPackage(workDir: string): TaygaPackage {
  const cached = [process.env.V6FABRIC_TAYGA_DEB ?? "", `/var/cache/apt/archives/${TAYGA.packageFile}`].find((p) => p !== "" && fs.existsSync(p));
  if (cached) {
    const hash = `sha256-${createHash("sha256").update(fs.readFileSync(cached)).digest("hex")}`;
    if (hash !== TAYGA.hash) throw new Error(`${cached} has ${hash}, not the pinned ${TAYGA.hash} (lib/versions.ts TAYGA)`);
    return { path: cached, pinned: true };
  }
  const installed = spawnSync("dpkg-query", ["-W", "-f", "${Version}", "tayga"], { encoding: "utf8" }).stdout;
  if (installed !== TAYGA.version) throw new Error(`no ${TAYGA.packageFile} here (V6FABRIC_TAYGA_DEB, apt's cache) and the installed tayga is ${installed || "none"}, not ${TAYGA.version}: apt-get install tayga`);
  const tree = path.join(workDir, "tayga-deb");
  fs.mkdirSync(path.join(tree, "DEBIAN"), { recursive: true });
  fs.mkdirSync(path.join(tree, "usr", "sbin"), { recursive: true });
  fs.copyFileSync("/usr/sbin/tayga", path.join(tree, "usr", "sbin", "tayga"));
  fs.chmodSync(path.join(tree, "usr", "sbin", "tayga"), 0o755);
  fs.writeFileSync(
    path.join(tree, "DEBIAN", "control"),
    `Package: tayga\nVersion: ${TAYGA.version}\nArchitecture: amd64\nMaintainer: v6fabric rehearsal <nobody@example.invalid>\nDescription: tayga repackaged from this machine for the NAT64 rehearsal\n`,
  );
  const deb = path.join(workDir, TAYGA.packageFile);
  sh("dpkg-deb", ["--root-owner-group", "-Zxz", "--build", tree, deb]);
  return { path: deb, pinned: false };
}
