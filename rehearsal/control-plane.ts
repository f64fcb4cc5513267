/**
 * The control-plane rehearsal (rung L5b): the real kubeadm, kubelet, etcd,
 * kube-apiserver, kube-controller-manager, kube-scheduler and kubectl of
 * KUBERNETES_VERSION and containerd, built from Go modules, form the cluster from the
 * user data that the Terraform rehearsal applied.
 *
 *   1. Terraform and the metal provider apply the stack against the Metal API emulator
 *      (rehearse.ts); each device's user data is what Metal received.
 *   2. Each node becomes namespaces (nodes.ts) whose root the real `ignition` binary
 *      wrote from that user data (node-root.ts); the Kubernetes binaries replace the
 *      downloads Ignition skipped.
 *   3. At boot the node reads its metadata from the metro as afterburn would, then its
 *      own units run in their systemd order, by their own ExecStart lines (units.ts):
 *      peer routes, boot values, kubeadm, add-ons.
 *
 * What stands in for what, and why (docs/rehearsal.md):
 * - The kubelet runs for real on containerd and runc (kubelet.ts), with the smallest
 *   overrides this machine needs (cgroup v1 with the cgroupfs driver, no
 *   CAP_SYS_RESOURCE), so kubeadm runs every phase; its preflight check of cgroup v1
 *   is skipped, as the check's own message asks. Only when the kubelet cannot run
 *   here (kubeletSupport) does StaticPods below stand in for it, loudly: each static
 *   pod's command runs as a process and kubeadm skips the phases that need a kubelet.
 * - Calico's native v3 CRDs reach the API server as on Metal: the add-on unit applies
 *   the file Ignition downloads (node-root.ts LOCAL_DOWNLOADS), so the add-ons meet the
 *   real schema and the operator starts in v3 mode. Calico's images are imported only
 *   where a caller asks for them (`extraImages`: the fabric rehearsal), so elsewhere
 *   Nodes stay NotReady.
 */
import { ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import YAML from "yaml";
import { RehearsalNode, cgroupV1Hierarchies, killCgroupTree } from "./nodes";
import { NodeRuntime, REHEARSAL_DIR, kubeletSupport } from "./kubelet";
import { METADATA_PATHS } from "../ignition/matchbox";
import { readMetadataAtBoot } from "./node-root";
import { UnitRun, runUnit, startUnit, stopUnit } from "./units";

// Kubernetes objects as parsed YAML/JSON.
/* eslint-disable @typescript-eslint/no-explicit-any */


/** kubeadm phases that wait for, or act on, a running kubelet, per command: skipped only by the StaticPods fallback. */
export const PHASES_WITHOUT_KUBELET = {
  init: ["wait-control-plane", "mark-control-plane"],
  // kubelet-start still runs: it writes the kubelet's config and bootstrap kubeconfig.
  join: ["kubelet-wait-bootstrap", "control-plane-join/mark-control-plane", "wait-control-plane"],
} as const;

/**
 * The fallback for a machine where the kubelet cannot run (kubeletSupport), as the
 * rehearsal ran before the kubelet did. Stands in for the kubelet's static pods only:
 * runs each container of each manifest
 * in the node's manifest folder as a process with the container's own command and
 * arguments (kubeadm's control-plane pods are hostNetwork and mount host paths, so the
 * node's namespaces are their world), restarts it when it exits or the manifest
 * changes, and keeps the pod's mirror Pod in the API once the node has an admin
 * kubeconfig, as the kubelet does: a joining control plane's kubeadm finds the etcd
 * members through the etcd mirror Pods' annotations. No images, probes, cgroups or
 * Node object.
 */
export class StaticPods {
  private readonly running = new Map<string, { mtimeMs: number; processes: ChildProcess[]; mirrored: boolean; lastTry: number }>();
  private timer?: NodeJS.Timeout;
  readonly started: string[] = [];
  /** Manifests not to start until released (fault injection: a member that never comes up). */
  readonly held = new Set<string>();

  constructor(
    private readonly node: RehearsalNode,
    private readonly logDir: string,
  ) {
    fs.mkdirSync(logDir, { recursive: true });
  }

  start(intervalMs = 500): void {
    this.timer = setInterval(() => this.sync(), intervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    for (const pod of this.running.values()) for (const p of pod.processes) kill(p);
    this.running.clear();
  }

  private sync(): void {
    const dir = this.node.hostPath("/etc/kubernetes/manifests");
    const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith(".yaml")) : [];
    // A removed manifest (kubeadm reset) stops its pod, as the kubelet would.
    for (const [file, pod] of this.running) {
      if (files.includes(file)) continue;
      for (const p of pod.processes) kill(p);
      this.running.delete(file);
    }
    for (const file of files) {
      if (this.held.has(file)) continue;
      const full = path.join(dir, file);
      const mtimeMs = fs.statSync(full).mtimeMs;
      const current = this.running.get(file);
      const exited = current?.processes.some((p) => p.exitCode !== null || p.signalCode !== null);
      if (current && current.mtimeMs === mtimeMs && !exited) continue;
      if (current) for (const p of current.processes) kill(p);
      const pod = YAML.parse(fs.readFileSync(full, "utf8")) as { spec: { containers: { name: string; command?: string[]; args?: string[] }[] } };
      const processes = pod.spec.containers.map((c) => {
        const argv = [...(c.command ?? []), ...(c.args ?? [])];
        this.started.push(`${file}:${c.name}`);
        return this.node.start(argv, path.join(this.logDir, `${c.name}.log`));
      });
      this.running.set(file, { mtimeMs, processes, mirrored: false, lastTry: 0 });
    }
    // Mirror Pods are published again every 10 s, as the kubelet keeps them: with no Node
    // object, the controller manager's pod garbage collector deletes them as orphans.
    for (const [file, pod] of this.running) {
      if (Date.now() - pod.lastTry < (pod.mirrored ? 10_000 : 2000) || !fs.existsSync(this.node.hostPath("/etc/kubernetes/admin.conf"))) continue;
      pod.lastTry = Date.now();
      pod.mirrored = this.mirror(path.join(dir, file));
    }
  }

  /** Creates or updates the mirror Pod of one static pod manifest; false while the API does not answer. */
  private mirror(manifest: string): boolean {
    const pod = YAML.parse(fs.readFileSync(manifest, "utf8"));
    const mirror = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name: `${pod.metadata.name}-${this.node.hostname}`,
        namespace: pod.metadata.namespace ?? "kube-system",
        labels: pod.metadata.labels,
        annotations: { ...pod.metadata.annotations, "kubernetes.io/config.mirror": "rehearsal", "kubernetes.io/config.source": "file" },
      },
      spec: { ...pod.spec, nodeName: this.node.hostname },
    };
    const result = this.node.exec(["kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "--request-timeout=5s", "apply", "--server-side", "--force-conflicts", "--field-manager=rehearsal-static-pods", "-f", "-"], {
      input: JSON.stringify(mirror),
      timeoutMs: 15_000,
    });
    return result.status === 0;
  }
}

function kill(p: ChildProcess): void {
  if (p.pid && p.exitCode === null) {
    try {
      process.kill(-p.pid, "SIGKILL");
    } catch {
      // gone
    }
  }
}

/**
 * Writes a kubeadm wrapper into the node. With the kubelet it only puts the stand-in
 * systemctl on kubeadm's PATH and skips the cgroup v1 check (SystemVerification), as
 * that check's message asks (every image kubeadm names is built and imported, so the
 * image check runs and finds them); in the StaticPods fallback it also skips the phases that
 * need a kubelet and reports preflight findings instead of failing on them.
 */
export function installKubeadmWrapper(root: string, withKubelet = true): string {
  const wrapper = `${REHEARSAL_DIR}/kubeadm`;
  const host = path.join(root, wrapper);
  fs.mkdirSync(path.dirname(host), { recursive: true });
  const lines = withKubelet
    ? [
        "#!/bin/bash",
        "# Rehearsal only (rehearsal/kubelet.ts): systemctl is the rehearsal's stand-in; this",
        "# machine has cgroup v1 only, which kubeadm 1.36 accepts only with its check skipped.",
        `export PATH=${REHEARSAL_DIR}/bin:$PATH`,
        'case "$1" in',
        'init | join) exec /opt/bin/kubeadm "$@" --ignore-preflight-errors=SystemVerification ;;',
        '*) exec /opt/bin/kubeadm "$@" ;;',
        "esac",
        "",
      ]
    : [
        "#!/bin/bash",
        "# Rehearsal fallback: no kubelet runs here (rehearsal/control-plane.ts), so the phases that",
        "# wait for one are skipped, and preflight findings are reported instead of fatal.",
        'case "$1" in',
        `init) skip=${PHASES_WITHOUT_KUBELET.init.join(",")} ;;`,
        `join) skip=${PHASES_WITHOUT_KUBELET.join.join(",")} ;;`,
        '*) exec /opt/bin/kubeadm "$@" ;;',
        "esac",
        'exec /opt/bin/kubeadm "$@" --skip-phases="$skip" --ignore-preflight-errors=all',
        "",
      ];
  fs.writeFileSync(host, lines.join("\n"), { mode: 0o755 });
  return wrapper;
}

