/**
 * kubeadm-bootstrap as shipped, run with a fake kubeadm that refuses what kubeadm 1.36's
 * phases refuse (docs/control-plane.md, "Retries"): preflight on a node with files left,
 * check-etcd while any member is unhealthy, kubelet-start while a Ready Node of this
 * name exists. A fake curl plays etcd's JSON gateway, one answer per client URL.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { BOOT_VALUES } from "../lib/boot-values";
import { tempDir } from "./support/ignition";
import { fakeCommand, run, script } from "./support/scripts";

const OWN_PEER = "https://[2001:db8:0:ab00::5]:2380";
const CP1_PEER = "https://[2001:db8:0:ab00::1]:2380";
const CP1_CLIENT = "https://[2001:db8:0:ab00::1]:2379";
const CP2_PEER = "https://[2001:db8:0:ab00::3]:2380";
const OWN_CLIENT = "https://[2001:db8:0:ab00::5]:2379";

interface Member {
  ID: string;
  name?: string;
  peerURLs: string[];
  isLearner?: boolean;
}

function setup() {
  const dir = tempDir("kubeadm");
  const log = path.join(dir, "log");
  const kubernetesDir = path.join(dir, "etc-kubernetes");
  const etcdData = path.join(dir, "etcd-data");
  const hooks = path.join(dir, "hooks");
  const state = path.join(dir, "state");
  fs.mkdirSync(path.join(kubernetesDir, "pki"), { recursive: true });
  fs.writeFileSync(path.join(kubernetesDir, "pki", "ca.crt"), "CA");
  fs.writeFileSync(path.join(kubernetesDir, "kubeadm.yaml"), "kind: JoinConfiguration\n");
  fs.mkdirSync(hooks);
  fs.writeFileSync(path.join(hooks, "before-kubeadm"), `#!/bin/bash\necho before >> "${log}"\n`, { mode: 0o755 });
  fs.writeFileSync(path.join(hooks, "after-kubeadm"), `#!/bin/bash\necho after >> "${log}"\n`, { mode: 0o755 });
  const etcd = path.join(dir, "etcd");
  fs.mkdirSync(etcd);
  const kubeadm = fakeCommand(dir, "kubeadm", log, [
    'skip=""; for a in "$@"; do case $a in --skip-phases=*) skip=${a#--skip-phases=} ;; esac; done',
    'runs() { [[ ",$skip," != *",$1,"* ]]; }',
    `if [ "$1" = reset ]; then rm -rf "${etcdData}" "${kubernetesDir}/manifests" "${kubernetesDir}/kubelet.conf" "${kubernetesDir}/pki"; exit 0; fi`,
    `if runs preflight && { [ -e "${kubernetesDir}/kubelet.conf" ] || [ -n "$(ls -A "${kubernetesDir}/manifests" 2>/dev/null)" ]; }; then echo "[preflight] files exist" >&2; exit 1; fi`,
    `if runs check-etcd && [ -e "${dir}/member-unhealthy" ]; then echo "[check-etcd] etcd cluster is not healthy" >&2; exit 1; fi`,
    `if runs kubelet-start && [ -e "${dir}/node-ready" ]; then echo "a Node with name v6fabric-cp-3 and status Ready already exists" >&2; exit 1; fi`,
    `if [ -e "${dir}/fail" ]; then exit 1; fi`,
  ].join("\n"));
  // etcd's JSON gateway: ${etcd}/<client URL as a key>.json answers member/list; .remove, if present, accepts a removal.
  const curl = fakeCommand(dir, "curl", log, [
    'url=${!#}; key=$(printf %s "${url%/v3/*}" | tr -c "a-zA-Z0-9" _)',
    `[ -f "${etcd}/$key.json" ] || exit 7`,
    'case $url in',
    `*/member/list) cat "${etcd}/$key.json" ;;`,
    `*/member/remove) [ -e "${etcd}/$key.remove" ] || exit 22 ;;`,
    "esac",
  ].join("\n"));
  const env = {
    KUBEADM_COMMAND: "join",
    KUBEADM_CONFIG: path.join(kubernetesDir, "kubeadm.yaml"),
    V6FABRIC_STATE_DIR: state,
    V6FABRIC_KUBERNETES_DIR: kubernetesDir,
    V6FABRIC_HOOK_DIR: hooks,
    V6FABRIC_KUBEADM: kubeadm,
    V6FABRIC_ETCD_DATA_DIR: etcdData,
    V6FABRIC_CURL: curl,
  };
  const calls = () => (fs.existsSync(log) ? fs.readFileSync(log, "utf8").trim().split("\n") : []);
  const key = (url: string) => url.replace(/[^a-zA-Z0-9]/g, "_");
  /** The member list etcd answers at `client` (and whether it accepts a removal there). */
  const answer = (client: string, members: Member[], removes = false) => {
    fs.writeFileSync(path.join(etcd, `${key(client)}.json`), JSON.stringify({ header: { cluster_id: "1" }, members }));
    if (removes) fs.writeFileSync(path.join(etcd, `${key(client)}.remove`), "");
  };
  const flag = (name: string) => fs.writeFileSync(path.join(dir, name), "");
  const unflag = (name: string) => fs.rmSync(path.join(dir, name), { force: true });
  return { dir, env, calls, answer, flag, unflag, kubernetesDir, etcdData, state, s: script("kubeadm-bootstrap") };
}

/** The etcd manifest kubeadm writes once it has added this node's member (phases/etcd/local.go). */
function writeEtcdManifest(kubernetesDir: string, name: string, peer: string, cluster: string[]) {
  fs.mkdirSync(path.join(kubernetesDir, "manifests"), { recursive: true });
  const client = peer.replace(/:2380$/, ":2379");
  fs.writeFileSync(
    path.join(kubernetesDir, "manifests", "etcd.yaml"),
    ["    - etcd", `    - --advertise-client-urls=${client}`, `    - --initial-advertise-peer-urls=${peer}`, `    - --initial-cluster=${cluster.join(",")}`, `    - --name=${name}`, ""].join("\n"),
  );
}

const kubeadmCalls = (calls: string[]) => calls.filter((c) => c.startsWith("kubeadm"));
const curlCalls = (calls: string[]) => calls.filter((c) => c.startsWith("curl"));

describe("kubeadm-bootstrap: a joining control plane resumes", () => {
  /** A control plane whose earlier join stopped half way, leaving what the given phases leave. */
  function halfJoined(left: { prepared?: boolean; kubeletBootstrapped?: boolean; memberAdded?: boolean; etcdData?: boolean }) {
    const t = setup();
    fs.writeFileSync(t.env.KUBEADM_CONFIG, "kind: JoinConfiguration\ncontrolPlane:\n  localAPIEndpoint:\n    bindPort: 443\n");
    if (left.prepared ?? true) {
      fs.mkdirSync(path.join(t.kubernetesDir, "manifests"), { recursive: true });
      fs.writeFileSync(path.join(t.kubernetesDir, "manifests", "kube-apiserver.yaml"), "");
    }
    if (left.kubeletBootstrapped) fs.writeFileSync(path.join(t.kubernetesDir, "kubelet.conf"), "apiVersion: v1\n");
    if (left.memberAdded) writeEtcdManifest(t.kubernetesDir, "v6fabric-cp-3", OWN_PEER, [`v6fabric-cp-1=${CP1_PEER}`, `v6fabric-cp-2=${CP2_PEER}`, `v6fabric-cp-3=${OWN_PEER}`]);
    if (left.etcdData) fs.mkdirSync(path.join(t.etcdData, "member"), { recursive: true });
    return t;
  }
  const join = (env: { KUBEADM_CONFIG: string }, skip?: string) => `kubeadm join --config ${env.KUBEADM_CONFIG}${skip ? ` --skip-phases=${skip}` : ""}`;

  it("once its Node is Ready and another member is down, it still finishes: the done phases are skipped, and no member is asked anything", () => {
    const t = halfJoined({ kubeletBootstrapped: true, memberAdded: true, etcdData: true });
    t.flag("node-ready");
    t.flag("member-unhealthy");
    const result = run(t.s, t.env);
    expect([result.status, kubeadmCalls(t.calls())]).toEqual([0, [join(t.env, "preflight,kubelet-start,check-etcd")]]);
    expect(curlCalls(t.calls())).toEqual([]);
    expect(fs.existsSync(path.join(t.etcdData, "member"))).toBe(true);
    expect(fs.existsSync(path.join(t.state, "kubeadm.done"))).toBe(true);
  });

  it.each([
    ["control-plane-prepare only", { prepared: true }, "preflight"],
    ["the kubelet bootstrapped, the member not yet added", { kubeletBootstrapped: true }, "preflight,kubelet-start"],
    ["the member added before the kubelet bootstrapped (etcd-join runs first in kubelet local mode)", { memberAdded: true, etcdData: true }, "preflight,check-etcd"],
  ])("skips exactly the phases that are done: %s", (_name, left, skip) => {
    const t = halfJoined(left);
    const result = run(t.s, t.env);
    expect([result.status, kubeadmCalls(t.calls())]).toEqual([0, [join(t.env, skip)]]);
    expect(result.out).toContain(`skipping the phases that are done: ${skip}`);
  });

  it("keeps checking etcd's health before its member is added: a resume then waits (fails, the unit retries) until the member is back", () => {
    const t = halfJoined({ kubeletBootstrapped: true });
    t.flag("member-unhealthy");
    expect(run(t.s, t.env).status).toBe(1);
    t.unflag("member-unhealthy");
    expect(run(t.s, t.env).status).toBe(0);
    expect(kubeadmCalls(t.calls())).toEqual([join(t.env, "preflight,kubelet-start"), join(t.env, "preflight,kubelet-start")]);
  });

  it("never removes or resets anything because resumes keep failing, however many", () => {
    const t = halfJoined({ kubeletBootstrapped: true, memberAdded: true, etcdData: true });
    t.answer(CP1_CLIENT, [{ ID: "333", name: "v6fabric-cp-3", peerURLs: [OWN_PEER] }], true);
    t.flag("fail");
    for (let i = 0; i < 8; i++) expect(run(t.s, t.env).status).toBe(1);
    expect(kubeadmCalls(t.calls())).toEqual(Array(8).fill(join(t.env, "preflight,kubelet-start,check-etcd")));
    expect(curlCalls(t.calls())).toEqual([]);
    expect(fs.existsSync(path.join(t.etcdData, "member"))).toBe(true);
  });
});

describe("kubeadm-bootstrap: a joining control plane whose etcd data is gone", () => {
  function dataLost(members: Member[], removes: boolean) {
    const t = setup();
    fs.writeFileSync(t.env.KUBEADM_CONFIG, "kind: JoinConfiguration\ncontrolPlane:\n  localAPIEndpoint:\n    bindPort: 443\n");
    fs.writeFileSync(path.join(t.kubernetesDir, "kubelet.conf"), "apiVersion: v1\n");
    writeEtcdManifest(t.kubernetesDir, "v6fabric-cp-3", OWN_PEER, [`v6fabric-cp-1=${CP1_PEER}`, `v6fabric-cp-3=${OWN_PEER}`]);
    t.answer(CP1_CLIENT, members, removes);
    // This node's own etcd would answer too; it must never be the one asked to remove itself.
    t.answer(OWN_CLIENT, members, true);
    return t;
  }
  const CP1: Member = { ID: "111", name: "v6fabric-cp-1", peerURLs: [CP1_PEER] };

  it("removes its member through another member only when etcd lists it with this node's name and peer URL, then joins afresh", () => {
    const t = dataLost([CP1, { ID: "333", name: "v6fabric-cp-3", peerURLs: [OWN_PEER] }], true);
    const result = run(t.s, t.env);
    expect(result.status).toBe(0);
    const removals = curlCalls(t.calls()).filter((c) => c.includes("member/remove"));
    expect(removals).toEqual([expect.stringMatching(/-d \{"ID":"333"\} https:\/\/\[2001:db8:0:ab00::1\]:2379\/v3\/cluster\/member\/remove$/)]);
    expect(kubeadmCalls(t.calls())).toEqual(["kubeadm reset --force", `kubeadm join --config ${t.env.KUBEADM_CONFIG}`]);
    expect(result.out).toContain("removed this node's etcd member 333");
    expect(fs.readFileSync(path.join(t.kubernetesDir, "pki", "ca.crt"), "utf8")).toBe("CA");
  });

  it.each([
    ["added but never started (no name yet): kubeadm starts it", [CP1, { ID: "333", peerURLs: [OWN_PEER], isLearner: true }], "preflight,kubelet-start,check-etcd"],
    ["another member of this name, at another peer URL (an older device)", [CP1, { ID: "999", name: "v6fabric-cp-3", peerURLs: ["https://[2001:db8:0:ab00::9]:2380"] }], "preflight,kubelet-start"],
    ["not listed: kubeadm adds it again, after checking etcd's health", [CP1], "preflight,kubelet-start"],
  ])("leaves every member alone when its member is %s", (_name, members, skip) => {
    const t = dataLost(members, true);
    const result = run(t.s, t.env);
    expect(result.status).toBe(0);
    expect(curlCalls(t.calls()).filter((c) => c.includes("member/remove"))).toEqual([]);
    expect(kubeadmCalls(t.calls())).toEqual([`kubeadm join --config ${t.env.KUBEADM_CONFIG} --skip-phases=${skip}`]);
  });

  it("stops for good (exit 3, which the unit does not restart) when no other member removes it; nothing is reset", () => {
    const t = dataLost([CP1, { ID: "333", name: "v6fabric-cp-3", peerURLs: [OWN_PEER] }], false);
    const result = run(t.s, t.env);
    expect(result.status).toBe(3);
    expect(result.out).toContain("giving up: no other etcd member removed member 333");
    expect(result.out).toContain("etcdctl member remove");
    expect(kubeadmCalls(t.calls())).toEqual([]);
    expect(fs.existsSync(path.join(t.kubernetesDir, "manifests", "etcd.yaml"))).toBe(true);
  });

  it("retries later, touching nothing, when no other member answers", () => {
    const t = dataLost([], false);
    fs.rmSync(path.join(t.dir, "etcd"), { recursive: true });
    fs.mkdirSync(path.join(t.dir, "etcd"));
    const result = run(t.s, t.env);
    expect([result.status, kubeadmCalls(t.calls())]).toEqual([1, []]);
    expect(result.out).toContain("no other etcd member answers");
  });
});

describe("kubeadm-bootstrap: the first control plane after a failed init", () => {
  function halfInit() {
    const t = setup();
    t.env.KUBEADM_COMMAND = "init";
    fs.writeFileSync(t.env.KUBEADM_CONFIG, "kind: InitConfiguration\n");
    writeEtcdManifest(t.kubernetesDir, "v6fabric-cp-1", CP1_PEER, [`v6fabric-cp-1=${CP1_PEER}`]);
    fs.mkdirSync(path.join(t.etcdData, "member"), { recursive: true });
    return t;
  }
  const SELF: Member = { ID: "111", name: "v6fabric-cp-1", peerURLs: [CP1_PEER] };

  it.each([
    ["a voting member", { ID: "222", name: "v6fabric-cp-2", peerURLs: [CP2_PEER] }],
    ["a learner that has not started", { ID: "222", peerURLs: [CP2_PEER], isLearner: true }],
  ])("never resets once etcd lists anyone else (%s): it stops (exit 3) with the commands to finish the init", (_name, other) => {
    const t = halfInit();
    t.answer(CP1_CLIENT, [SELF, other]);
    const result = run(t.s, t.env);
    expect(result.status).toBe(3);
    expect(kubeadmCalls(t.calls())).toEqual([]);
    expect(fs.existsSync(path.join(t.etcdData, "member"))).toBe(true);
    expect(result.out).toContain(CP2_PEER);
    expect(result.out).toContain(`kubeadm init --config ${t.env.KUBEADM_CONFIG} --skip-phases=preflight,certs,kubeconfig,etcd,control-plane`);
    expect(curlCalls(t.calls())).toEqual([expect.stringContaining(`${CP1_CLIENT}/v3/cluster/member/list`)]);
  });

  it("resets and retries when etcd lists only this node", () => {
    const t = halfInit();
    t.answer(CP1_CLIENT, [SELF]);
    expect(run(t.s, t.env).status).toBe(0);
    expect(kubeadmCalls(t.calls())).toEqual(["kubeadm reset --force", `kubeadm init --config ${t.env.KUBEADM_CONFIG}`]);
  });

  it("does not reset when its etcd does not answer (it cannot tell who joined): the unit retries", () => {
    const t = halfInit();
    const result = run(t.s, t.env);
    expect([result.status, kubeadmCalls(t.calls())]).toEqual([1, []]);
    expect(result.out).toContain("not resetting");
  });

  it("resets without asking etcd when etcd never stored anything (the init stopped before it)", () => {
    const t = halfInit();
    fs.rmSync(t.etcdData, { recursive: true });
    expect(run(t.s, t.env).status).toBe(0);
    expect(curlCalls(t.calls())).toEqual([]);
    expect(kubeadmCalls(t.calls())).toEqual(["kubeadm reset --force", `kubeadm init --config ${t.env.KUBEADM_CONFIG}`]);
  });
});

describe("kubeadm-bootstrap: once, stamps and hooks", () => {
  it("runs hooks and kubeadm once, then never again", () => {
    const { env, calls, state, s } = setup();
    expect(run(s, env).status).toBe(0);
    expect(calls()).toEqual(["before", `kubeadm join --config ${env.KUBEADM_CONFIG}`, "after"]);
    expect(fs.existsSync(path.join(state, "kubeadm.done"))).toBe(true);
    expect(run(s, env).status).toBe(0);
    expect(calls()).toHaveLength(3);
  });

  it("a failed kubeadm leaves no stamp and fails the unit (systemd retries)", () => {
    const { env, state, s, flag } = setup();
    flag("fail");
    expect(run(s, env).status).not.toBe(0);
    expect(fs.existsSync(path.join(state, "kubeadm.done"))).toBe(false);
    expect(fs.existsSync(path.join(state, "kubeadm.ok"))).toBe(false);
  });

  it("a worker after an attempt that stopped half way resets and restores the CA files Ignition placed", () => {
    const { env, calls, kubernetesDir, s } = setup();
    fs.writeFileSync(path.join(kubernetesDir, "kubelet.conf"), "");
    fs.rmSync(path.join(kubernetesDir, "pki"), { recursive: true });
    fs.mkdirSync(path.join(kubernetesDir, "pki"));
    // Ignition's CA was saved by the first attempt: put it back where the first attempt found it.
    fs.mkdirSync(path.join(env.V6FABRIC_STATE_DIR, "pki"), { recursive: true });
    fs.writeFileSync(path.join(env.V6FABRIC_STATE_DIR, "pki", "ca.crt"), "CA");
    fs.writeFileSync(path.join(env.V6FABRIC_STATE_DIR, "pki.saved"), "");
    expect(run(s, env).status).toBe(0);
    expect(calls()).toEqual(["kubeadm reset --force", "before", `kubeadm join --config ${env.KUBEADM_CONFIG}`, "after"]);
    expect(fs.readFileSync(path.join(kubernetesDir, "pki", "ca.crt"), "utf8")).toBe("CA");
  });

  it("if only the after-hook failed, a retry runs the hook without kubeadm", () => {
    const { env, calls, state, s } = setup();
    const hooks = env.V6FABRIC_HOOK_DIR;
    fs.writeFileSync(path.join(hooks, "after-kubeadm"), `#!/bin/bash\necho after >> "${path.join(state, "..", "log")}"\n[ -e "${hooks}/ok" ]\n`, { mode: 0o755 });
    expect(run(s, env).status).not.toBe(0);
    fs.writeFileSync(path.join(hooks, "ok"), "");
    expect(run(s, env).status).toBe(0);
    expect(calls()).toEqual(["before", `kubeadm join --config ${env.KUBEADM_CONFIG}`, "after", "after"]);
  });

  it("refuses a config that still has boot placeholders, and an unknown command", () => {
    const { env, s } = setup();
    fs.writeFileSync(env.KUBEADM_CONFIG, `advertiseAddress: "${BOOT_VALUES.nodeIpv6}"\n`);
    expect(run(s, env).out).toContain("still holds boot placeholders");
    const other = setup();
    const result = run(other.s, { ...other.env, KUBEADM_COMMAND: "reset" });
    expect(result.status).toBe(2);
    expect(result.out).toContain("KUBEADM_COMMAND=reset is not valid: use init or join");
  });
});
