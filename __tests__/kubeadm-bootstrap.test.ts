/** kubeadm-bootstrap as shipped, run with fake kubeadm and curl (support/scripts.ts). */
import * as fs from "node:fs";
import * as path from "node:path";
import { BOOT_VALUES } from "../lib/boot-values";
import { tempDir } from "./support/ignition";
import { fakeCommand, run, script } from "./support/scripts";

describe("kubeadm-bootstrap", () => {
  function setup(kubeadmBody = "") {
    const dir = tempDir("kubeadm");
    const log = path.join(dir, "log");
    const kubernetesDir = path.join(dir, "etc-kubernetes");
    const hooks = path.join(dir, "hooks");
    const state = path.join(dir, "state");
    fs.mkdirSync(path.join(kubernetesDir, "pki"), { recursive: true });
    fs.writeFileSync(path.join(kubernetesDir, "pki", "ca.crt"), "CA");
    fs.writeFileSync(path.join(kubernetesDir, "kubeadm.yaml"), "kind: JoinConfiguration\n");
    fs.mkdirSync(hooks);
    fs.writeFileSync(path.join(hooks, "before-kubeadm"), `#!/bin/bash\necho before >> "${log}"\n`, { mode: 0o755 });
    fs.writeFileSync(path.join(hooks, "after-kubeadm"), `#!/bin/bash\necho after >> "${log}"\n`, { mode: 0o755 });
    const env = {
      KUBEADM_COMMAND: "join",
      KUBEADM_CONFIG: path.join(kubernetesDir, "kubeadm.yaml"),
      V6FABRIC_STATE_DIR: state,
      V6FABRIC_KUBERNETES_DIR: kubernetesDir,
      V6FABRIC_HOOK_DIR: hooks,
      V6FABRIC_KUBEADM: fakeCommand(dir, "kubeadm", log, kubeadmBody),
      V6FABRIC_ETCD_DATA_DIR: path.join(dir, "etcd-data"),
      V6FABRIC_CURL: fakeCommand(dir, "curl", log, "exit 7"),
    };
    const calls = () => (fs.existsSync(log) ? fs.readFileSync(log, "utf8").trim().split("\n") : []);
    return { env, calls, kubernetesDir, state, dir, log };
  }

  /** A joining control plane whose first attempt stopped after kubeadm wrote etcd's manifest and data (its member exists). */
  function halfJoinedControlPlane(extraEnv: Record<string, string> = {}) {
    const t = setup();
    const { env, kubernetesDir, dir, log } = t;
    fs.writeFileSync(env.KUBEADM_CONFIG, "kind: JoinConfiguration\ncontrolPlane:\n  localAPIEndpoint:\n    bindPort: 443\n");
    const own = "https://[2001:db8:0:ab00::5]:2380";
    const failing = fakeCommand(dir, "kubeadm-fail", log, [
      `mkdir -p "${kubernetesDir}/manifests" "${env.V6FABRIC_ETCD_DATA_DIR}/member"`,
      `printf '    - --initial-advertise-peer-urls=${own}\\n    - --initial-cluster=v6fabric-cp-1=https://[2001:db8:0:ab00::1]:2380,v6fabric-cp-3=${own}\\n' > "${kubernetesDir}/manifests/etcd.yaml"`,
      "exit 1",
    ].join("\n"));
    const s = script("kubeadm-bootstrap");
    expect(run(s, { ...env, ...extraEnv, V6FABRIC_KUBEADM: failing }).status).toBe(1);
    return { ...t, s, own, failing };
  }

  it("a joining control plane resumes a half-done join: no reset, only preflight skipped, the etcd data kept", () => {
    const { env, calls, s, state } = halfJoinedControlPlane();
    expect(run(s, env).status).toBe(0);
    expect(calls()).toEqual([
      "before",
      `kubeadm-fail join --config ${env.KUBEADM_CONFIG}`,
      "before",
      `kubeadm join --config ${env.KUBEADM_CONFIG} --skip-phases=preflight`,
      "after",
    ]);
    expect(fs.existsSync(path.join(env.V6FABRIC_ETCD_DATA_DIR, "member"))).toBe(true);
    expect(fs.existsSync(path.join(state, "kubeadm.done"))).toBe(true);
  });

  it("when the resumes run out, it removes its own etcd member through another member, then resets for a fresh join", () => {
    const { env, calls, s, own, failing, dir, log } = halfJoinedControlPlane({ V6FABRIC_MAX_RESUMES: "1" });
    const members = JSON.stringify({ members: [{ ID: "111", name: "v6fabric-cp-1", peerURLs: ["https://[2001:db8:0:ab00::1]:2380"] }, { ID: "333", peerURLs: [own], isLearner: true }] });
    const curl = fakeCommand(dir, "curl", log, `case "$*" in *member/list*) echo '${members}' ;; esac`);
    const resetting = fakeCommand(dir, "kubeadm", log, `if [ "$1" = reset ]; then rm -rf "${env.V6FABRIC_ETCD_DATA_DIR}" "${env.V6FABRIC_KUBERNETES_DIR}/manifests"; fi`);
    expect(run(s, { ...env, V6FABRIC_MAX_RESUMES: "1", V6FABRIC_KUBEADM: failing }).status).toBe(1); // the one resume fails too
    const result = run(s, { ...env, V6FABRIC_MAX_RESUMES: "1", V6FABRIC_KUBEADM: resetting, V6FABRIC_CURL: curl });
    expect(result.status).toBe(0);
    const pki = env.V6FABRIC_KUBERNETES_DIR + "/pki";
    const tls = `--cacert ${pki}/etcd/ca.crt --cert ${pki}/apiserver-etcd-client.crt --key ${pki}/apiserver-etcd-client.key`;
    expect(calls().slice(4)).toEqual([
      `curl -sS --fail --max-time 10 ${tls} -X POST -d {} https://[2001:db8:0:ab00::1]:2379/v3/cluster/member/list`,
      `curl -sS --fail --max-time 30 ${tls} -X POST -d {"ID":"333"} https://[2001:db8:0:ab00::1]:2379/v3/cluster/member/remove`,
      "kubeadm reset --force",
      "before",
      `kubeadm join --config ${env.KUBEADM_CONFIG}`,
      "after",
    ]);
    expect(result.out).toContain("removed this node's etcd member 333");
  });

  it("stops for good (exit 3, which the unit does not restart) when no other member can remove it; nothing is reset", () => {
    const { env, calls, s, failing } = halfJoinedControlPlane({ V6FABRIC_MAX_RESUMES: "0" });
    const result = run(s, { ...env, V6FABRIC_MAX_RESUMES: "0", V6FABRIC_KUBEADM: failing });
    expect(result.status).toBe(3);
    expect(result.out).toContain("giving up: this node's etcd member could not be removed through any other member");
    expect(result.out).toContain("etcdctl member remove");
    expect(calls().filter((c) => c.includes("reset"))).toEqual([]);
    expect(fs.existsSync(path.join(env.V6FABRIC_ETCD_DATA_DIR, "member"))).toBe(true);
  });

  it("runs hooks and kubeadm once, then never again", () => {
    const { env, calls, state } = setup();
    const s = script("kubeadm-bootstrap");
    expect(run(s, env).status).toBe(0);
    expect(calls()).toEqual(["before", `kubeadm join --config ${env.KUBEADM_CONFIG}`, "after"]);
    expect(fs.existsSync(path.join(state, "kubeadm.done"))).toBe(true);
    expect(run(s, env).status).toBe(0);
    expect(calls()).toHaveLength(3);
  });

  it("a failed kubeadm leaves no stamp and fails the unit (systemd retries)", () => {
    const { env, state } = setup("exit 1");
    expect(run(script("kubeadm-bootstrap"), env).status).not.toBe(0);
    expect(fs.existsSync(path.join(state, "kubeadm.done"))).toBe(false);
    expect(fs.existsSync(path.join(state, "kubeadm.ok"))).toBe(false);
  });

  it("after an attempt that stopped half way it resets and restores the CA files Ignition placed", () => {
    // kubeadm fails after writing kubelet.conf and emptying pki, as a half-done join would.
    const { env, calls, kubernetesDir, state } = setup();
    const s = script("kubeadm-bootstrap");
    const failing = { ...env, V6FABRIC_KUBEADM: fakeCommand(path.dirname(env.V6FABRIC_KUBEADM), "kubeadm-fail", path.join(state, "..", "log"), `touch "${kubernetesDir}/kubelet.conf"; rm -rf "${kubernetesDir}/pki"; exit 1`) };
    expect(run(s, failing).status).not.toBe(0);
    // The fake `kubeadm reset` removes what a real reset removes.
    const resetting = { ...env, V6FABRIC_KUBEADM: fakeCommand(path.dirname(env.V6FABRIC_KUBEADM), "kubeadm", path.join(state, "..", "log"), `if [ "$1" = reset ]; then rm -rf "${kubernetesDir}/kubelet.conf" "${kubernetesDir}/pki"; fi`) };
    expect(run(s, resetting).status).toBe(0);
    expect(calls()).toEqual(["before", `kubeadm-fail join --config ${env.KUBEADM_CONFIG}`, "kubeadm reset --force", "before", `kubeadm join --config ${env.KUBEADM_CONFIG}`, "after"]);
    expect(fs.readFileSync(path.join(kubernetesDir, "pki", "ca.crt"), "utf8")).toBe("CA");
  });

  it("if only the after-hook failed, a retry runs the hook without kubeadm", () => {
    const { env, calls, state } = setup();
    const hooks = env.V6FABRIC_HOOK_DIR;
    fs.writeFileSync(path.join(hooks, "after-kubeadm"), `#!/bin/bash\necho after >> "${path.join(state, "..", "log")}"\n[ -e "${hooks}/ok" ]\n`, { mode: 0o755 });
    const s = script("kubeadm-bootstrap");
    expect(run(s, env).status).not.toBe(0);
    fs.writeFileSync(path.join(hooks, "ok"), "");
    expect(run(s, env).status).toBe(0);
    expect(calls()).toEqual(["before", `kubeadm join --config ${env.KUBEADM_CONFIG}`, "after", "after"]);
  });

  it("refuses a config that still has boot placeholders, and an unknown command", () => {
    const { env } = setup();
    fs.writeFileSync(env.KUBEADM_CONFIG, `advertiseAddress: "${BOOT_VALUES.nodeIpv6}"\n`);
    expect(run(script("kubeadm-bootstrap"), env).out).toContain("still holds boot placeholders");
    const other = setup();
    const result = run(script("kubeadm-bootstrap"), { ...other.env, KUBEADM_COMMAND: "reset" });
    expect(result.status).toBe(2);
    expect(result.out).toContain("KUBEADM_COMMAND=reset is not valid: use init or join");
  });
});

