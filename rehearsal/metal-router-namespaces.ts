/**
 * Metal's two local BGP routers of a metro, each a router namespace (bird-router.ts)
 * running Debian's bird2 with the configuration rehearsal/metal-routers.ts renders from
 * the nodes' `bgp_neighbors` data.
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
import * as fs from "node:fs";
import * as path from "node:path";
import { Fabric } from "./nodes";
import { BirdRouter, ROUTER_LINK, RouterSession, addRouterNamespace } from "./bird-router";
import { MetalBgpNeighbor, METAL_ROUTER_ADDRESSES, MetalRouterAddress, MetalRouterConfig, renderMetalRouterConfig } from "./metal-routers";

export type { RouterRoute, RouterSession } from "./bird-router";
export { birdSupport } from "./bird-router";

export interface MetalRoutersOptions {
  /** The project's IPv6 /56 in this metro. */
  readonly projectBlock: string;
  /** Every node's `bgp_neighbors[]` entries, as the emulator serves them. */
  readonly neighbors: readonly MetalBgpNeighbor[];
  /** Folder for the configurations, control sockets, pid files and logs. */
  readonly workDir: string;
}

export class MetalRouter extends BirdRouter {
  private current: MetalRouterConfig;

  constructor(
    override readonly address: MetalRouterAddress,
    netns: string,
    dir: string,
    private readonly projectBlock: string,
    neighbors: readonly MetalBgpNeighbor[],
  ) {
    super(address, netns, dir);
    this.current = this.render(neighbors);
  }

  /** The configuration BIRD runs (or will run on start). */
  get config(): MetalRouterConfig {
    return this.current;
  }

  private render(neighbors: readonly MetalBgpNeighbor[]): MetalRouterConfig {
    return renderMetalRouterConfig({ routerAddress: this.address, projectBlock: this.projectBlock, neighbors, nodeInterface: ROUTER_LINK });
  }

  /** The kernel's on-link routes to the nodes: on Metal, the router's connected networks. */
  private routeNodes(): void {
    for (const s of this.current.sessions) this.inRouter(["ip", "-6", "route", "replace", `${s.neighbor}/128`, "dev", ROUTER_LINK]);
  }

  /** Writes the configuration, checks it with `bird -p` and starts BIRD in the namespace. */
  start(): void {
    this.routeNodes();
    this.run(this.current.text);
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

  /** Every node session's state, in the configuration's order (one entry per configured session, also before BIRD reports it). */
  override sessions(): RouterSession[] {
    const reported = super.sessions();
    const none = { state: "", info: "", bgpState: "", lastError: "", imported: 0, exported: 0 };
    return this.current.sessions.map((s) => ({ ...(reported.find((r) => r.protocol === s.protocol) ?? none), protocol: s.protocol, neighbor: s.neighbor }));
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
    const netns = addRouterNamespace(fabric, suffix, address);
    const router = new MetalRouter(address, netns, path.join(options.workDir, `router-${suffix}`), options.projectBlock, options.neighbors);
    router.start();
    return router;
  });
}
