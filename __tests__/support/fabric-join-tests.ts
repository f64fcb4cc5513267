/**
 * The fabric rehearsal's joins: the init node, the second control plane and the workers
 * on their first attempt, and a third control plane whose join is stopped at five points,
 * the last two once its Node is Ready, each followed by the unit's retry as systemd
 * would start it (Restart=on-failure). Issue #24: a resume must not depend on the Node's
 * readiness or on the health of unrelated members, and no healthy member is ever removed
 * (docs/control-plane.md, "Retries").
 */
import * as fs from "node:fs";
import { directApiServerUrl } from "../../lib/kubeadm";
import { EtcdMember, etcdMembers } from "../../rehearsal/control-plane";
import { RehearsalNode } from "../../rehearsal/nodes";
import { waitFor } from "./fabric";
import { CLUSTER_IP, FabricRehearsal, NODES, WORKERS } from "./fabric-rehearsal";

/** The API servers a node's own path sends the ClusterIP to, from its nftables rule. */
export function apiPathServers(node: RehearsalNode): string[] {
  const table = node.exec(["nft", "list", "table", "ip6", "v6fabric_api_path"]);
  expect([node.hostname, table.status, table.stderr]).toEqual([node.hostname, 0, ""]);
  const rule = /ip6 daddr (\S+) tcp dport 443 dnat to (.*)$/m.exec(table.stdout);
  expect([node.hostname, rule?.[1]]).toEqual([node.hostname, CLUSTER_IP]);
  return [...rule![2].matchAll(/([0-9a-f]*:[0-9a-f:]+)(?=,|\s*}|$)/g)].map((m) => m[1]).sort();
}

export function voters(members: readonly EtcdMember[]): string[] {
  return members.filter((m) => !m.isLearner).map((m) => m.name).sort();
}

/**
 * A ValidatingAdmissionPolicy that refuses kubeadm's own updates of one Node (admin.conf's
 * group), so a join's mark-control-plane repeats its patch until it is stopped instead of
 * finishing in milliseconds (kubeadm 1.36 PatchNodeOnce retries on any error).
 */
