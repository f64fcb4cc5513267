/**
 * Rehearsal nodes: each device becomes a network namespace holding the addresses the
 * device would get, a UTS namespace with its hostname, and a mount namespace in which /etc, /opt, /var/lib and /run are
 * overlays of the host's with the node's own root on top. The node's root is what the
 * real `ignition` binary wrote from the device's user data, so the node's processes see
 * the files Ignition wrote where a Flatcar node has them, and every change they make
 * lands in the node's root, where tests read it.
 *
 * Needs root, iproute2, util-linux (unshare, nsenter) and an overlay-capable kernel.
 * Everything made here is recorded and removed by `Fabric.destroy()`, also after a
 * failure: processes, mounts, namespaces, links and folders.
 */
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { MetalEmulatorHandle, startMetalEmulator } from "../emulators/metal";

/** Folders of the host that a node sees as overlays with its own root on top. */
const OVERLAID = ["/etc", "/opt", "/var/lib", "/run"] as const;

export interface NodeAddresses {
  /** The public IPv6 /127 Metal gives the device: address and gateway. */
  readonly ipv6: string;
  readonly ipv6Gateway: string;
  /** The length of the node's IPv6 network: 127 on Metal; a rack's /64 is shared by its machines and the hub's gateway. @default 127 */
  readonly ipv6PrefixLength?: number;
  /** The private IPv4 /31: address and gateway. */
  readonly privateIpv4: string;
  /** None for a machine whose private IPv4 is a /32 without a gateway (the Matchbox target's router ID). */
  readonly privateIpv4Gateway?: string;
}

/**
 * The addresses, with their prefix lengths, a node's link gets: the public IPv6 (Metal's
 * /127 unless told) and the private IPv4, a /31 with a gateway or a /32 without one.
 */
export function linkAddresses(addresses: NodeAddresses): { readonly ipv6: string; readonly privateIpv4: string } {
  return {
    ipv6: `${addresses.ipv6}/${addresses.ipv6PrefixLength ?? 127}`,
    privateIpv4: `${addresses.privateIpv4}/${addresses.privateIpv4Gateway ? 31 : 32}`,
  };
}