/** What runs a node's pods: the real kubelet on containerd, or the StaticPods fallback. */
export type PodAgent = NodeRuntime | StaticPods;

/**
 * Starts the node's containerd and kubelet, or, when they cannot run here, the
 * StaticPods fallback with the reason printed loudly.
 */
async function startAgent(node: RehearsalNode, role: "control-plane" | "worker", logDir: string, holdManifests: readonly string[] = [], extraImages: readonly string[] = []): Promise<PodAgent> {
  const support = kubeletSupport();
  if (support.ok) {
    const runtime = new NodeRuntime(node, role, path.join(logDir, "runtime"), 1, extraImages);
    try {
      await runtime.start();
    } catch (err) {
      runtime.stop();
      throw err;
    }
    return runtime;
  }
  process.stderr.write(`\nREHEARSAL FALLBACK on ${node.hostname}: the kubelet cannot run here (${support.why}); static pods run as plain processes and no Node object is registered\n\n`);
  const pods = new StaticPods(node, path.join(logDir, "pods"));
  for (const manifest of holdManifests) pods.held.add(manifest);
  pods.start();
  return pods;
}

/**
 * What runs before the boot-values unit on Metal: coreos-metadata.service (afterburn),
 * then the peer routes from the metadata's `bgp_neighbors`, which fails when Metal lists
 * other peers than the cluster's BGPPeers. Where the metro serves metadata; on a
 * Matchbox machine, whose metadata its config wrote (ignition/matchbox.ts), the peer-routes
 * unit alone, pointed there by its own drop-in.
 */
async function bootMetadata(node: RehearsalNode, logFile: string): Promise<UnitRun[]> {
  const url = node.fabric.metadataUrl;
  if (url) {
    readMetadataAtBoot(node, url);
    return runUnit(node, "v6fabric-bgp-peer-routes.service", { logFile, extraEnv: { V6FABRIC_METADATA_URL: url } });
  }
  if (fs.existsSync(node.hostPath(METADATA_PATHS.env))) return runUnit(node, "v6fabric-bgp-peer-routes.service", { logFile });
  return [];
}

const apiPaths = new WeakMap<RehearsalNode, ChildProcess>();

/**
 * The node's own path to the API servers (v6fabric-api-path.service), started once per
 * node before kubeadm, as its `Before=` orders it; it runs until the node is removed.
 */
export async function startApiPath(node: RehearsalNode, logDir: string): Promise<void> {
  const running = apiPaths.get(node);
  if (running && running.exitCode === null && running.signalCode === null) return;
  apiPaths.set(node, await startUnit(node, "v6fabric-api-path.service", { logFile: path.join(logDir, "api-path.log"), ready: /^api-path: ready/m }));
}

export interface InitNodeBoot {
  /** The peer-routes unit's runs (none where the metro serves no metadata). */
  readonly peerRoutes: UnitRun[];
  readonly bootValues: UnitRun[];
  readonly kubeadm: UnitRun[];
  readonly addons: UnitRun[];
  readonly agent: PodAgent;
  /** Milliseconds from the first unit to kubeadm init done, and to the add-ons done. */
  readonly kubeadmDoneMs: number;
  readonly addonsDoneMs: number;
}

/**
 * The init node's first boot, in its units' systemd order: boot values, kubeadm (init),
 * then the add-ons unit (Calico's v3 CRDs first, as on Metal). The
 * add-ons unit retries every 5 s instead of 10 s and 6 times instead of 60, so a
 * failure shows within half a minute.
 */
