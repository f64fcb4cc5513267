/**
 * The control-plane rehearsal with CONTROL_PLANE_COUNT=3 and WORKER_COUNT=2: the init
 * node forms the cluster, the other control planes and the workers join by their own
 * kubeadm unit, one at a time, and a join interrupted after its etcd member was added
 * is retried the way systemd would retry the unit.
 *
 * The metro routes the Service range to the init node, which holds the kubernetes
 * ClusterIP on lo: what Metal's routers would do with the route the nodes announce,
 * and what the design relies on today (issue "Control plane that survives its own
 * network" replaces that with a node-local path). No kubelet runs (docs/rehearsal.md),
 * so no Node object is registered and a worker's join ends once its kubelet
 * credentials are written.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PreparedCluster } from "../rehearsal/cluster";
import { EtcdMember, InitNodeBoot, JoinNodeBoot, bootInitNode, bootJoinNode, etcdMembers, etcdRemoveMember } from "../rehearsal/control-plane";
import { RehearsalNode, nodeSupport } from "../rehearsal/nodes";
import { toolsPresent } from "../rehearsal/tools";
import { hasCommand, installHint } from "./support/ignition";

const support = nodeSupport();
const tools = toolsPresent(["terraform", "kubernetes"]);
const ignitionTools = ["ignition-validate", "jq", "systemd-analyze", "curl"].filter((t) => !hasCommand(t));
const why = !support.ok ? support.why : !tools ? "the pinned Terraform and Kubernetes builds are missing: run `npm run tools` (.ci/run does)" : ignitionTools.length ? installHint(ignitionTools) : "";
if (why) console.warn(`SKIPPED control-plane rehearsal (3 + 2 nodes): ${why}`);
const describeRehearsal = why ? describe.skip : describe;

const SERVICE_RANGE = "2001:db8:0:ab20::/108";
const ADMIN = ["kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf"];

function voters(members: EtcdMember[]): string[] {
  return members.filter((m) => !m.isLearner).map((m) => m.name).sort();
}

describeRehearsal("control-plane rehearsal: 3 control planes and 2 workers", () => {
  let work: string;
  let cluster: PreparedCluster | undefined;
  let init: InitNodeBoot;
  const joins = new Map<string, JoinNodeBoot>();
  let cp1: RehearsalNode;
  let started: number;

  beforeAll(async () => {
    started = Date.now();
    work = fs.mkdtempSync(path.join(os.tmpdir(), "v6fabric-cluster-rehearsal-"));
    cluster = PreparedCluster.prepare(work, { PATH: process.env.PATH, HOME: process.env.HOME, CONTROL_PLANE_COUNT: "3", WORKER_COUNT: "2" });
    cp1 = cluster.byName("v6fabric-cp-1");
    cluster.fabric!.routeAnnounced(SERVICE_RANGE, [cp1]);
    init = await bootInitNode(cp1, path.join(work, "logs", "v6fabric-cp-1"));
    console.log(`rehearsal figure: 3 + 2 nodes, kubeadm init done after ${((Date.now() - started) / 1000).toFixed(1)} s`);
    for (const name of ["v6fabric-cp-2", "v6fabric-worker-01", "v6fabric-worker-02"]) {
      joins.set(name, await bootJoinNode(cluster.byName(name), path.join(work, "logs", name)));
    }
    console.log(`rehearsal figure: 3 + 2 nodes, joins (but the interrupted one) done after ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }, 1_200_000);

  afterAll(() => {
    for (const boot of [init, ...joins.values()]) boot?.pods.stop();
    try {
      cluster?.destroy();
    } finally {
      if (work) fs.rmSync(work, { recursive: true, force: true });
    }
  }, 300_000);

  const tail = (boot: { kubeadm: { output: string }[] }) => boot.kubeadm.map((r) => r.output).join("\n").split("\n").slice(-30).join("\n");

  test("the init node forms the cluster and applies its add-ons", () => {
    expect([init.kubeadm.at(-1)?.status, init.addons.at(-1)?.status]).toEqual([0, 0]);
  });

  test("the second control plane joins on its first attempt, and etcd has two voting members", () => {
    const boot = joins.get("v6fabric-cp-2")!;
    expect([boot.kubeadm.length, boot.kubeadm[0].status, tail(boot)]).toEqual([1, 0, expect.stringContaining("kubeadm-bootstrap: kubeadm join succeeded")]);
    expect(voters(etcdMembers(cp1))).toEqual(["v6fabric-cp-1", "v6fabric-cp-2"]);
    // It answers the ClusterIP itself once joined (the after-kubeadm hook).
    expect(cluster!.byName("v6fabric-cp-2").exec(["ip", "-6", "addr", "show", "dev", "lo"]).stdout).toContain("2001:db8:0:ab20::1/128");
  });

  test("workers get their kubelet credentials from the join; no Node object exists without a kubelet", () => {
    for (const name of ["v6fabric-worker-01", "v6fabric-worker-02"]) {
      const boot = joins.get(name)!;
      expect([name, boot.kubeadm.at(-1)?.status, tail(boot)]).toEqual([name, 0, expect.stringContaining("kubeadm join succeeded")]);
      const worker = cluster!.byName(name);
      expect(fs.existsSync(worker.hostPath("/etc/kubernetes/bootstrap-kubelet.conf"))).toBe(true);
      expect(fs.existsSync(worker.hostPath("/etc/kubernetes/pki/ca.key"))).toBe(false);
    }
    expect(JSON.parse(cp1.exec([...ADMIN, "get", "nodes", "-o", "json"]).stdout).items).toEqual([]);
  });

  // Today's behaviour, recorded (issue "Control plane that survives its own network"
  // replaces it with a retry that cannot lose etcd; this test then changes with it).
  test("a third control plane whose join stops right after its etcd member is added: today the retry resets without removing the member, and a dead member stays", async () => {
    const cp3 = cluster!.byName("v6fabric-cp-3");
    // cp-3's etcd is held back, so its kubeadm waits for the new member after adding it;
    // once the member is in etcd's list and the manifest written, cp-3's kubeadm is stopped.
    let interrupted = false;
    const watcher = setInterval(() => {
      if (interrupted || !fs.existsSync(cp3.hostPath("/etc/kubernetes/manifests/etcd.yaml"))) return;
      let members: EtcdMember[] = [];
      try {
        members = etcdMembers(cp1);
      } catch {
        return;
      }
      if (members.some((m) => m.peerURLs.some((u) => u.includes(cp3.addresses.ipv6)))) {
        interrupted = cp3.killMatching(/^\/opt\/bin\/kubeadm join /) > 0;
      }
    }, 200);
    let boot: JoinNodeBoot;
    try {
      // The interrupted attempt, then one retry as systemd's Restart=on-failure would start it.
      boot = await bootJoinNode(cp3, path.join(work, "logs", "v6fabric-cp-3"), { attempts: 2, retryDelayMs: 2000, holdManifests: ["etcd.yaml"] });
    } finally {
      clearInterval(watcher);
    }
    joins.set("v6fabric-cp-3", boot);
    const members = etcdMembers(cp1);
    const record = boot.kubeadm.map((r) => `attempt ${r.attempt}: exit ${r.status}`).join("; ");
    console.log(`rehearsal record: interrupted join of v6fabric-cp-3: ${record}; etcd members ${JSON.stringify(members.map((m) => [m.name || "(never started)", m.isLearner ? "learner" : "voter"]))}`);
    expect(interrupted).toBe(true);
    expect(boot.kubeadm.map((r) => r.status)).toEqual([137, 1]);
    const retry = boot.kubeadm[1].output;
    expect(retry).toContain("an earlier kubeadm join stopped half way; resetting before retrying");
    // kubeadm reset finds no Node object for this host, so it skips removing the member and empties /var/lib/etcd anyway.
    expect(retry).toContain("No kubeadm config, using etcd pod spec to get data directory");
    // The retried join meets its own dead member and stops.
    const failure = /error execution phase ([^\n]+)/.exec(retry)?.[1];
    console.log(`rehearsal record: the retried join of v6fabric-cp-3 stopped with: ${failure}`);
    expect(failure).toMatch(/^etcd-join: error creating local etcd static pod manifest file: the etcd member [0-9a-f]+ is not started$/);
    const dead = members.filter((m) => m.peerURLs.some((u) => u.includes(cp3.addresses.ipv6)));
    expect(dead).toHaveLength(1);
    // A member that never started, and a learner (kubeadm 1.36 joins as learner): quorum
    // holds with the two voters, but etcd admits one learner at a time, so this one
    // blocks every later control-plane join until it is removed by hand.
    expect(dead[0]).toMatchObject({ name: "", isLearner: true });
    expect(voters(members)).toEqual(["v6fabric-cp-1", "v6fabric-cp-2"]);
    const ready = cp1.exec([...ADMIN, "get", "--raw", "/readyz/etcd"]);
    expect([ready.status, ready.stdout]).toEqual([0, "ok"]);
  }, 900_000);

  test("once the dead learner is removed by hand, the unit's next start joins the third control plane: etcd has 3 voting members", async () => {
    const cp3 = cluster!.byName("v6fabric-cp-3");
    const dead = etcdMembers(cp1).filter((m) => m.peerURLs.some((u) => u.includes(cp3.addresses.ipv6)));
    expect(dead).toHaveLength(1);
    etcdRemoveMember(cp1, dead[0].id);
    joins.get("v6fabric-cp-3")?.pods.stop();
    const again = await bootJoinNode(cp3, path.join(work, "logs", "v6fabric-cp-3-again"));
    joins.set("v6fabric-cp-3", again);
    expect([again.kubeadm.at(-1)?.status, tail(again)]).toEqual([0, expect.stringContaining("kubeadm-bootstrap: kubeadm join succeeded")]);
    // kubeadm promotes the learner once it has caught up; give etcd a moment to report it.
    let members = etcdMembers(cp1);
    for (let i = 0; i < 20 && voters(members).length < 3; i++) {
      await new Promise((r) => setTimeout(r, 500));
      members = etcdMembers(cp1);
    }
    expect(members.map((m) => [m.name, m.isLearner]).sort()).toEqual([
      ["v6fabric-cp-1", false],
      ["v6fabric-cp-2", false],
      ["v6fabric-cp-3", false],
    ]);
    console.log(`rehearsal figure: 3 + 2 nodes, all joins done after ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }, 900_000);
});