function sh(command: string, args: readonly string[], input?: string): string {
  const result = spawnSync(command, [...args], { encoding: "utf8", input });
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} failed (${result.status ?? result.signal}): ${(result.stderr || result.stdout).trim()}`);
  return result.stdout;
}

function trySh(command: string, args: readonly string[]): void {
  spawnSync(command, [...args], { encoding: "utf8" });
}

/** A short, unique prefix for this run's namespaces and links (interface names are limited to 15 bytes). */
function runId(): string {
  return `v6r${(process.pid % 100000).toString(36)}${Date.now().toString(36).slice(-3)}`;
}

export class RehearsalNode {
  readonly netns: string;
  readonly mountNs: string;
  readonly utsNs: string;
  private readonly processes: ChildProcess[] = [];

  constructor(
    readonly fabric: Fabric,
    readonly hostname: string,
    readonly index: number,
    /** The node's root: what Ignition wrote, and the upper layer of each overlay. */
    readonly root: string,
    readonly addresses: NodeAddresses,
  ) {
    this.netns = `${fabric.id}-n${index}`;
    this.mountNs = path.join(fabric.nsDir, `${this.netns}.mnt`);
    this.utsNs = path.join(fabric.nsDir, `${this.netns}.uts`);
  }

  /** Command-line prefix that runs a program inside this node's namespaces. */
  enterArgs(): string[] {
    return ["nsenter", `--net=/run/netns/${this.netns}`, `--mount=${this.mountNs}`, `--uts=${this.utsNs}`, "--"];
  }

  /** Runs a command in the node and waits; returns its exit status and output. */
  exec(argv: readonly string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {}) {
    const [cmd, ...rest] = [...this.enterArgs(), ...argv];
    const result = spawnSync(cmd, rest, { env: options.env ?? { PATH: "/opt/bin:/usr/sbin:/usr/bin:/sbin:/bin" }, encoding: "utf8", timeout: options.timeoutMs, input: options.input, maxBuffer: 64 * 1024 * 1024 });
    return { status: result.status ?? -1, stdout: result.stdout ?? "", stderr: result.stderr ?? "", signal: result.signal };
  }

  /** Starts a long-running process in the node; it is killed by destroy(). Output goes to `logFile`. */
  start(argv: readonly string[], logFile: string, env: NodeJS.ProcessEnv = { PATH: "/opt/bin:/usr/sbin:/usr/bin:/sbin:/bin" }): ChildProcess {
    const out = fs.openSync(logFile, "a");
    const [cmd, ...rest] = [...this.enterArgs(), ...argv];
    const child = spawn(cmd, rest, { env, stdio: ["ignore", out, out], detached: true });
    fs.closeSync(out);
    this.processes.push(child);
    return child;
  }

  /**
   * The cgroup (v1, every hierarchy) the node's kubelet uses as its cgroupRoot: the
   * nodes share this machine's cgroup tree, and a kubelet removes pod cgroups it does
   * not know under its root, so each node gets its own. Returns the cgroup path.
   */
  makeCgroupRoot(): string {
    const name = `/${this.netns}`;
    const dirs = cgroupV1Hierarchies().map((h) => path.join(h, name));
    this.fabric.recordCgroups(dirs);
    for (const dir of dirs) fs.mkdirSync(dir, { recursive: true });
    return name;
  }

  /**
   * Bind-mounts a host folder over `nodePath` in the node's mount namespace, e.g. a
   * folder that must not be on an overlay (containerd's overlayfs snapshots under
   * /var/lib/containerd: an overlay's upper layer cannot be on another overlay).
   * The mount goes with the namespace.
   */
  bindMount(hostDir: string, nodePath: string): void {
    fs.mkdirSync(hostDir, { recursive: true });
    sh("nsenter", [`--mount=${this.mountNs}`, "--", "sh", "-c", 'mkdir -p "$1" && mount --bind "$2" "$1"', "sh", nodePath, hostDir]);
  }

  /** Path on the host of a path as the node sees it (only below the overlaid folders). */
  hostPath(nodePath: string): string {
    return path.join(this.root, nodePath);
  }

  /** This node's processes whose command line matches `pattern` (other nodes share the PID namespace). */
  processesMatching(pattern: RegExp): number[] {
    const found: number[] = [];
    for (const pid of this.pids()) {
      let cmdline = "";
      try {
        cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim();
      } catch {
        continue;
      }
      if (pattern.test(cmdline)) found.push(Number(pid));
    }
    return found;
  }

  /** Signals this node's processes whose command line matches `pattern` (SIGKILL by default); returns how many. */
  killMatching(pattern: RegExp, signal: NodeJS.Signals = "SIGKILL"): number {
    let killed = 0;
    for (const pid of this.processesMatching(pattern)) {
      try {
        process.kill(pid, signal);
        killed++;
      } catch {
        // gone
      }
    }
    return killed;
  }

  private pids(): string[] {
    return spawnSync("ip", ["netns", "pids", this.netns], { encoding: "utf8" }).stdout?.split("\n").filter(Boolean) ?? [];
  }

  stopProcesses(): void {
    for (const p of this.processes) {
      if (p.pid && p.exitCode === null) {
        try {
          process.kill(-p.pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    }
    // Anything else started in the namespace (children that left the process group).
    for (const pid of this.pids()) trySh("kill", ["-9", pid]);
  }
}

/**
 * The nodes and the "metro" that joins them: a hub namespace whose bridge holds every
 * device's gateway addresses and forwards between them, as Metal's routers would for
 * the node addresses. It routes nothing else: no Service range, no pod range.
 */
/** Where each live fabric records itself, so a later run can remove what a killed one left. */
const REGISTRY = "/run/v6fabric-rehearsal";

interface RegistryEntry {
  readonly pid: number;
  readonly nsDir: string;
  readonly namespaces: string[];
  readonly handles: string[];
  /** cgroup v1 folders made for the nodes' kubelets (cgroupRoot), removed after their processes. */
  readonly cgroups?: string[];
}

/** The cgroup v1 hierarchies mounted here, e.g. /sys/fs/cgroup/memory (cgroup2's is left out). */
export function cgroupV1Hierarchies(): string[] {
  return fs
    .readFileSync("/proc/self/mounts", "utf8")
    .split("\n")
    .map((l) => l.split(" "))
    .filter((f) => f[2] === "cgroup")
    .map((f) => f[1]);
}

/** Removes a cgroup folder and its children, deepest first (a cgroup goes only when empty); true when gone. */
export function removeCgroupTree(dir: string): boolean {
  if (!fs.existsSync(dir)) return true;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) removeCgroupTree(path.join(dir, entry.name));
  try {
    fs.rmdirSync(dir);
  } catch {
    return false;
  }
  return true;
}

/**
 * Kills every process in a cgroup tree. Pod containers run in namespaces of their own,
 * outside the node's, so killing the node's processes leaves them; the kubelet's
 * cgroupRoot holds them all.
 */
export function killCgroupTree(dir: string): void {
  if (!fs.existsSync(dir)) return;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) killCgroupTree(path.join(dir, entry.name));
  let pids: string[] = [];
  try {
    pids = fs.readFileSync(path.join(dir, "cgroup.procs"), "utf8").split("\n").filter(Boolean);
  } catch {
    return;
  }
  for (const pid of pids) trySh("kill", ["-9", pid]);
}

/** Removes cgroup trees, killing what still runs in them and retrying while their last processes exit. */
export function removeCgroups(dirs: readonly string[]): string[] {
  for (const dir of dirs) killCgroupTree(dir);
  let left = [...dirs];
  for (let i = 0; i < 50 && left.length > 0; i++) {
    left = left.filter((d) => !removeCgroupTree(d));
    if (left.length > 0) spawnSync("sleep", ["0.1"]);
  }
  return left;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Removes the namespaces, processes and mounts of fabrics whose process is gone (killed by a timeout, say). */
export function reapStaleFabrics(): string[] {
  if (!fs.existsSync(REGISTRY)) return [];
  const reaped: string[] = [];
  for (const file of fs.readdirSync(REGISTRY)) {
    const entry = JSON.parse(fs.readFileSync(path.join(REGISTRY, file), "utf8")) as RegistryEntry;
    if (alive(entry.pid)) continue;
    for (const ns of entry.namespaces) {
      for (const pid of spawnSync("ip", ["netns", "pids", ns], { encoding: "utf8" }).stdout?.split("\n").filter(Boolean) ?? []) trySh("kill", ["-9", pid]);
    }
    for (const handle of entry.handles) trySh("umount", ["-l", handle]);
    for (const ns of entry.namespaces) trySh("ip", ["netns", "del", ns]);
    removeCgroups(entry.cgroups ?? []);
    trySh("umount", ["-l", entry.nsDir]);
    fs.rmSync(path.join(REGISTRY, file), { force: true });
    reaped.push(file);
  }
  return reaped;
}

/**
 * Where the metro serves Metal's metadata to the nodes: an address of the rehearsal's
 * own (a ULA) on the hub, which every node reaches through its gateway. On Metal the
 * service is reached by name; it answers each server by its source address, as here.
 */
export const METADATA_ADDRESS = "fd00:6d65:7461::1";

export class Fabric {
  readonly id = runId();
  readonly nodes: RehearsalNode[] = [];
  readonly hub: string;
  private metadata?: MetalEmulatorHandle;
  /** The metadata URL the nodes use, once serveMetadata() runs. */
  metadataUrl?: string;
  readonly nsDir: string;
  /** cgroup folders the nodes' kubelets use (RehearsalNode.makeCgroupRoot). */
  readonly cgroups: string[] = [];
  /** Other namespaces joined to the metro (Metal's routers): removed by destroy() and the reaper. */
  readonly adopted: string[] = [];
  private destroyed = false;

  constructor(readonly workDir: string) {
    reapStaleFabrics();
    this.hub = `${this.id}-hub`;
    this.nsDir = path.join(workDir, "ns");
    fs.mkdirSync(this.nsDir, { recursive: true });
    this.register();
    // A private mount point for the mount namespace handles (as `ip netns` does for its own).
    sh("mount", ["--bind", this.nsDir, this.nsDir]);
    sh("mount", ["--make-private", this.nsDir]);
    sh("ip", ["netns", "add", this.hub]);
    this.register();
    this.inHub(["ip", "link", "set", "lo", "up"]);
    this.inHub(["ip", "link", "add", "metro", "type", "bridge"]);
    this.inHub(["ip", "link", "set", "metro", "up"]);
    this.inHub(["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
    this.inHub(["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
  }

  /** Records what exists so far, for reapStaleFabrics() should this process die. */
  private register(): void {
    fs.mkdirSync(REGISTRY, { recursive: true });
    const entry: RegistryEntry = {
      pid: process.pid,
      nsDir: this.nsDir,
      namespaces: [this.hub, ...this.nodes.map((n) => n.netns), ...this.adopted],
      handles: this.nodes.flatMap((n) => [n.mountNs, n.utsNs]),
      cgroups: this.cgroups,
    };
    fs.writeFileSync(path.join(REGISTRY, `${this.id}.json`), JSON.stringify(entry));
  }

  /** Records cgroup folders to remove in destroy() (and by a later run's reaper). */
  recordCgroups(dirs: readonly string[]): void {
    this.cgroups.push(...dirs);
    this.register();
  }

  /**
   * Records a network namespace made by a caller (e.g. rehearsal/metal-router-namespaces.ts)
   * so that destroy(), or a later run's reaper, kills its processes and removes it.
   */
  adoptNamespace(netns: string): void {
    this.adopted.push(netns);
    this.register();
  }

  private inHub(argv: readonly string[]): void {
    sh("ip", ["netns", "exec", this.hub, ...argv]);
  }

  addNode(hostname: string, root: string, addresses: NodeAddresses): RehearsalNode {
    const node = new RehearsalNode(this, hostname, this.nodes.length, root, addresses);
    this.nodes.push(node);
    const hostSide = `${node.netns}h`;
    sh("ip", ["netns", "add", node.netns]);
    this.register();
    sh("ip", ["link", "add", hostSide, "type", "veth", "peer", "name", "eth0", "netns", node.netns]);
    sh("ip", ["link", "set", hostSide, "netns", this.hub]);
    this.inHub(["ip", "link", "set", hostSide, "master", "metro", "up"]);
    const ipv6Length = addresses.ipv6PrefixLength ?? 127;
    // `replace`: nodes of one shared network (a rack's /64) have one gateway.
    this.inHub(["ip", "-6", "addr", "replace", `${addresses.ipv6Gateway}/${ipv6Length}`, "dev", "metro", "nodad"]);
    if (addresses.privateIpv4Gateway) this.inHub(["ip", "-4", "addr", "add", `${addresses.privateIpv4Gateway}/31`, "dev", "metro"]);
    const inNode = (argv: string[]) => sh("ip", ["netns", "exec", node.netns, ...argv]);
    inNode(["ip", "link", "set", "lo", "up"]);
    const link = linkAddresses(addresses);
    inNode(["ip", "-6", "addr", "add", link.ipv6, "dev", "eth0", "nodad"]);
    inNode(["ip", "-4", "addr", "add", link.privateIpv4, "dev", "eth0"]);
    inNode(["ip", "link", "set", "eth0", "up"]);
    inNode(["ip", "-6", "route", "add", "default", "via", addresses.ipv6Gateway]);
    if (addresses.privateIpv4Gateway) inNode(["ip", "-4", "route", "add", "default", "via", addresses.privateIpv4Gateway]);

    // The node's mount and UTS namespaces, kept alive by bind mounts on their handle
    // files; the hostname is the device's, as Flatcar sets it from /etc/hostname.
    fs.writeFileSync(node.mountNs, "");
    sh("unshare", [`--mount=${node.mountNs}`, "--propagation", "private", "true"]);
    fs.writeFileSync(node.utsNs, "");
    sh("unshare", [`--uts=${node.utsNs}`, "hostname", hostname]);
    const work = path.join(this.workDir, "overlay-work", node.netns);
    for (const dir of OVERLAID) {
      const upper = path.join(root, dir);
      const workdir = path.join(work, dir);
      fs.mkdirSync(upper, { recursive: true });
      fs.mkdirSync(workdir, { recursive: true });
      sh("nsenter", [`--mount=${node.mountNs}`, "--", "mount", "-t", "overlay", "overlay", "-o", `lowerdir=${dir},upperdir=${upper},workdir=${workdir}`, dir]);
    }
    return node;
  }

  /**
   * Gives a node the public IPv4 /31 Metal gave its device, as afterburn's network
   * configuration does on Metal: the address on the node's link, its gateway on the
   * metro, the default IPv4 route through it, and 10.0.0.0/8 (Metal's private network)
   * through the private gateway. The metro forwards IPv4 between its links.
   */
  addPublicIpv4(node: RehearsalNode, address: string, gateway: string): void {
    this.inHub(["ip", "-4", "addr", "add", `${gateway}/31`, "dev", "metro"]);
    const inNode = (argv: string[]) => sh("ip", ["netns", "exec", node.netns, ...argv]);
    inNode(["ip", "-4", "addr", "add", `${address}/31`, "dev", "eth0"]);
    const privateGateway = node.addresses.privateIpv4Gateway;
    if (privateGateway) inNode(["ip", "-4", "route", "replace", "10.0.0.0/8", "via", privateGateway]);
    inNode(["ip", "-4", "route", "replace", "default", "via", gateway]);
  }

  /**
   * Serves Metal's metadata (and user data) in the metro from the emulator's state file,
   * answering each node by its address; returns the metadata URL the nodes use.
   */
  serveMetadata(stateFile: string, dir: string): string {
    this.inHub(["ip", "-6", "addr", "add", `${METADATA_ADDRESS}/128`, "dev", "lo"]);
    this.metadata = startMetalEmulator({ dir, stateFile, metadataOnly: true, netns: this.hub, metadataListen: `[${METADATA_ADDRESS}]:80`, token: "" });
    this.metadataUrl = `http://[${METADATA_ADDRESS}]/metadata`;
    return this.metadataUrl;
  }

  /** The metro's IPv6 routes, one a line (`ip -6 route show` where Metal's routers would be). */
  metroRoutes(): string[] {
    return sh("ip", ["netns", "exec", this.hub, "ip", "-6", "route", "show"]).split("\n").filter(Boolean);
  }

  /** Removes every process, mount, namespace and link this fabric made. Safe to call twice. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.metadata?.stop();
    for (const node of this.nodes) node.stopProcesses();
    for (const node of this.nodes) {
      trySh("umount", ["-l", node.mountNs]);
      trySh("umount", ["-l", node.utsNs]);
      trySh("ip", ["netns", "del", node.netns]);
    }
    for (const ns of this.adopted) {
      for (const pid of spawnSync("ip", ["netns", "pids", ns], { encoding: "utf8" }).stdout?.split("\n").filter(Boolean) ?? []) trySh("kill", ["-9", pid]);
      trySh("ip", ["netns", "del", ns]);
    }
    trySh("ip", ["netns", "del", this.hub]);
    trySh("umount", ["-l", this.nsDir]);
    const left = removeCgroups(this.cgroups);
    if (left.length > 0) process.stderr.write(`rehearsal: cgroups still busy, left for the next run's reaper: ${left.join(", ")}\n`);
    fs.rmSync(path.join(REGISTRY, `${this.id}.json`), { force: true });
  }
}

/** Whether this machine can host rehearsal nodes, and if not, why. */
export function nodeSupport(): { ok: true } | { ok: false; why: string } {
  if (typeof process.getuid !== "function" || process.getuid() !== 0) return { ok: false, why: "not root (namespaces and mounts need root; CI runs as root)" };
  for (const tool of ["ip", "nsenter", "unshare", "mount"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) return { ok: false, why: `${tool} is missing (apt-get install iproute2 util-linux)` };
  }
  // Root is not enough in a container without CAP_SYS_ADMIN, and an overlay cannot have
  // its upper layer on another overlay (a container's root): try both where nodes live.
  const probe = fs.mkdtempSync(path.join(os.tmpdir(), "v6fabric-node-probe-"));
  try {
    for (const d of ["lower", "upper", "work", "merged"]) fs.mkdirSync(path.join(probe, d));
    const script = `mount -t overlay overlay -o lowerdir=${probe}/lower,upperdir=${probe}/upper,workdir=${probe}/work ${probe}/merged && touch ${probe}/merged/x`;
    const result = spawnSync("unshare", ["--mount", "--net", "--uts", "--propagation", "private", "sh", "-c", script], { encoding: "utf8" });
    if (result.status !== 0) {
      return { ok: false, why: `namespaces or an overlay mount in ${os.tmpdir()} are not allowed here (${(result.stderr || "").trim()}); a container needs --privileged and a temp folder that is not itself an overlay` };
    }
  } finally {
    fs.rmSync(probe, { recursive: true, force: true });
  }
  return { ok: true };
}
