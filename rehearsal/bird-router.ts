/**
 * A router of the rehearsal: a network namespace with a link into the fabric's metro
 * bridge (rehearsal/nodes.ts `Fabric`), running Debian's bird2 with a configuration it is
 * given. Metal's routers (metal-router-namespaces.ts) and the Matchbox target's
 * top-of-rack routers (the `router_configs` output, run unchanged) are both this.
 *
 * Only paths are given on BIRD's command line (control socket, pid file); everything the
 * router does is in its configuration file. Needs root, iproute2 and bird2. The
 * namespace is adopted by the Fabric, so Fabric.destroy() (or a later run's reaper)
 * kills BIRD and removes it.
 */
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { Fabric } from "./nodes";

/** The router's link to the metro, as its configuration names it. */
export const ROUTER_LINK = "eth0";
/** The hub's bridge that joins the nodes' links (rehearsal/nodes.ts). */
const METRO_BRIDGE = "metro";

/** A route in a router's kernel table that BIRD put there, with its next hops (several: ECMP). */
export interface RouterRoute {
  readonly prefix: string;
  readonly nexthops: readonly string[];
}

/** One BGP session as BIRD reports it (`birdc show protocols all`). */
export interface RouterSession {
  readonly protocol: string;
  readonly neighbor: string;
  /** BIRD's protocol state: "up", "down", "start"… */
  readonly state: string;
  /** The BGP state, e.g. "Established", "Active", "Connect", "Down". */
  readonly bgpState: string;
  /** BIRD's "Last error" line, e.g. "Route limit exceeded"; "" when none. */
  readonly lastError: string;
  /** The info column of `show protocols`, e.g. "Established" or "Route limit exceeded". */
  readonly info: string;
  readonly imported: number;
  readonly exported: number;
}

