/**
 * The fabric's first boot with the init node stopped late in `kubeadm init` while the
 * second control plane is already an etcd member (issue #24: "an init retry can split
 * etcd"). The fabric forms this way every run, so the fault costs no cluster of its own:
 *
 * 1. cp-1's kubeadm unit runs `kubeadm init`; as it prints that bootstrap-token creates
 *    the cluster-info ConfigMap (its RBAC rules for the joins' certificate requests are
 *    in place, kubelet-finalize and the add-on phase are still to come), kubeadm is
 *    stopped (SIGSTOP), the init half way.
 * 2. cp-2 joins meanwhile, with the certificates Ignition gave it, and becomes a member.
 * 3. cp-1's kubeadm is killed: the unit fails and runs again, as systemd restarts it.
 *    The retry must not reset (a reset wipes the etcd data cp-2 now replicates): it
 *    lists etcd's members, finds cp-2, exits 3 (RestartPreventExitStatus) and prints
 *    the commands to finish by hand.
 * 4. Those printed commands run on cp-1, as an operator would (`kubeadm` through the
 *    rehearsal's wrapper, as the unit's V6FABRIC_KUBEADM; `systemctl restart` of the
 *    unit as the rehearsal runs units), and the boot goes on: the add-ons, the workers.
 *
 * What was seen is recorded for initFaultTests, which asserts it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { EtcdMember, InitNodeBoot, JoinNodeBoot, bootInitNode, etcdMembers } from "../../rehearsal/control-plane";
import { RehearsalNode } from "../../rehearsal/nodes";
import { UnitRun, runUnit } from "../../rehearsal/units";
import type { FabricRehearsal } from "./fabric-rehearsal";

/** Whether the fabric forms with this fault: `V6FABRIC_INIT_FAULT=0` forms it plainly. @default on */
export function initFaultEnabled(): boolean {
  return (process.env.V6FABRIC_INIT_FAULT ?? "1") !== "0";
}

/** The kubeadm init line at which cp-1's kubeadm is stopped. */
const STOP_AT = /\[bootstrap-token\] Creating the "cluster-info" ConfigMap/;

export interface InitFaultRecord {
  /** Whether kubeadm was found and stopped at STOP_AT on the first attempt. */
  stopped: boolean;
  /** etcd's members as cp-1's etcd lists them once cp-2 joined, before kubeadm was killed. */
  membersBeforeKill: EtcdMember[];
  /** cp-1's etcd process before the kill and after the retry: the same one if nothing reset. */
  etcdPidBefore: number[];
  etcdPidAfterRetry: number[];
  /** etcd's members after the retry. */
  membersAfterRetry: EtcdMember[];
  /** The data directory's member folder still there after the retry. */
  etcdDataAfterRetry: boolean;
  /** The commands the retry printed, one per `;`. */
  printed: string[];
  /** The by-hand `kubeadm init` of the printed commands. */
  byHand?: { status: number; output: string };
  /** Seconds from the first unit to cp-1's kubeadm unit done, by-hand finish included. */
  milliseconds: number;
}

/**
 * Boots the init node and the second control plane as described above; returns both
 * boots and the record. Throws only where the fabric cannot go on (cp-2's join failing).
 */
export async function bootInitStoppedLate(f: FabricRehearsal, extraImages: readonly string[]): Promise<{ init: InitNodeBoot; cp2: JoinNodeBoot; record: InitFaultRecord }> {
  const cp1 = f.cp1;
  const record: InitFaultRecord = { stopped: false, membersBeforeKill: [], etcdPidBefore: [], etcdPidAfterRetry: [], membersAfterRetry: [], etcdDataAfterRetry: false, printed: [], milliseconds: 0 };
  const started = Date.now();
  let paused: () => void = () => undefined;
  const pausedNow = new Promise<void>((resolve) => (paused = resolve));
  const initBoot = bootInitNode(cp1, f.logDir("v6fabric-cp-1"), {
    extraImages,
    runKubeProxy: true,
    kubeadmAttempts: 3,
    onKubeadmOutput: (text, attempt) => {
      if (attempt !== 1 || record.stopped || !STOP_AT.test(text)) return;
      record.stopped = cp1.killMatching(/^\/opt\/bin\/kubeadm init /, "SIGSTOP") === 1;
      paused();
    },
    afterKubeadm: async (runs, kubeadm) => finishByHand(cp1, runs, kubeadm, record, path.join(f.logDir("v6fabric-cp-1"), "units.log")),
  });
  // Either kubeadm stopped at the line, or the boot ended without it (recorded: the test fails).
  const ended = await Promise.race([pausedNow.then(() => false), initBoot.then(() => true, () => true)]);
  if (ended) return { init: await initBoot, cp2: await f.join("v6fabric-cp-2"), record };
  const cp2 = await f.join("v6fabric-cp-2");
  record.membersBeforeKill = etcdMembers(cp1);
  record.etcdPidBefore = cp1.processesMatching(/^etcd /);
  // Without cp-2 as a member the fault is not the one rehearsed, and the retry would reset
  // by design: let kubeadm go on instead, so the fabric forms (the record fails the test).
  const cp2Member = record.membersBeforeKill.some((m) => m.name === "v6fabric-cp-2");
  cp1.killMatching(/^\/opt\/bin\/kubeadm init /, cp2Member ? "SIGKILL" : "SIGCONT");
  const init = await initBoot;
  record.milliseconds = Date.now() - started;
  return { init, cp2, record };
}

