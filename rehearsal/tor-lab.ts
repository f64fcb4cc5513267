/**
 * A top-of-rack router and one node on a shared link, each a network namespace: the
 * router runs Debian's bird2 or Debian's FRR (zebra and bgpd) with the configuration the
 * Matchbox target generates for it (lib/router-config.ts, unchanged), the node a small
 * BIRD that announces what a test asks, as calico-node would. For tests of what the
 * router accepts, refuses and cuts off. Needs root, iproute2, bird2 (and frr for an FRR
 * router); `destroy()` stops every daemon and removes the namespaces and folders, also
 * after a failure.
 *
 * FRR's daemons drop to the `frr` user, which cannot enter the tests' private temp
 * folder, so an FRR router's files live in a folder of their own under /run.
 */
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

function sh(command: string, args: readonly string[]): string {
  const result = spawnSync(command, [...args], { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} failed (${result.status ?? result.signal}): ${(result.stderr || result.stdout).trim()}`);
  return result.stdout;
}

interface Speaker {
  readonly netns: string;
  readonly dir: string;
  process?: ChildProcess;
}

export interface TorLabOptions {
  readonly dir: string;
  /** The router's address and prefix length on the link, e.g. 2001:db8:0:ab00::2/64. */
  readonly routerAddress: string;
  /** The node's, on the same link. */
  readonly nodeAddress: string;
  /** The router's configuration, for BIRD 2 or for FRR. */
  readonly routerConfig: string;
  /** @default "bird" */
  readonly routerDaemon?: "bird" | "frr";
}

/** Where Debian's frr package puts its daemons. */
const FRR_DAEMONS = "/usr/lib/frr";

export class TorLab {
  private readonly router: Speaker;
  private readonly node: Speaker;
  private readonly speakers: Speaker[];
  /** The FRR router's daemons (zebra, bgpd) and its folder under /run. */
  private readonly frr: ChildProcess[] = [];
  private frrDir?: string;

  constructor(private readonly options: TorLabOptions) {
    const tag = `${process.pid}-${Date.now() % 100000}`;
    this.router = { netns: `v6f-tor-r-${tag}`, dir: path.join(options.dir, "router") };
    this.node = { netns: `v6f-tor-n-${tag}`, dir: path.join(options.dir, "node") };
    this.speakers = [this.router, this.node];
  }

  /**
   * Creates the namespaces and the link, starts the node's BIRD with `nodeConfig` (which
   * should be passive), then the router, so the router's first connection finds the node
   * listening and no connection collision delays the session.
   */
  start(nodeConfig: string): void {
    for (const s of this.speakers) {
      fs.mkdirSync(s.dir, { recursive: true });
      sh("ip", ["netns", "add", s.netns]);
      sh("ip", ["-n", s.netns, "link", "set", "lo", "up"]);
    }
    sh("ip", ["link", "add", "v6ftor0", "netns", this.router.netns, "type", "veth", "peer", "name", "v6ftor1", "netns", this.node.netns]);
    for (const [s, link, address] of [[this.router, "v6ftor0", this.options.routerAddress], [this.node, "v6ftor1", this.options.nodeAddress]] as const) {
      sh("ip", ["-n", s.netns, "addr", "add", address, "dev", link, "nodad"]);
      sh("ip", ["-n", s.netns, "link", "set", link, "up"]);
    }
    this.run(this.node, nodeConfig);
    if (this.options.routerDaemon === "frr") this.startFrr();
    else this.run(this.router, this.options.routerConfig);
  }

  private startFrr(): void {
    const dir = fs.mkdtempSync("/run/v6fabric-tor-frr-");
    this.frrDir = dir;
    const [uid, gid] = [Number(sh("id", ["-u", "frr"])), Number(sh("id", ["-g", "frr"]))];
    fs.chmodSync(dir, 0o755);
    fs.mkdirSync(path.join(dir, "vty"));
    for (const [name, text] of [["frr.conf", this.options.routerConfig], ["zebra.conf", ""]]) fs.writeFileSync(path.join(dir, name), text, { mode: 0o644 });
    for (const f of ["", "vty", "frr.conf", "zebra.conf"]) fs.chownSync(path.join(dir, f), uid, gid);
    const daemon = (name: string, args: readonly string[], ready: string) => {
      const log = fs.openSync(path.join(this.router.dir, `${name}.log`), "a");
      const child = spawn("ip", ["netns", "exec", this.router.netns, path.join(FRR_DAEMONS, name), "-u", "frr", "-g", "frr", "-P", "0", "--vty_socket", path.join(dir, "vty"), "-i", path.join(dir, `${name}.pid`), "-z", path.join(dir, "zserv.api"), ...args], {
        stdio: ["ignore", log, log],
      });
      fs.closeSync(log);
      this.frr.push(child);
      const deadline = Date.now() + 10_000;
      while (!fs.existsSync(path.join(dir, ready))) {
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`${name} in ${this.router.netns} did not start; see ${path.join(this.router.dir, `${name}.log`)}`);
        spawnSync("sleep", ["0.1"]);
      }
    };
    daemon("zebra", ["-f", path.join(dir, "zebra.conf")], "zserv.api");
    daemon("bgpd", ["-f", path.join(dir, "frr.conf")], path.join("vty", "bgpd.vty"));
  }

  /** `vtysh -c` against the FRR router's daemons. */
  vtysh(command: string): string {
    if (!this.frrDir) throw new Error("the router is not FRR");
    return spawnSync("vtysh", ["--vty_socket", path.join(this.frrDir, "vty"), "-c", command], { encoding: "utf8" }).stdout;
  }

  /** Reconfigures the node's BIRD with `config` (what it announces). */
  announce(config: string): void {
    fs.writeFileSync(path.join(this.node.dir, "bird.conf"), config);
    sh("bird", ["-p", "-c", path.join(this.node.dir, "bird.conf")]);
    sh("birdc", ["-s", path.join(this.node.dir, "bird.ctl"), "configure"]);
  }

  private run(s: Speaker, config: string): void {
    const conf = path.join(s.dir, "bird.conf");
    fs.writeFileSync(conf, config);
    sh("bird", ["-p", "-c", conf]);
    const log = fs.openSync(path.join(s.dir, "bird.log"), "a");
    s.process = spawn("ip", ["netns", "exec", s.netns, "bird", "-f", "-c", conf, "-s", path.join(s.dir, "bird.ctl"), "-P", path.join(s.dir, "bird.pid")], { stdio: ["ignore", log, log] });
    fs.closeSync(log);
    const deadline = Date.now() + 10_000;
    while (spawnSync("birdc", ["-s", path.join(s.dir, "bird.ctl"), "show", "status"], { encoding: "utf8" }).status !== 0) {
      if (s.process.exitCode !== null || Date.now() > deadline) throw new Error(`bird in ${s.netns} did not start; see ${path.join(s.dir, "bird.log")}`);
      spawnSync("sleep", ["0.1"]);
    }
  }

  /** `birdc` at the router or the node. */
  birdc(at: "router" | "node", args: readonly string[]): string {
    return spawnSync("birdc", ["-s", path.join((at === "router" ? this.router : this.node).dir, "bird.ctl"), ...args], { encoding: "utf8" }).stdout;
  }

  /** The router namespace's IPv6 kernel routes that its BGP daemon installed. */
  routerKernelRoutes(): string {
    return sh("ip", ["-n", this.router.netns, "-6", "route", "show", "proto", this.options.routerDaemon === "frr" ? "bgp" : "bird"]);
  }

  /** Stops both BIRDs and removes the namespaces (the veth goes with them). Safe to call twice. */
  async destroy(): Promise<void> {
    for (const child of this.frr.splice(0).reverse()) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGTERM");
      await exited;
    }
    if (this.frrDir) fs.rmSync(this.frrDir, { recursive: true, force: true });
    for (const s of this.speakers) {
      const child = s.process;
      if (child && child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
        // `ip netns exec` execs bird, so the child is bird itself.
        child.kill("SIGTERM");
        await exited;
      }
      s.process = undefined;
      spawnSync("ip", ["netns", "del", s.netns]);
    }
  }
}