export async function bootInitNode(
  node: RehearsalNode,
  logDir: string,
  options: {
    /** Image archives imported into the node's containerd beside Kubernetes' (Calico's); none by default. */
    extraImages?: readonly string[];
    /**
     * Sets kube-proxy's conntrack.maxPerCore to 0 after kubeadm init (keepConntrackMax), so
     * its pods run. Off by default: the control-plane suites count on kube-proxy not
     * answering (their Service-announcement test). @default false
     */
    runKubeProxy?: boolean;
    /** How many times the kubeadm unit may run (Restart=on-failure), `kubeadmRetryDelayMs` apart. @default 1 */
    kubeadmAttempts?: number;
    /** @default 2000 */
    kubeadmRetryDelayMs?: number;
    /** The kubeadm unit's output as it comes, with its attempt (a fault test stops kubeadm at a printed phase). */
    onKubeadmOutput?: (text: string, attempt: number) => void;
    /**
     * Called once the kubeadm unit stopped retrying, before the add-ons: what an operator
     * does by hand when the unit gave up (exit 3). Returns the unit's further runs.
     */
    afterKubeadm?: (runs: readonly UnitRun[], kubeadm: string) => Promise<UnitRun[]>;
  } = {},
): Promise<InitNodeBoot> {
  fs.mkdirSync(logDir, { recursive: true });
  const logFile = path.join(logDir, "units.log");
  const started = Date.now();
  const agent = await startAgent(node, "control-plane", logDir, [], options.extraImages);
  return stoppingOnFailure(agent, async () => {
    const kubeadm = installKubeadmWrapper(node.root, agent instanceof NodeRuntime);
    const peerRoutes = await bootMetadata(node, logFile);
    const bootValues = await runUnit(node, "v6fabric-boot-values.service", { logFile });
    await startApiPath(node, logDir);
    const kubeadmRuns = await runUnit(node, "v6fabric-kubeadm.service", {
      logFile,
      extraEnv: { V6FABRIC_KUBEADM: kubeadm },
      attempts: options.kubeadmAttempts,
      retryDelayMs: options.kubeadmRetryDelayMs,
      onOutput: options.onKubeadmOutput,
    });
    if (options.afterKubeadm) kubeadmRuns.push(...(await options.afterKubeadm(kubeadmRuns, kubeadm)));
    const kubeadmDoneMs = Date.now() - started;
    if (options.runKubeProxy && agent instanceof NodeRuntime && kubeadmRuns.at(-1)?.status === 0) keepConntrackMax(node);
    const addons = await runUnit(node, "v6fabric-addons.service", { logFile, extraEnv: { V6FABRIC_APPLY_ATTEMPTS: "6", V6FABRIC_APPLY_DELAY: "5" } });
    return { peerRoutes, bootValues, kubeadm: kubeadmRuns, addons, agent, kubeadmDoneMs, addonsDoneMs: Date.now() - started };
  });
}

/**
 * Runs the rest of a boot; when it throws, stops the agent the boot started before
 * rethrowing. The caller never receives that agent, so nothing else could stop it, and
 * its kubelet supervisor would outlive the test that removes the node's root.
 */
async function stoppingOnFailure<T>(agent: PodAgent, boot: () => Promise<T>): Promise<T> {
  try {
    return await boot();
  } catch (err) {
    agent.stop();
    throw err;
  }
}

/**
 * kube-proxy's `conntrack.maxPerCore: 0` (leave nf_conntrack_max as it is), set in the
 * kube-proxy ConfigMap kubeadm wrote, before its pods start for good. nf_conntrack_max
 * belongs to this machine's initial network namespace: from a node's it is read-only,
 * and kube-proxy exits with "open /proc/sys/net/netfilter/nf_conntrack_max: permission
 * denied" (docs/rehearsal.md, table of differences).
 */
