/**
 * The node's container runtime and kubelet, run for real: containerd (built by
 * tools.ts) with Debian's runc in the node's namespaces, the rehearsal's images
 * imported into it (images.ts; nothing is pulled), and the kubelet started by its own
 * unit, kubelet.service with kubeadm's drop-in, as systemd would: ExecStart with the
 * unit's Environment= and EnvironmentFile= (kubeadm-flags.env, /etc/default/kubelet),
 * restarted whenever it exits (Restart=always), stopped and started by `systemctl`.
 *
 * What differs from a Flatcar node, and why (docs/rehearsal.md):
 * - containerd stands in for Flatcar's containerd.service, with a config of the
 *   rehearsal's: the cgroupfs driver (PID 1 here is not systemd), our pause image as
 *   the sandbox, and `restrict_oom_score_adj`, because processes on these machines lack
 *   CAP_SYS_RESOURCE: runc could not give the static pods kubelet's oom_score_adj of
 *   -998 ("nsexec: failed to update /proc/self/oom_score_adj: Permission denied").
 * - The kubelet gets a drop-in config (--config-dir, passed in KUBELET_EXTRA_ARGS of
 *   /etc/default/kubelet, the unit's place for an operator's flags) on top of what
 *   kubeadm writes: `cgroupDriver: cgroupfs` for the same reason, `failCgroupV1:
 *   false` because this machine has cgroup v1 only and kubelets since 1.35 refuse it
 *   by default, and a cgroupRoot of the node's own, since the nodes share one cgroup
 *   tree. kubeadm's preflight check of cgroup v1 (SystemVerification) is skipped, as
 *   its message asks. Every image kubeadm names is built and imported (images.ts), so
 *   its image check finds them; no registry is reachable, and containerd is pointed at
 *   a closed local port for every registry, so nothing is ever pulled.
 * - `systemctl` is a stand-in that acts on this supervisor for kubelet.service, so
 *   kubeadm's `systemctl restart kubelet` and kubeadm reset's `systemctl stop kubelet`
 *   do what they do on a node.
 * - /run/systemd/resolve/resolv.conf (the KubeletConfiguration's resolvConf) is the
 *   host's resolv.conf, standing in for systemd-resolved.
 */
import { ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import YAML from "yaml";
import { CRI_SOCKET } from "../lib/kubeadm";
import { debianRootDir } from "./calico-images";
import { PAUSE_IMAGE, RehearsalImage, rehearsalImages } from "./images";
import { RehearsalNode } from "./nodes";
import { CONTAINERD_COMMANDS, COREDNS_VERSION, ETCD_VERSION, containerdBinary, corednsBinary, etcdBinary, imageArchiveDir, kubernetesBinary, pauseBinary } from "./tools";
import { DEFAULT_KUBERNETES_VERSION } from "../lib/versions";
import { expandExecStart, readUnit, unitEnvironment } from "./units";

/** Where the rehearsal's own files live in a node (nothing of the node's is there). */
export const REHEARSAL_DIR = "/opt/v6fabric-rehearsal";
const BIN = `${REHEARSAL_DIR}/bin`;
const CONTAINERD_CONFIG = "/etc/v6fabric-rehearsal/containerd.toml";
/** containerd's registry hosts folder (config_path): every registry is a closed local port. */
const REGISTRY_HOSTS = "/etc/v6fabric-rehearsal/containerd-certs.d";
/**
 * Nothing is pulled: every registry resolves to this address, where nothing listens,
 * so a pull of an image that is not imported fails at once instead of waiting on DNS
 * and a registry this machine cannot reach.
 */
const NO_REGISTRY = "http://[::1]:9";
/** The kubelet's drop-in config folder (kubelet --config-dir). */
export const KUBELET_CONFIG_DIR = "/etc/v6fabric-rehearsal/kubelet.conf.d";
const PATH = `${BIN}:/opt/bin:/usr/sbin:/usr/bin:/sbin:/bin`;

/** The kubelet configuration the rehearsal lays over kubeadm's, for this machine (see above). */
export function kubeletOverrides(cgroupRoot: string): Record<string, unknown> {
  return {
    apiVersion: "kubelet.config.k8s.io/v1beta1",
    kind: "KubeletConfiguration",
    cgroupDriver: "cgroupfs",
    failCgroupV1: false,
    cgroupRoot,
    // The nodes share this machine's disk with everything else on it, so the kubelet's
    // percentages (imagefs.available 15%: 40 GB of 264) measure the machine, not the
    // node: with 16% free it evicted the operator and the pods ("The node was low on
    // resource: ephemeral-storage"). Small absolute floors instead; the others as the
    // kubelet's defaults (an evictionHard map replaces them all).
    evictionHard: { "memory.available": "100Mi", "nodefs.available": "2Gi", "imagefs.available": "2Gi", "nodefs.inodesFree": "5%", "imagefs.inodesFree": "5%" },
  };
}

/** containerd's config: Flatcar's socket and state folders, the rehearsal's runtime settings. */
export function containerdConfig(): string {
  const socket = CRI_SOCKET.replace(/^unix:\/\//, "");
  return [
    "# The rehearsal's stand-in for Flatcar's containerd config (rehearsal/kubelet.ts).",
    "version = 3",
    'root = "/var/lib/containerd"',
    'state = "/run/containerd"',
    "[grpc]",
    `  address = "${socket}"`,
    "[plugins.'io.containerd.cri.v1.images']",
    '  snapshotter = "overlayfs"',
    "  [plugins.'io.containerd.cri.v1.images'.registry]",
    `    config_path = "${REGISTRY_HOSTS}"`,
    "  [plugins.'io.containerd.cri.v1.images'.pinned_images]",
    `    sandbox = "${PAUSE_IMAGE}"`,
    "[plugins.'io.containerd.cri.v1.runtime']",
    "  # No CAP_SYS_RESOURCE here: pods keep containerd's own oom_score_adj or higher.",
    "  restrict_oom_score_adj = true",
    "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]",
    '  runtime_type = "io.containerd.runc.v2"',
    "  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]",
    "    SystemdCgroup = false",
    '    BinaryName = "/usr/sbin/runc"',
    "",
  ].join("\n");
}

/**
 * The stand-in systemctl: kubelet.service verbs go to the supervisor through files in
 * `control` (a host folder outside the node's overlays, so both sides see one file);
 * everything else succeeds quietly.
 */
function systemctl(control: string): string {
  return `#!/bin/bash
# Rehearsal stand-in for systemctl (rehearsal/kubelet.ts): PID 1 here is not systemd.
# start/restart/stop of kubelet act on the rehearsal's kubelet supervisor.
control=${control}
verb=$1; unit=\${2%.service}
case "$verb:$unit" in
start:kubelet | restart:kubelet | reload-or-restart:kubelet | try-restart:kubelet) echo running >"$control/want"; touch "$control/restart" ;;
stop:kubelet) echo stopped >"$control/want" ;;
is-active:kubelet) [ -e "$control/active" ] && { echo active; exit 0; }; echo inactive; exit 3 ;;
is-enabled:*) echo enabled ;;
esac
exit 0
`;
}

/** Whether this machine can run the kubelet on containerd here, and if not, why. */
export function kubeletSupport(): { ok: true } | { ok: false; why: string } {
  if (!fs.existsSync("/usr/sbin/runc")) return { ok: false, why: "Debian's runc is missing (apt-get install runc)" };
  if (!fs.existsSync(imageArchiveDir())) return { ok: false, why: "the containerd build or the images are missing: run `npm run tools`" };
  return { ok: true };
}

/** The images a node of `role` needs: workers only the sandbox and kube-proxy's. */
export function imagesFor(role: "control-plane" | "worker"): RehearsalImage[] {
  const all = rehearsalImages(
    { kubernetes: (c) => kubernetesBinary(c), etcd: etcdBinary(), pause: pauseBinary(), coredns: corednsBinary(), debianRoot: debianRootDir() },
    { kubernetes: DEFAULT_KUBERNETES_VERSION, etcd: ETCD_VERSION, coredns: COREDNS_VERSION },
  );
  return role === "worker" ? all.filter((i) => i.onWorkers) : all;
}

/**
 * containerd and the kubelet of one node. `start()` brings up containerd with the
 * images and the kubelet's supervisor; the kubelet itself waits, crash-looping as on
 * a node, until kubeadm writes its config. `stop()` ends both (the fabric removes
 * whatever is left: every process in the node's network namespace, its cgroups).
 */
export class NodeRuntime {
  private containerd?: ChildProcess;
  private kubelet?: ChildProcess;
  private timer?: NodeJS.Timeout;
  private nextStart = 0;
  readonly kubeletStarts: number[] = [];
  readonly imageImportMs: number[] = [];
  cgroupRoot = "";
  /** The supervisor's control folder: the same path on the host and in the node. */
  private readonly control: string;

  constructor(
    readonly node: RehearsalNode,
    readonly role: "control-plane" | "worker",
    private readonly logDir: string,
    /** Seconds between kubelet restarts; the unit says RestartSec=10, 1 s saves time here. */
    private readonly restartSec = 1,
    /**
     * Image archives imported beside the Kubernetes ones (Calico's, calico-images.ts), as
     * a registry would serve them to the operator's pods; none by default.
     */
    private readonly extraArchives: readonly string[] = [],
  ) {
    fs.mkdirSync(logDir, { recursive: true });
    this.control = path.join(logDir, "kubelet-control");
    fs.mkdirSync(this.control, { recursive: true });
  }

  /** Writes a file into the node from inside it (writing an overlay's upper layer from outside is undefined). */
  private writeInNode(nodePath: string, content: string, mode = "0644"): void {
    const result = this.node.exec(["sh", "-c", 'mkdir -p "$(dirname "$1")" && cat > "$1" && chmod "$2" "$1"', "sh", nodePath, mode], { input: content });
    if (result.status !== 0) throw new Error(`writing ${nodePath} in ${this.node.hostname} failed: ${result.stderr.trim()}`);
  }

  /**
   * Starts containerd, imports the images and starts supervising the kubelet. After a
   * reboot (`afterReboot`) the node's mounts and containerd's image store are still
   * there: the node's mount namespace outlives its processes, as a disk outlives a reboot.
   */
  async start(options: { afterReboot?: boolean } = {}): Promise<void> {
    const node = this.node;
    if (!options.afterReboot) {
      // containerd's snapshots are overlays: their upper layers must not be on the node's overlay.
      node.bindMount(path.join(path.dirname(node.root), "containerd-root"), "/var/lib/containerd");
      // Pod logs: /var/log is this machine's, shared by every node, and a kubelet removes the
      // log folders of pods it does not know (another node's), so `kubectl logs` failed with
      // "lstat /var/log/pods/...: no such file or directory".
      node.bindMount(path.join(path.dirname(node.root), "var-log"), "/var/log");
    }
    const bin = node.hostPath(BIN);
    fs.mkdirSync(bin, { recursive: true });
    // After a reboot they are there (a link to the build: copying over it would empty the build).
    for (const c of options.afterReboot ? [] : CONTAINERD_COMMANDS) {
      try {
        fs.linkSync(containerdBinary(c), path.join(bin, c));
      } catch {
        fs.copyFileSync(containerdBinary(c), path.join(bin, c));
      }
    }
    this.writeInNode(`${BIN}/systemctl`, systemctl(this.control), "0755");
    this.applyNetworkSysctls();
    // systemd makes every mount shared at boot; the node's mount namespace starts private.
    // calico-node's ebpf-bootstrap init container mounts /sys/fs Bidirectional, which
    // containerd refuses on a mount that is not shared ("path /sys/fs is mounted on /sys
    // but it is not a shared mount").
    const shared = node.exec(["mount", "--make-rshared", "/"]);
    if (shared.status !== 0) throw new Error(`making ${node.hostname}'s mounts shared failed: ${shared.stderr.trim()}`);
    this.writeInNode(CONTAINERD_CONFIG, containerdConfig());
    this.writeInNode(`${REGISTRY_HOSTS}/_default/hosts.toml`, `# Every registry: nothing listens here (rehearsal/kubelet.ts).\nserver = "${NO_REGISTRY}"\n[host."${NO_REGISTRY}"]\n  capabilities = ["pull", "resolve"]\n`);
    this.writeInNode("/run/systemd/resolve/resolv.conf", fs.readFileSync("/etc/resolv.conf", "utf8"));
    this.cgroupRoot = node.makeCgroupRoot();
    this.writeInNode(`${KUBELET_CONFIG_DIR}/50-rehearsal.conf`, YAML.stringify(kubeletOverrides(this.cgroupRoot)));
    // The unit's place for an operator's flags (10-kubeadm.conf: EnvironmentFile=-/etc/default/kubelet).
    this.writeInNode("/etc/default/kubelet", `KUBELET_EXTRA_ARGS=--config-dir=${KUBELET_CONFIG_DIR}\n`);
    fs.writeFileSync(path.join(this.control, "want"), "running\n");

    this.containerd = node.start(["containerd", "--config", CONTAINERD_CONFIG], path.join(this.logDir, "containerd.log"), { PATH });
    await this.waitFor(() => node.exec(["ctr", "version"], { env: { PATH }, timeoutMs: 5000 }).status === 0, 30_000, "containerd to answer");
    if (options.afterReboot) {
      this.timer = setInterval(() => this.superviseOrStop(), 250);
      return;
    }
    for (const image of imagesFor(this.role)) {
      const started = Date.now();
      const result = node.exec(["ctr", "-n", "k8s.io", "images", "import", path.join(imageArchiveDir(), image.archive)], { env: { PATH }, timeoutMs: 120_000 });
      if (result.status !== 0) throw new Error(`importing ${image.reference} into ${node.hostname}'s containerd failed: ${result.stderr.trim()}`);
      this.imageImportMs.push(Date.now() - started);
    }
    for (const archive of this.extraArchives) {
      const started = Date.now();
      const result = node.exec(["ctr", "-n", "k8s.io", "images", "import", archive], { env: { PATH }, timeoutMs: 180_000 });
      if (result.status !== 0) throw new Error(`importing ${archive} into ${node.hostname}'s containerd failed: ${result.stderr.trim()}`);
      this.imageImportMs.push(Date.now() - started);
    }
    this.timer = setInterval(() => this.superviseOrStop(), 250);
  }

  /**
   * What systemd-sysctl does at boot with the node's /etc/sysctl.d, for the keys of the
   * node's network namespace (net.*) only: the others are this machine's, shared by
   * every node. A key the namespace lacks (bond0's, br_netfilter's) is skipped, as
   * systemd-sysctl skips unknown keys.
   */
  private applyNetworkSysctls(): void {
    const dir = this.node.hostPath("/etc/sysctl.d");
    if (!fs.existsSync(dir)) return;
    for (const file of fs.readdirSync(dir).filter((f) => f.endsWith(".conf")).sort()) {
      for (const raw of fs.readFileSync(path.join(dir, file), "utf8").split("\n")) {
        const line = raw.trim();
        if (!line.startsWith("net.") || !line.includes("=")) continue;
        const [key, value] = line.split("=").map((x) => x.trim());
        this.node.exec(["sysctl", "-qw", `${key}=${value}`]);
      }
    }
  }

  private async waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`${this.node.hostname}: timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /**
   * A timer callback must not throw: it would end the test process. When supervising
   * fails (the node's root went away under a failed boot), the supervisor stops and says
   * why on stderr.
   */
  private superviseOrStop(): void {
    try {
      this.supervise();
    } catch (err) {
      if (this.timer) clearInterval(this.timer);
      this.timer = undefined;
      process.stderr.write(`rehearsal: ${this.node.hostname}'s kubelet supervisor stopped: ${(err as Error).message}\n`);
    }
  }

  /** systemd's part for kubelet.service: start when wanted, restart after it exits, obey systemctl. */
  private supervise(): void {
    const control = this.control;
    const want = fs.existsSync(path.join(control, "want")) ? fs.readFileSync(path.join(control, "want"), "utf8").trim() : "running";
    const running = this.kubelet !== undefined && this.kubelet.exitCode === null && this.kubelet.signalCode === null;
    const restart = path.join(control, "restart");
    if (running && (want === "stopped" || fs.existsSync(restart))) {
      fs.rmSync(restart, { force: true });
      this.stopKubelet();
      return;
    }
    fs.rmSync(restart, { force: true });
    if (!running) {
      if (this.kubelet) {
        this.kubelet = undefined;
        fs.rmSync(path.join(control, "active"), { force: true });
        this.nextStart = Date.now() + this.restartSec * 1000;
      }
      if (want === "running" && Date.now() >= this.nextStart) this.startKubelet();
    }
  }

  private startKubelet(): void {
    const unit = readUnit(this.node.root, "kubelet.service");
    let env: Record<string, string>;
    try {
      env = unitEnvironment(this.node, unit);
    } catch {
      return; // a required EnvironmentFile is missing: systemd would not start it either
    }
    const argv = expandExecStart(unit.execStart, env);
    this.kubelet = this.node.start(argv, path.join(this.logDir, "kubelet.log"), { ...env, PATH });
    this.kubeletStarts.push(Date.now());
    fs.writeFileSync(path.join(this.control, "active"), "");
  }

  private stopKubelet(): void {
    const p = this.kubelet;
    if (p?.pid && p.exitCode === null) {
      try {
        process.kill(-p.pid, "SIGTERM");
      } catch {
        // gone
      }
    }
  }

  /** Stops the supervisor, the kubelet and containerd (container processes go with the node). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    for (const p of [this.kubelet, this.containerd]) {
      if (p?.pid && p.exitCode === null) {
        try {
          process.kill(-p.pid, "SIGKILL");
        } catch {
          // gone
        }
      }
    }
  }
}
