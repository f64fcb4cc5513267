/**
 * A top-of-rack router and one node on a shared link, each a network namespace running
 * Debian's bird2: the router with the configuration the Matchbox target generates for it
 * (lib/router-config.ts, unchanged), the node with a small BIRD that announces what a
 * test asks, as calico-node would. For tests of what the router accepts, refuses and
 * cuts off. Needs root, iproute2 and bird2; `destroy()` stops both BIRDs and removes the
 * namespaces, also after a failure.
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
  /** The router's BIRD configuration. */
  readonly routerConfig: string;
}

export class TorLab {
  private readonly router: Speaker;
  private readonly node: Speaker;
  private readonly speakers: Speaker[];

  constructor(private readonly options: TorLabOptions) {
    const tag = `${process.pid}-${Date.now() % 100000}`;
    this.router = { netns: `v6f-tor-r-${tag}`, dir: path.join(options.dir, "router") };
    this.node = { netns: `v6f-tor-n-${tag}`, dir: path.join(options.dir, "node") };
    this.speakers = [this.router, this.node];
  }

  /** Creates the namespaces and the link, and starts the router's BIRD. */
  start(): void {
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
    this.run(this.router, this.options.routerConfig);
  }

  /** Starts the node's BIRD with `config`, or reconfigures it if it runs. */
  announce(config: string): void {
    if (this.node.process) {
      fs.writeFileSync(path.join(this.node.dir, "bird.conf"), config);
      sh("bird", ["-p", "-c", path.join(this.node.dir, "bird.conf")]);
      sh("birdc", ["-s", path.join(this.node.dir, "bird.ctl"), "configure"]);
      return;
    }
    this.run(this.node, config);
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

  /** The router namespace's IPv6 kernel routes (what BIRD installed). */
  routerKernelRoutes(): string {
    return sh("ip", ["-n", this.router.netns, "-6", "route", "show", "proto", "bird"]);
  }

  /** Stops both BIRDs and removes the namespaces (the veth goes with them). Safe to call twice. */
  async destroy(): Promise<void> {
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