export function sh(command: string, args: readonly string[]): string {
  const result = spawnSync(command, [...args], { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} failed (${result.status ?? result.signal}): ${(result.stderr || result.stdout).trim()}`);
  return result.stdout;
}

/** Whether bird2's programs are installed, and if not, what to install. */
export function birdSupport(): { ok: true } | { ok: false; why: string } {
  for (const tool of ["bird", "birdc"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) return { ok: false, why: `${tool} is missing (apt-get install bird2)` };
  }
  return { ok: true };
}

/**
 * Makes a router namespace `<fabric id>-r<suffix>` with its link `<fabric id>r<suffix>`
 * in the hub's bridge, holding `address/prefixLength`; forwarding on. A /128 is reached
 * by the hub's route onto the bridge (Metal's routers); a shorter prefix is the router's
 * share of a network the nodes are on (a rack's /64).
 */
export function addRouterNamespace(fabric: Fabric, suffix: string, address: string, prefixLength = 128): string {
  const netns = `${fabric.id}-r${suffix}`;
  const hubSide = `${fabric.id}r${suffix}`;
  sh("ip", ["netns", "add", netns]);
  fabric.adoptNamespace(netns);
  sh("ip", ["link", "add", hubSide, "type", "veth", "peer", "name", ROUTER_LINK, "netns", netns]);
  sh("ip", ["link", "set", hubSide, "netns", fabric.hub]);
  const inHub = (argv: string[]) => sh("ip", ["netns", "exec", fabric.hub, ...argv]);
  const inRouter = (argv: string[]) => sh("ip", ["netns", "exec", netns, ...argv]);
  inHub(["ip", "link", "set", hubSide, "master", METRO_BRIDGE, "up"]);
  inRouter(["ip", "link", "set", "lo", "up"]);
  inRouter(["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
  inRouter(["ip", "-6", "addr", "add", `${address}/${prefixLength}`, "dev", ROUTER_LINK, "nodad"]);
  inRouter(["ip", "link", "set", ROUTER_LINK, "up"]);
  if (prefixLength === 128) inHub(["ip", "-6", "route", "replace", `${address}/128`, "dev", METRO_BRIDGE]);
  return netns;
}

export class BirdRouter {
  readonly configFile: string;
  readonly controlSocket: string;
  readonly pidFile: string;
  readonly logFile: string;
  private process?: ChildProcess;

  constructor(
    readonly address: string,
    readonly netns: string,
    dir: string,
  ) {
    fs.mkdirSync(dir, { recursive: true });
    this.configFile = path.join(dir, "bird.conf");
    this.controlSocket = path.join(dir, "bird.ctl");
    this.pidFile = path.join(dir, "bird.pid");
    this.logFile = path.join(dir, "bird.log");
  }

  protected inRouter(argv: readonly string[]): string {
    return sh("ip", ["netns", "exec", this.netns, ...argv]);
  }

  /** Writes `config`, checks it with `bird -p` and starts BIRD with it, unchanged, in the namespace. */
  run(config: string): void {
    fs.writeFileSync(this.configFile, config);
    sh("bird", ["-p", "-c", this.configFile]);
    const out = fs.openSync(this.logFile, "a");
    this.process = spawn("ip", ["netns", "exec", this.netns, "bird", "-f", "-c", this.configFile, "-s", this.controlSocket, "-P", this.pidFile], {
      stdio: ["ignore", out, out],
      detached: true,
    });
    fs.closeSync(out);
    const deadline = Date.now() + 10_000;
    while (!this.answers()) {
      if (this.process.exitCode !== null || Date.now() > deadline) {
        throw new Error(`bird for ${this.address} did not start (${this.process.exitCode === null ? "no control socket after 10 s" : `exit ${this.process.exitCode}`}); see ${this.logFile}`);
      }
      spawnSync("sleep", ["0.1"]);
    }
  }

  private answers(): boolean {
    return fs.existsSync(this.controlSocket) && spawnSync("birdc", ["-s", this.controlSocket, "show", "status"], { encoding: "utf8", timeout: 5000 }).status === 0;
  }

  /** Runs birdc against this router; returns its output. */
  birdc(args: readonly string[]): string {
    return sh("birdc", ["-s", this.controlSocket, ...args]);
  }

  /**
   * The routes BIRD installed in the router's kernel table (what forwarding uses), with
   * their next hops: one per node announcing the prefix. `prefix` selects one prefix.
   */
  routes(prefix?: string): RouterRoute[] {
    const parsed = JSON.parse(this.inRouter(["ip", "-j", "-6", "route", "show", "proto", "bird"]) || "[]") as { dst: string; gateway?: string; nexthops?: { gateway?: string }[] }[];
    const routes = parsed.map((r) => ({
      // iproute2 prints a host route's destination without its length.
      prefix: r.dst.includes("/") ? r.dst : `${r.dst}/128`,
      nexthops: (r.nexthops ? r.nexthops.map((n) => n.gateway ?? "") : [r.gateway ?? ""]).filter(Boolean).sort(),
    }));
    return prefix === undefined ? routes : routes.filter((r) => r.prefix === prefix);
  }

  /** Every BGP session BIRD runs, from `birdc show protocols all`, in its order. */
  sessions(): RouterSession[] {
    const text = this.birdc(["show", "protocols", "all"]);
    const blocks = new Map<string, string[]>();
    let current: string[] | undefined;
    for (const line of text.split("\n")) {
      const head = /^(\S+)\s+BGP\s/.exec(line);
      if (head) {
        current = [line];
        blocks.set(head[1], current);
      } else if (/^\S/.test(line)) {
        current = undefined;
      } else if (current) {
        current.push(line);
      }
    }
    return [...blocks].map(([protocol, block]) => {
      const columns = (block[0] ?? "").trim().split(/\s+/);
      const field = (label: string) => block.map((l) => new RegExp(`^\\s+${label}:\\s*(.*)$`).exec(l)?.[1]).find((v) => v !== undefined)?.trim() ?? "";
      const counts = /(\d+) imported.*?(\d+) exported/.exec(field("Routes"));
      return {
        protocol,
        neighbor: field("Neighbor address"),
        state: columns[3] ?? "",
        // The info column follows the 'since' time, which is one or two words.
        info: (block[0] ?? "").replace(/^\S+\s+\S+\s+\S+\s+\S+\s+(\d{4}-\d\d-\d\d\s+)?\S+\s*/, "").trim(),
        bgpState: field("BGP state"),
        lastError: field("Last error"),
        imported: counts ? Number(counts[1]) : 0,
        exported: counts ? Number(counts[2]) : 0,
      };
    });
  }

  /** Stops BIRD (SIGTERM, then SIGKILL after 5 s). */
  stop(): void {
    const pid = this.process?.pid;
    if (pid === undefined || this.process?.exitCode !== null) return;
    try {
      process.kill(-pid, "SIGTERM");
    } catch {
      return;
    }
    const deadline = Date.now() + 5000;
    while (this.process.exitCode === null && spawnSync("kill", ["-0", String(pid)]).status === 0 && Date.now() < deadline) spawnSync("sleep", ["0.1"]);
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // gone
    }
  }
}
