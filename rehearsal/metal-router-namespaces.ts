/**
 * Metal's two local BGP routers of a metro, each a network namespace running Debian's
 * bird2 with the configuration rehearsal/metal-routers.ts renders from the nodes'
 * `bgp_neighbors` data.
 *
 * Each router has a veth into the fabric's metro bridge (rehearsal/nodes.ts `Fabric`),
 * so it shares the nodes' link as Metal's routers do: it holds fc00::e or fc00::f and
 * reaches every node's public IPv6 directly on that link (one /128 route per node, the
 * router's connected networks). The nodes reach the routers through their gateway on the
 * hub, which routes fc00::e and fc00::f onto the bridge; a node adds /128 routes to the
 * peers via its gateway as the app's bgp-peer-routes.sh does.
 *
 * Needs root, iproute2 and bird2. The namespaces are adopted by the Fabric, so
 * Fabric.destroy() (or a later run's reaper) kills bird and removes them.
 */
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { Fabric } from "./nodes";
import { MetalBgpNeighbor, METAL_ROUTER_ADDRESSES, MetalRouterAddress, MetalRouterConfig, renderMetalRouterConfig } from "./metal-routers";

/** The router's link to the metro, as its configuration names it. */
const ROUTER_LINK = "eth0";
/** The hub's bridge that joins the nodes' links (rehearsal/nodes.ts). */
const METRO_BRIDGE = "metro";

export interface MetalRoutersOptions {
  /** The project's IPv6 /56 in this metro. */
  readonly projectBlock: string;
  /** Every node's `bgp_neighbors[]` entries, as the emulator serves them. */
  readonly neighbors: readonly MetalBgpNeighbor[];
  /** Folder for the configurations, control sockets, pid files and logs. */
  readonly workDir: string;
}

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

function sh(command: string, args: readonly string[]): string {
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

export class MetalRouter {
  readonly configFile: string;
  readonly controlSocket: string;
  readonly pidFile: string;
  readonly logFile: string;
  private process?: ChildProcess;
  private current: MetalRouterConfig;

  constructor(
    readonly address: MetalRouterAddress,
    readonly netns: string,
    dir: string,
    private readonly projectBlock: string,
    neighbors: readonly MetalBgpNeighbor[],
  ) {
    this.configFile = path.join(dir, "bird.conf");
    this.controlSocket = path.join(dir, "bird.ctl");
    this.pidFile = path.join(dir, "bird.pid");
    this.logFile = path.join(dir, "bird.log");
    this.current = this.render(neighbors);
  }

  /** The configuration BIRD runs (or will run on start). */
  get config(): MetalRouterConfig {
    return this.current;
  }

  private render(neighbors: readonly MetalBgpNeighbor[]): MetalRouterConfig {
    return renderMetalRouterConfig({ routerAddress: this.address, projectBlock: this.projectBlock, neighbors, nodeInterface: ROUTER_LINK });
  }

  private inRouter(argv: readonly string[]): string {
    return sh("ip", ["netns", "exec", this.netns, ...argv]);
  }

  /** The kernel's on-link routes to the nodes: on Metal, the router's connected networks. */
  private routeNodes(): void {
    for (const s of this.current.sessions) this.inRouter(["ip", "-6", "route", "replace", `${s.neighbor}/128`, "dev", ROUTER_LINK]);
  }

  /** Writes the configuration, checks it with `bird -p` and starts BIRD in the namespace. */
  start(): void {
    fs.writeFileSync(this.configFile, this.current.text);
    sh("bird", ["-p", "-c", this.configFile]);
    this.routeNodes();
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

  /** New neighbour data (a node joined or left): re-render and `birdc configure`. */
  reconfigure(neighbors: readonly MetalBgpNeighbor[]): void {
    this.current = this.render(neighbors);
    fs.writeFileSync(this.configFile, this.current.text);
    this.routeNodes();
    const reply = this.birdc(["configure"]);
    if (!/Reconfigur|Reconfiguration in progress|configured/i.test(reply)) throw new Error(`birdc configure on ${this.address}: ${reply.trim()}`);
  }

  /**
   * Brings a node's session back after the router disabled it (past the prefix limit),
   * as an operator would once the node announces fewer prefixes: `birdc enable`.
   */
  enableSession(neighbor: string): void {
    const session = this.current.sessions.find((s) => s.neighbor === neighbor);
    if (!session) throw new Error(`${this.address} has no session with ${neighbor}`);
    this.birdc(["enable", session.protocol]);
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

  /** Every node session's state, from `birdc show protocols all`. */
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
    return this.current.sessions.map((s) => {
      const block = blocks.get(s.protocol) ?? [];
      const columns = (block[0] ?? "").trim().split(/\s+/);
      const field = (label: string) => block.map((l) => new RegExp(`^\\s+${label}:\\s*(.*)$`).exec(l)?.[1]).find((v) => v !== undefined)?.trim() ?? "";
      const counts = /(\d+) imported.*?(\d+) exported/.exec(field("Routes"));
      return {
        protocol: s.protocol,
        neighbor: s.neighbor,
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

/**
 * Makes Metal's two routers of the fabric's metro and starts BIRD on each. Each router
 * namespace is `<fabric id>-re` / `-rf`, its link into the hub's bridge `<fabric id>re`
 * / `rf`; the hub routes fc00::e and fc00::f onto the bridge.
 */
export function startMetalRouters(fabric: Fabric, options: MetalRoutersOptions): MetalRouter[] {
  return METAL_ROUTER_ADDRESSES.map((address) => {
    const suffix = address.slice(-1);
    const netns = `${fabric.id}-r${suffix}`;
    const hubSide = `${fabric.id}r${suffix}`;
    const dir = path.join(options.workDir, `router-${suffix}`);
    fs.mkdirSync(dir, { recursive: true });
    sh("ip", ["netns", "add", netns]);
    fabric.adoptNamespace(netns);
    sh("ip", ["link", "add", hubSide, "type", "veth", "peer", "name", ROUTER_LINK, "netns", netns]);
    sh("ip", ["link", "set", hubSide, "netns", fabric.hub]);
    const inHub = (argv: string[]) => sh("ip", ["netns", "exec", fabric.hub, ...argv]);
    const inRouter = (argv: string[]) => sh("ip", ["netns", "exec", netns, ...argv]);
    inHub(["ip", "link", "set", hubSide, "master", METRO_BRIDGE, "up"]);
    inRouter(["ip", "link", "set", "lo", "up"]);
    inRouter(["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
    inRouter(["ip", "-6", "addr", "add", `${address}/128`, "dev", ROUTER_LINK, "nodad"]);
    inRouter(["ip", "link", "set", ROUTER_LINK, "up"]);
    inHub(["ip", "-6", "route", "replace", `${address}/128`, "dev", METRO_BRIDGE]);
    const router = new MetalRouter(address, netns, dir, options.projectBlock, options.neighbors);
    router.start();
    return router;
  });
}