function holdMarkControlPlane(f: FabricRehearsal, node: string) {
  const name = "v6fabric-rehearsal-hold-mark-control-plane";
  const policy = {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingAdmissionPolicy",
    metadata: { name },
    spec: {
      failurePolicy: "Fail",
      matchConstraints: { resourceRules: [{ apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE", "UPDATE"], resources: ["nodes"], resourceNames: [node] }] },
      validations: [{ expression: "!('kubeadm:cluster-admins' in request.userInfo.groups)", message: "rehearsal: mark-control-plane held" }],
    },
  };
  const binding = { apiVersion: "admissionregistration.k8s.io/v1", kind: "ValidatingAdmissionPolicyBinding", metadata: { name }, spec: { policyName: name, validationActions: ["Deny"] } };
  // Every control plane's API server must agree before the fault counts as set or cleared:
  // a dry-run create of the Node through each one, as kubeadm's own identity. (CREATE is
  // held too for this probe: admission answers it before the Node's existence counts,
  // and the Node may not be registered yet. The kubelet registers it as system:node.)
  const servers = () => NODES.slice(0, 3).map((n) => f.node(n).addresses.ipv6);
  const held = (server: string) => {
    const r = f.kubectl(["--server", directApiServerUrl(server), "--request-timeout=5s", "create", "--dry-run=server", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "Node", metadata: { name: node } }));
    if (r.stderr.includes("rehearsal: mark-control-plane held")) return true;
    return r.status === 0 || /AlreadyExists|already exists/.test(r.stderr) ? false : undefined;
  };
  const agree = (want: boolean) =>
    waitFor(`every API server ${want ? "holding" : "releasing"} ${node}'s patches`, 60_000, () =>
      servers().every((s) => {
        const h = held(s);
        // An API server that does not answer yet (cp-3's own, early in its join) loads every policy when it starts.
        return h === want || (h === undefined && s === f.node(node).addresses.ipv6);
      }) || undefined,
    );
  return {
    async set() {
      const r = f.kubectl(["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items: [policy, binding] }));
      expect([r.status, r.stderr]).toEqual([0, ""]);
      await agree(true);
    },
    async clear() {
      f.kubectl(["delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", name, "--ignore-not-found"]);
      await agree(false);
    },
  };
}

const tail = (boot: { kubeadm: { output: string }[] }) => boot.kubeadm.map((r) => r.output).join("\n").split("\n").slice(-30).join("\n");

export function joinTests(f: FabricRehearsal): void {
  test("the init node forms the cluster and applies its add-ons; the second control plane joins on its first attempt, and etcd has two voting members", () => {
    expect([f.init!.kubeadm.at(-1)?.status, f.init!.addons.at(-1)?.status]).toEqual([0, 0]);
    const boot = f.joins.get("v6fabric-cp-2")!;
    expect([boot.kubeadm.length, boot.kubeadm[0].status, tail(boot)]).toEqual([1, 0, expect.stringContaining("kubeadm-bootstrap: kubeadm join succeeded")]);
    expect(voters(etcdMembers(f.cp1))).toEqual(["v6fabric-cp-1", "v6fabric-cp-2"]);
    // It reached the first control plane through its own path, which now counts it too (it holds nothing on lo).
    const cp2 = f.node("v6fabric-cp-2");
    expect(apiPathServers(cp2)).toEqual([f.cp1.addresses.ipv6, cp2.addresses.ipv6].sort());
    expect(cp2.exec(["ip", "-6", "addr", "show", "dev", "lo"]).stdout).not.toContain(CLUSTER_IP);
  });

  test("workers finish kubeadm join, their kubelets' TLS bootstrap included, without the control plane's keys", () => {
    for (const name of WORKERS) {
      const boot = f.joins.get(name)!;
      expect([name, boot.kubeadm.at(-1)?.status, tail(boot)]).toEqual([name, 0, expect.stringContaining("kubeadm join succeeded")]);
      const worker = f.node(name);
      // kubelet-wait-bootstrap ran: the kubelet swapped its bootstrap credential for a client certificate.
      expect(boot.kubeadm.map((r) => r.output).join("\n")).toContain("[kubelet-start] Waiting for the kubelet to perform the TLS Bootstrap");
      // (A link to the dated certificate, by its path in the node: lstat, not stat.)
      expect(fs.lstatSync(worker.hostPath("/var/lib/kubelet/pki/kubelet-client-current.pem")).isSymbolicLink()).toBe(true);
      expect(fs.readFileSync(worker.hostPath("/etc/kubernetes/kubelet.conf"), "utf8")).toContain("client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem");
      expect(fs.existsSync(worker.hostPath("/etc/kubernetes/pki/ca.key"))).toBe(false);
    }
  });

  // Stops 1-3 come before the Node is Ready; stops 4 and 5 come once it is, where kubeadm's
  // kubelet-start refuses a Ready Node of its name and check-etcd refuses any unhealthy
  // member, so the resume must skip both. Before the last attempt the second control
  // plane's etcd is paused: the resume waits for it instead of failing or removing anyone.
  test("a third control plane stopped before its etcd member exists, right after it was added, in mark-control-plane, and (its Node Ready) in mark-control-plane again and in wait-control-plane, with another member paused: the resumes join it, and no healthy member is ever removed", async () => {
    const cp1 = f.cp1;
    const cp2 = f.node("v6fabric-cp-2");
    const cp3 = f.node("v6fabric-cp-3");
    const own = (m: EtcdMember) => m.peerURLs.some((u) => u.includes(cp3.addresses.ipv6));
    const killedAt: { attempt: number; memberExisted: boolean; voter?: boolean; nodeReady?: boolean }[] = [];
    const membersAfter: string[][] = [];
    const kill = () => cp3.killMatching(/^\/opt\/bin\/kubeadm join /) > 0;
    const record = (attempt: number) => {
      const member = etcdMembers(cp1).find(own);
      const nodeReady = f.readiness()["v6fabric-cp-3"] === "True";
      killedAt.push({ attempt, memberExisted: member !== undefined, voter: member !== undefined && member.name !== "" && !member.isLearner, nodeReady });
    };
    // Stops 3 to 5 happen in the output handler, while the phase each one stops is held
    // (the Node's patch refused, the scheduler stalled): a resumed join would otherwise
    // pass them within milliseconds.
    const onKubeadmOutput = (text: string, attempt: number) => {
      if (killedAt.length !== attempt - 1) return;
      if ((attempt === 3 || attempt === 4) && text.includes("[mark-control-plane]") && kill()) record(attempt);
      else if (attempt === 5 && text.includes("[control-plane-check] Checking kube-scheduler") && kill()) record(attempt);
    };
    let busy = false;
    const watcher = setInterval(() => {
      if (busy || killedAt.length >= 2) return;
      busy = true;
      try {
        if (killedAt.length === 0) {
          // Attempt 1: kubeadm is writing the node's certificates (control-plane-prepare);
          // its etcd member comes only after every certificate, kubeconfig and manifest.
          if (fs.existsSync(cp3.hostPath("/etc/kubernetes/pki/etcd/server.crt")) && kill()) killedAt.push({ attempt: 1, memberExisted: etcdMembers(cp1).some(own) });
        } else if (fs.existsSync(cp3.hostPath("/etc/kubernetes/manifests/etcd.yaml"))) {
          // Attempt 2: the member is added and the manifest written; kubeadm waits for the
          // member to start, and is stopped within 50 ms of the member's appearance.
          let members: EtcdMember[] = [];
          try {
            members = etcdMembers(cp1);
          } catch {
            return;
          }
          if (members.some(own) && kill()) killedAt.push({ attempt: 2, memberExisted: true });
        }
      } finally {
        busy = false;
      }
    }, 50);
    let paused = false;
    // Stops 3 and 4 land in mark-control-plane, whose patch of the Node is refused meanwhile.
    const hold = holdMarkControlPlane(f, "v6fabric-cp-3");
    let holding = false;
    const beforeAttempt = async (attempt: number) => {
      membersAfter.push(voters(etcdMembers(cp1)));
      if (attempt === 3) {
        holding = true; // before the policy exists, so a failed check still takes it away
        await hold.set();
      }
      if (attempt === 5) {
        await hold.clear();
        holding = false;
      }
      if (attempt === 4) {
        const readyAfter = Date.now();
        await f.everyNodeReady(["v6fabric-cp-3"], 300_000);
        f.figures.push(`cp-3's Node Ready ${((Date.now() - readyAfter) / 1000).toFixed(1)} s after its third stop`);
      }
      // Stop 5 must land in wait-control-plane, which a resume otherwise passes within
      // milliseconds: cp-3's scheduler stalls meanwhile, so kubeadm waits for its health.
      if (attempt === 5) expect(cp3.killMatching(/^kube-scheduler /, "SIGSTOP")).toBe(1);
      if (attempt === 6) {
        cp3.killMatching(/^kube-scheduler /, "SIGCONT");
        // The second control plane's etcd stops answering for 20 s while the last resume runs.
        expect(cp2.killMatching(/^etcd /, "SIGSTOP")).toBe(1);
        paused = true;
        setTimeout(() => {
          cp2.killMatching(/^etcd /, "SIGCONT");
          paused = false;
        }, 20_000);
      }
    };
    try {
      await f.join("v6fabric-cp-3", { attempts: 6, retryDelayMs: 2000, onKubeadmOutput, beforeAttempt });
    } finally {
      clearInterval(watcher);
      if (holding) await hold.clear();
      if (paused) cp2.killMatching(/^etcd /, "SIGCONT");
      cp3.killMatching(/^kube-scheduler /, "SIGCONT");
    }
    const boot = f.joins.get("v6fabric-cp-3")!;
    const attempts = boot.kubeadm.map((r) => `attempt ${r.attempt}: exit ${r.status}`).join("; ");
    console.log(`rehearsal record: interrupted joins of v6fabric-cp-3: ${attempts}; stopped ${JSON.stringify(killedAt)}; voters before each retry ${JSON.stringify(membersAfter)}`);
    expect(killedAt).toEqual([
      { attempt: 1, memberExisted: false },
      { attempt: 2, memberExisted: true },
      { attempt: 3, memberExisted: true, voter: true, nodeReady: expect.any(Boolean) },
      { attempt: 4, memberExisted: true, voter: true, nodeReady: true },
      { attempt: 5, memberExisted: true, voter: true, nodeReady: true },
    ]);
    expect([boot.kubeadm.map((r) => r.status), tail(boot)]).toEqual([[137, 137, 137, 137, 137, 0], expect.stringContaining("kubeadm-bootstrap: kubeadm join succeeded")]);
    // Every retry resumed the join or started it afresh, never with a reset or a member removal.
    for (const run of boot.kubeadm.slice(1)) {
      expect([run.attempt, run.output]).toEqual([run.attempt, expect.not.stringMatching(/resetting before retrying|\[reset\]|member remove/)]);
    }
    for (const run of boot.kubeadm.slice(2)) expect([run.attempt, run.output]).toEqual([run.attempt, expect.stringMatching(/--skip-phases=preflight\b/)]);
    // With its Node Ready, the resumes skip kubelet-start (it refuses a Ready Node of this
    // name) and check-etcd (it refuses any unhealthy member, the paused one included).
    for (const run of boot.kubeadm.slice(3)) expect([run.attempt, run.output]).toEqual([run.attempt, expect.stringMatching(/--skip-phases=preflight,kubelet-start,check-etcd\b/)]);
    // The two first members voted through every stop: nobody removed a healthy member.
    for (const voting of membersAfter) expect(voting).toEqual(expect.arrayContaining(["v6fabric-cp-1", "v6fabric-cp-2"]));
    const members = await waitFor("3 voting members", 30_000, () => {
      const m = etcdMembers(cp1);
      return voters(m).length === 3 ? m : undefined;
    });
    expect(members.map((m) => [m.name, m.isLearner]).sort()).toEqual(NODES.slice(0, 3).map((n) => [n, false]));
    const ready = cp1.exec(["kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "get", "--raw", "/readyz/etcd"]);
    expect([ready.status, ready.stdout]).toEqual([0, "ok"]);
    f.figures.push(`all joins done ${((Date.now() - f.started) / 1000).toFixed(1)} s after the start`);
  }, 1_200_000);

  test("every Node is Ready with its role, and runs calico-node; the operator deployed kube-controllers and typha", async () => {
    await f.everyNodeReady(NODES);
    const nodes = f.json(["get", "nodes"]).items as any[];
    expect(nodes.map((n) => [n.metadata.name, n.status.conditions.find((c: any) => c.type === "Ready").status, Object.keys(n.metadata.labels).includes("node-role.kubernetes.io/control-plane")]).sort()).toEqual(
      NODES.map((n) => [n, "True", !WORKERS.includes(n)]),
    );
    f.figures.push(`all ${NODES.length} Nodes Ready ${((Date.now() - f.started) / 1000).toFixed(1)} s after the start (Terraform included)`);
    const running = await waitFor("calico-node Running on every node", 180_000, () => {
      const byNode = f
        .calicoPods()
        .filter((p) => p.metadata.labels["k8s-app"] === "calico-node" && p.status.phase === "Running")
        .map((p) => p.spec.nodeName)
        .sort();
      return byNode.length === NODES.length ? byNode : undefined;
    });
    expect(running).toEqual(NODES);
    const deployed = new Set(f.calicoPods().map((p) => p.metadata.labels["k8s-app"]));
    f.figures.push(`calico-system: ${[...deployed].sort().join(", ")}`);
    for (const app of ["calico-node", "calico-kube-controllers", "calico-typha"]) expect([app, deployed.has(app)]).toEqual([app, true]);
  }, 600_000);
}