/**
 * After the unit gave up: records what the retry left, then runs the commands it
 * printed, in order. Returns the unit's run that the printed `systemctl restart` makes.
 */
async function finishByHand(cp1: RehearsalNode, runs: readonly UnitRun[], kubeadm: string, record: InitFaultRecord, logFile: string): Promise<UnitRun[]> {
  const last = runs.at(-1)!;
  if (last.status !== 3) return [];
  record.etcdPidAfterRetry = cp1.processesMatching(/^etcd /);
  record.membersAfterRetry = etcdMembers(cp1);
  record.etcdDataAfterRetry = fs.existsSync(cp1.hostPath("/var/lib/etcd/member"));
  const line = /finish the init here instead: (.*)$/m.exec(last.output)?.[1] ?? "";
  record.printed = line.split(";").map((c) => c.trim()).filter(Boolean);
  const further: UnitRun[] = [];
  for (const command of record.printed) {
    const argv = command.split(/\s+/);
    if (argv[0] === "kubeadm") {
      // The rehearsal's kubeadm wrapper, as the unit gets it (V6FABRIC_KUBEADM): the stand-in systemctl on its PATH.
      const r = cp1.exec([kubeadm, ...argv.slice(1)], { timeoutMs: 600_000 });
      record.byHand = { status: r.status, output: `${r.stdout}${r.stderr}` };
      if (r.status !== 0) return further;
    } else if (argv[0] === "systemctl" && argv[1] === "restart") {
      further.push(...(await runUnit(cp1, argv[2], { logFile, extraEnv: { V6FABRIC_KUBEADM: kubeadm } })));
    } else {
      const r = cp1.exec(argv);
      if (r.status !== 0) return further;
    }
  }
  return further;
}

/** Issue #24: "An init node stopped late in init while cp-2 is already a member does not reset etcd." */
export function initFaultTests(f: FabricRehearsal): void {
  (initFaultEnabled() ? test : test.skip)("the init node stopped late in kubeadm init while cp-2 was already an etcd member: its retry resets nothing, exits 3 with the commands, and those commands finish the init", () => {
    const r = f.initFault!;
    const runs = f.init!.kubeadm;
    expect(r.stopped).toBe(true);
    const names = (members: readonly EtcdMember[]) => members.map((m) => `${m.name}${m.isLearner ? " (learner)" : ""}`).sort();
    expect(names(r.membersBeforeKill)).toEqual(["v6fabric-cp-1", "v6fabric-cp-2"]);
    // Attempt 1 killed half way (the script exits 128 + SIGKILL with its kubeadm), attempt 2
    // gave up on purpose, and the unit stopped there (RestartPreventExitStatus=3).
    expect(runs.slice(0, 2).map((u) => [u.attempt, u.status])).toEqual([[1, 137], [2, 3]]);
    expect(runs[0].output).not.toContain("initialized successfully");
    const cp2Peer = `https://[${f.node("v6fabric-cp-2").addresses.ipv6}]:2380`;
    expect(runs[1].output).toContain("kubeadm-bootstrap: not resetting: kubeadm init stopped half way, but etcd already has other members, whose data a reset would wipe:");
    expect(runs[1].output).toContain(`kubeadm-bootstrap:   v6fabric-cp-2 ${cp2Peer}`);
    expect(runs[1].output).not.toContain("[reset]");
    // Nothing was reset: the same etcd process, its data, the same members.
    expect([r.etcdPidAfterRetry.length, r.etcdPidAfterRetry]).toEqual([1, r.etcdPidBefore]);
    expect(r.etcdDataAfterRetry).toBe(true);
    expect(r.membersAfterRetry.map((m) => m.id).sort()).toEqual(r.membersBeforeKill.map((m) => m.id).sort());
    expect(r.printed).toEqual([
      "kubeadm init --config /etc/kubernetes/kubeadm.yaml --skip-phases=preflight,certs,kubeconfig,etcd,control-plane",
      "touch /var/lib/v6fabric/kubeadm.ok",
      "systemctl restart v6fabric-kubeadm.service",
    ]);
    // Run by hand: kubeadm's remaining phases, then the unit's after-hook and its stamp.
    expect([r.byHand?.status, r.byHand?.output]).toEqual([0, expect.stringContaining("Your Kubernetes control-plane has initialized successfully!")]);
    expect(runs.slice(2).map((u) => [u.status, /kubeadm-bootstrap: running hook .*after-kubeadm/.test(u.output)])).toEqual([[0, true]]);
    expect(fs.existsSync(f.cp1.hostPath("/var/lib/v6fabric/kubeadm.done"))).toBe(true);
    f.figures.push(`init node stopped late in kubeadm init while cp-2 joined: retry exit 3, finished by hand; its kubeadm unit done ${(r.milliseconds / 1000).toFixed(1)} s after its first unit`);
  });
}