export function keepConntrackMax(node: RehearsalNode): void {
  const kubectl = ["kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "-n", "kube-system"];
  const got = node.exec([...kubectl, "get", "configmap", "kube-proxy", "-o", "json"], { timeoutMs: 30_000 });
  if (got.status !== 0) throw new Error(`${node.hostname}: reading kube-proxy's ConfigMap failed: ${got.stderr.trim()}`);
  const configMap = JSON.parse(got.stdout);
  const config = YAML.parse(configMap.data["config.conf"]);
  config.conntrack = { ...config.conntrack, maxPerCore: 0 };
  configMap.data["config.conf"] = YAML.stringify(config);
  const put = node.exec([...kubectl, "replace", "-f", "-"], { input: JSON.stringify(configMap), timeoutMs: 30_000 });
  if (put.status !== 0) throw new Error(`${node.hostname}: writing kube-proxy's ConfigMap failed: ${put.stderr.trim()}`);
  // Pods that already crashed on the old value start again with the new one.
  node.exec([...kubectl, "delete", "pod", "-l", "k8s-app=kube-proxy", "--wait=false"], { timeoutMs: 30_000 });
}

export interface JoinNodeBoot {
  /** The peer-routes unit's runs (none where the metro serves no metadata). */
  readonly peerRoutes: UnitRun[];
  readonly bootValues: UnitRun[];
  readonly kubeadm: UnitRun[];
  readonly agent: PodAgent;
  readonly milliseconds: number;
}

/** How a joining node's first boot runs (bootJoinNode). */
export interface JoinOptions {
  role?: "control-plane" | "worker";
  attempts?: number;
  retryDelayMs?: number;
  holdManifests?: readonly string[];
  releaseHeldAt?: number;
  agent?: PodAgent;
  /** Image archives imported into the node's containerd beside Kubernetes' (Calico's); none by default. */
  extraImages?: readonly string[];
  /** The kubeadm unit's output as it comes, with its attempt (a fault test stops kubeadm at a printed phase). */
  onKubeadmOutput?: (text: string, attempt: number) => void;
  /** Awaited before each retry of the kubeadm unit, with the attempt about to start (a fault test waits for a state). */
  beforeAttempt?: (attempt: number) => Promise<void> | void;
}

/**
 * A joining node's first boot: boot values, then the kubeadm unit (join), retried as
 * systemd would (Restart=on-failure) up to `attempts` times, `retryDelayMs` apart.
 * `holdManifests` are static pods the StaticPods fallback does not start (a component that is slow
 * to come up) until attempt `releaseHeldAt` (default: never).
 */
export async function bootJoinNode(node: RehearsalNode, logDir: string, options: JoinOptions = {}): Promise<JoinNodeBoot> {
  fs.mkdirSync(logDir, { recursive: true });
  const logFile = path.join(logDir, "units.log");
  const started = Date.now();
  // A node's second boot of the unit keeps its running agent (containerd, kubelet).
  const agent = options.agent ?? (await startAgent(node, options.role ?? "control-plane", logDir, options.holdManifests, options.extraImages));
  const boot = async (): Promise<JoinNodeBoot> => {
    const kubeadm = installKubeadmWrapper(node.root, agent instanceof NodeRuntime);
    // A second boot of the unit (a retry test) keeps what the first boot's metadata step wrote.
    const peerRoutes = options.agent ? [] : await bootMetadata(node, logFile);
    const bootValues = await runUnit(node, "v6fabric-boot-values.service", { logFile });
    await startApiPath(node, logDir);
    const kubeadmRuns = await runUnit(node, "v6fabric-kubeadm.service", {
      logFile,
      extraEnv: { V6FABRIC_KUBEADM: kubeadm },
      attempts: options.attempts ?? 1,
      retryDelayMs: options.retryDelayMs,
      beforeRetry: async (attempt) => {
        // Held manifests exist only in the StaticPods fallback; the kubelet runs whatever kubeadm writes.
        if (attempt === options.releaseHeldAt && agent instanceof StaticPods) agent.held.clear();
        await options.beforeAttempt?.(attempt);
      },
      onOutput: options.onKubeadmOutput,
    });
    return { peerRoutes, bootValues, kubeadm: kubeadmRuns, agent, milliseconds: Date.now() - started };
  };
  // A caller's agent stays the caller's to stop.
  return options.agent ? boot() : stoppingOnFailure(agent, boot);
}

export interface NodeReboot {
  /** The shutdown units' ExecStop= runs (v6fabric-withdraw-at-shutdown.service). */
  readonly shutdown: UnitRun[];
  /** The boot units' runs, in their order (peer routes, boot values, withdraw-at-boot). */
  readonly boot: UnitRun[];
  /** The node's new kubelet and containerd. */
  readonly agent: NodeRuntime;
}

/**
 * A node that has joined, rebooted: its shutdown units run before the kubelet stops (as
 * systemd stops units in the reverse of their start order), then every process of the
 * node stops, as at power-off; then its boot units run again in their order and a new
 * containerd and kubelet start on the same disk. The kubeadm unit does not run again
 * (kubeadm.done), nor does anything else of the first boot.
 */
export async function rebootNode(node: RehearsalNode, agent: PodAgent, logDir: string, role: "control-plane" | "worker"): Promise<NodeReboot> {
  if (!(agent instanceof NodeRuntime)) throw new Error(`${node.hostname}: a reboot needs the real kubelet (the StaticPods fallback has no node to reboot)`);
  const logFile = path.join(logDir, "units.log");
  const shutdown = await stopUnit(node, "v6fabric-withdraw-at-shutdown.service", { logFile });
  agent.stop();
  node.stopProcesses();
  // Pods' processes live in their own network namespaces, so also end everything in the
  // node's cgroups (the kubelet's cgroupRoot is named after the node's namespace).
  for (const hierarchy of cgroupV1Hierarchies()) killCgroupTree(path.join(hierarchy, node.netns));
  const boot = [...(await bootMetadata(node, logFile)), ...(await runUnit(node, "v6fabric-boot-values.service", { logFile }))];
  await startApiPath(node, logDir);
  boot.push(...(await runUnit(node, "v6fabric-withdraw-at-boot.service", { logFile })));
  const runtime = new NodeRuntime(node, role, path.join(logDir, "runtime-after-reboot"));
  await runtime.start({ afterReboot: true });
  return { shutdown, boot, agent: runtime };
}

export interface EtcdMember {
  /** etcd's member ID (a uint64, as the JSON gateway writes it: a decimal string). */
  readonly id: string;
  readonly name: string;
  readonly isLearner: boolean;
  readonly peerURLs: readonly string[];
}

/** Calls etcd's JSON gateway on the node with kubeadm's health-check client certificate. */
function etcdApi(node: RehearsalNode, call: string, body: Record<string, unknown>): Record<string, any> {
  const pki = "/etc/kubernetes/pki/etcd";
  const result = node.exec(
    ["curl", "-sS", "--max-time", "5", "--cacert", `${pki}/ca.crt`, "--cert", `${pki}/healthcheck-client.crt`, "--key", `${pki}/healthcheck-client.key`, "-X", "POST", "-d", JSON.stringify(body), `https://[::1]:2379/v3/${call}`],
    { timeoutMs: 10_000 },
  );
  if (result.status !== 0) throw new Error(`etcd ${call} on ${node.hostname} failed: ${result.stderr.trim()}`);
  return JSON.parse(result.stdout);
}

/** etcd's member list, asked on the node. */
export function etcdMembers(node: RehearsalNode): EtcdMember[] {
  const members = (etcdApi(node, "cluster/member/list", {}).members ?? []) as { ID?: string; name?: string; isLearner?: boolean; peerURLs?: string[] }[];
  return members.map((m) => ({ id: String(m.ID ?? ""), name: m.name ?? "", isLearner: m.isLearner === true, peerURLs: m.peerURLs ?? [] }));
}

/** Every document of the add-on manifests the node's list names, as the node has them. */
export function addonDocuments(node: RehearsalNode): { manifest: string; doc: Record<string, any> }[] {
  const list = fs.readFileSync(node.hostPath("/etc/v6fabric/addons.list"), "utf8").split("\n").filter(Boolean);
  return list.flatMap((manifest) =>
    YAML.parseAllDocuments(fs.readFileSync(node.hostPath(manifest), "utf8"))
      .map((d) => d.toJS())
      .filter((doc) => doc && doc.kind)
      .map((doc) => ({ manifest, doc })),
  );
}

/**
 * Where `declared` differs from `live`: declared fields missing or different. Extra live
 * fields are fine (defaults), and so is a declared empty list or string, or false, that
 * the API server leaves out (Kubernetes types omit empty values: a CRD's
 * `preserveUnknownFields: false` reads back absent).
 */
export function declaredDifferences(declared: unknown, live: unknown, at = ""): string[] {
  if (live === undefined && (declared === "" || declared === false || (Array.isArray(declared) && declared.length === 0))) return [];
  if (Array.isArray(declared)) {
    if (!Array.isArray(live) || live.length !== declared.length) return [`${at}: declared ${JSON.stringify(declared)}, live ${JSON.stringify(live)}`];
    return declared.flatMap((d, i) => declaredDifferences(d, live[i], `${at}[${i}]`));
  }
  if (declared && typeof declared === "object") {
    if (!live || typeof live !== "object") return [`${at}: declared an object, live ${JSON.stringify(live)}`];
    return Object.entries(declared).flatMap(([k, v]) => declaredDifferences(v, (live as Record<string, unknown>)[k], `${at}.${k}`));
  }
  return declared === live ? [] : [`${at}: declared ${JSON.stringify(declared)}, live ${JSON.stringify(live)}`];
}
