/**
 * The boot scripts as shipped (decoded from a rendered config), run with bash on fake
 * metadata, templates and commands. Paths come from environment variables the
 * scripts document, so nothing here touches the machine.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { NODE_PATHS, renderNodeIgnition } from "../ignition";
import { BOOT_VALUES, SAMPLE_BOOT_VALUES } from "../lib/boot-values";
import { fixtureInput } from "./support/ignition-fixtures";
import { describeWithTools, fileText, IgnConfig, tempDir } from "./support/ignition";

const config = JSON.parse(JSON.stringify(renderNodeIgnition(fixtureInput("init")))) as IgnConfig;

/** Writes the shipped script `name` (of `from`, by default the init fixture's config) to a temp dir and returns its path. */
function script(name: string, from: IgnConfig = config): string {
  const dir = tempDir("script");
  const p = path.join(dir, name);
  fs.writeFileSync(p, fileText(from, `${NODE_PATHS.scriptDir}/${name}`), { mode: 0o755 });
  return p;
}

function run(scriptPath: string, env: Record<string, string>) {
  // A runaway script (say, a function calling itself) fails the test instead of holding the machine.
  const result = spawnSync("bash", [scriptPath], { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env }, encoding: "utf8", timeout: 30_000 });
  return { status: result.status, out: `${result.stdout}${result.stderr}` };
}

/** A fake command that logs its arguments to `log` and exits with the status in `statusFile` (default 0). */
function fakeCommand(dir: string, name: string, log: string, body = ""): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, `#!/bin/bash\necho "${name} $*" >> "${log}"\n${body}\n`, { mode: 0o755 });
  return p;
}

function metadataEnv(dir: string, lines: string[]): string {
  const p = path.join(dir, "flatcar");
  fs.writeFileSync(p, lines.join("\n") + "\n");
  return p;
}

const METADATA = [
  "COREOS_PACKET_HOSTNAME=v6fabric-cp-1",
  `COREOS_PACKET_IPV6_PUBLIC_0=${SAMPLE_BOOT_VALUES.nodeIpv6}`,
  "COREOS_PACKET_IPV6_PUBLIC_GATEWAY_0=2001:db8:0:ab00::2",
  `COREOS_PACKET_IPV4_PRIVATE_0=${SAMPLE_BOOT_VALUES.nodePrivateIpv4}`,
];

describe("render-boot-values", () => {
  /** The template tree as Ignition writes it, and fake metadata. */
  function setup(metadata: string[]) {
    const dir = tempDir("boot-values");
    const templates = path.join(dir, "templates");
    const root = path.join(dir, "root");
    // The template tree exactly as Ignition writes it from the rendered config.
    for (const f of (config.storage?.files ?? []).filter((f) => f.path.startsWith(`${NODE_PATHS.templateDir}/`))) {
      const target = path.join(templates, f.path.slice(NODE_PATHS.templateDir.length));
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.writeFileSync(target, fileText(config, f.path), { mode: f.mode });
      fs.chmodSync(target, f.mode ?? 0o644);
    }
    return {
      root,
      templates,
      env: { V6FABRIC_METADATA_ENV: metadataEnv(dir, metadata), V6FABRIC_TEMPLATE_DIR: templates, V6FABRIC_TARGET_ROOT: root },
    };
  }

  it("writes the kubeadm config and the add-on with this node's addresses, keeping modes", () => {
    const { root, env } = setup(METADATA);
    const result = run(script("render-boot-values"), env);
    expect(result.out).toContain("2 file(s) rendered");
    expect(result.status).toBe(0);
    const kubeadm = fs.readFileSync(path.join(root, NODE_PATHS.kubeadmConfig), "utf8");
    expect(kubeadm).toContain(`- name: node-ip\n      value: "${SAMPLE_BOOT_VALUES.nodeIpv6}"`);
    expect(kubeadm).toContain(`advertiseAddress: "${SAMPLE_BOOT_VALUES.nodeIpv6}"`);
    expect(kubeadm).not.toContain(BOOT_VALUES.nodeIpv6);
    expect(fs.statSync(path.join(root, NODE_PATHS.kubeadmConfig)).mode & 0o777).toBe(0o600);
    const addon = fs.readFileSync(path.join(root, "/etc/kubernetes/addons/10-example.yaml"), "utf8");
    expect(addon).toContain(`routerId: "${SAMPLE_BOOT_VALUES.nodePrivateIpv4}"`);
  });

  it("is repeatable: a second run gives the same files", () => {
    const { root, env } = setup(METADATA);
    const s = script("render-boot-values");
    run(s, env);
    const first = fs.readFileSync(path.join(root, NODE_PATHS.kubeadmConfig), "utf8");
    expect(run(s, env).status).toBe(0);
    expect(fs.readFileSync(path.join(root, NODE_PATHS.kubeadmConfig), "utf8")).toBe(first);
  });

  it.each([
    ["no IPv6 address", METADATA.filter((l) => !l.startsWith("COREOS_PACKET_IPV6_PUBLIC_0=")), "COREOS_PACKET_IPV6_PUBLIC_0 is missing"],
    ["a malformed IPv6 address", [...METADATA.slice(0, 1), "COREOS_PACKET_IPV6_PUBLIC_0=2001:db8::1/127; rm -rf /", ...METADATA.slice(2)], "is not an IPv6 address"],
    ["a malformed IPv4 address", [...METADATA.slice(0, 3), "COREOS_PACKET_IPV4_PRIVATE_0=10.0.0"], "is not an IPv4 address"],
  ])("fails without writing anything on %s", (_name, metadata, message) => {
    const { root, env } = setup(metadata as string[]);
    const result = run(script("render-boot-values"), env);
    expect(result.status).not.toBe(0);
    expect(result.out).toContain(message);
    expect(fs.existsSync(path.join(root, NODE_PATHS.kubeadmConfig))).toBe(false);
  });
});

describeWithTools(["jq"], "bgp-peer-routes", () => {
  function setup(neighbours: unknown[]) {
    const dir = tempDir("bgp");
    const log = path.join(dir, "log");
    const json = path.join(dir, "metadata.json");
    fs.writeFileSync(json, JSON.stringify({ hostname: "x", bgp_neighbors: neighbours }));
    const env = {
      V6FABRIC_METADATA_ENV: metadataEnv(dir, METADATA),
      V6FABRIC_METADATA_URL: `file://${json}`,
      V6FABRIC_IP_COMMAND: fakeCommand(dir, "ip", log),
    };
    return { env, log };
  }
  const v4 = { address_family: 4, peer_ips: ["169.254.255.1", "169.254.255.2"], peer_as: 65530 };
  const v6 = { address_family: 6, peer_ips: ["fc00::e", "fc00::f"], peer_as: 65530 };

  it("adds a /128 route to each IPv6 peer via the IPv6 gateway, idempotently (replace)", () => {
    const { env, log } = setup([v4, v6]);
    const result = run(script("bgp-peer-routes"), env);
    expect(result.status).toBe(0);
    expect(fs.readFileSync(log, "utf8").trim().split("\n")).toEqual([
      "ip -6 route replace fc00::e/128 via 2001:db8:0:ab00::2",
      "ip -6 route replace fc00::f/128 via 2001:db8:0:ab00::2",
    ]);
  });

  it("routes only to peers both the cluster and Metal name, and fails naming each difference", () => {
    // Metal lists fc00::e and another router; the cluster's BGPPeers are fc00::e and fc00::f.
    const { env, log } = setup([v4, { ...v6, peer_ips: ["fc00::e", "fc00::a"] }]);
    const result = run(script("bgp-peer-routes"), env);
    expect(result.status).toBe(1);
    expect(fs.readFileSync(log, "utf8").trim().split("\n")).toEqual(["ip -6 route replace fc00::e/128 via 2001:db8:0:ab00::2"]);
    expect(result.out).toContain("the cluster peers with fc00::f but Metal lists no session to it for this server");
    expect(result.out).toContain("Metal lists the BGP peer fc00::a for this server, but the cluster has no BGPPeer for it");
  });

  it("takes the cluster's peers from the node's rendering (one list for BGPPeers, policy and routes)", () => {
    const other = JSON.parse(JSON.stringify(renderNodeIgnition({ ...fixtureInput("worker"), bgpPeers: ["fc00::a"] }))) as IgnConfig;
    const { env, log } = setup([{ ...v6, peer_ips: ["fc00::a"] }]);
    const result = run(script("bgp-peer-routes", other), env);
    expect([result.status, fs.readFileSync(log, "utf8").trim()]).toEqual([0, "ip -6 route replace fc00::a/128 via 2001:db8:0:ab00::2"]);
  });

  it("fails (so systemd retries) while the metadata lists no IPv6 neighbour", () => {
    const { env, log } = setup([v4]);
    const result = run(script("bgp-peer-routes"), env);
    expect(result.status).not.toBe(0);
    expect(result.out).toContain("no IPv6 BGP neighbours yet");
    expect(fs.existsSync(log)).toBe(false);
  });
});

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

describe("apply-addons", () => {
  function setup(failures: number, attempts = 5) {
    const dir = tempDir("addons");
    const log = path.join(dir, "log");
    const counter = path.join(dir, "count");
    fs.writeFileSync(counter, "0");
    const list = path.join(dir, "addons.list");
    fs.writeFileSync(list, "/etc/kubernetes/addons/a.yaml\n/etc/kubernetes/addons/b.yaml");
    const kubeconfig = path.join(dir, "admin.conf");
    fs.writeFileSync(kubeconfig, "");
    const body = `n=$(cat "${counter}"); echo $((n + 1)) > "${counter}"; [ "$n" -ge ${failures} ]`;
    const env = {
      ADDON_LIST: list,
      V6FABRIC_STATE_DIR: path.join(dir, "state"),
      V6FABRIC_KUBECONFIG: kubeconfig,
      V6FABRIC_APPLY_ATTEMPTS: String(attempts),
      V6FABRIC_APPLY_DELAY: "0",
      V6FABRIC_KUBECTL: fakeCommand(dir, "kubectl", log, body),
    };
    return { env, dir, calls: () => fs.readFileSync(log, "utf8").trim().split("\n") };
  }
  const apply = (f: string, kubeconfig: string) => `kubectl --kubeconfig ${kubeconfig} apply --server-side --force-conflicts --field-manager=v6fabric-addons -f ${f}`;

  it("applies each manifest in order with server-side apply, retrying until the kinds exist", () => {
    const { env, dir, calls } = setup(2);
    expect(run(script("apply-addons"), env).status).toBe(0);
    const a = apply("/etc/kubernetes/addons/a.yaml", env.V6FABRIC_KUBECONFIG);
    expect(calls()).toEqual([a, a, a, apply("/etc/kubernetes/addons/b.yaml", env.V6FABRIC_KUBECONFIG)]);
    expect(fs.existsSync(path.join(dir, "state", "addons.done"))).toBe(true);
    // Once done, never again.
    expect(run(script("apply-addons"), env).status).toBe(0);
    expect(calls()).toHaveLength(4);
  });

  it("gives up after the bounded number of attempts (systemd restarts the unit)", () => {
    const { env, dir, calls } = setup(100, 3);
    const result = run(script("apply-addons"), env);
    expect(result.status).not.toBe(0);
    expect(result.out).toContain("still fails after 3 attempts");
    expect(calls()).toHaveLength(3);
    expect(fs.existsSync(path.join(dir, "state", "addons.done"))).toBe(false);
  });

  it("waits for admin.conf", () => {
    const { env } = setup(0);
    fs.rmSync(env.V6FABRIC_KUBECONFIG);
    const result = run(script("apply-addons"), env);
    expect(result.status).not.toBe(0);
    expect(result.out).toContain("does not exist yet");
  });
});

describeWithTools(["nft"], "api-path", () => {
  const A = "2001:db8:0:ab00::1";
  const B = "2001:db8:0:ab00::3";
  const C = "2001:db8:0:ab00::5";
  const SELF = SAMPLE_BOOT_VALUES.nodeIpv6;
  const worker = JSON.parse(JSON.stringify(renderNodeIgnition(fixtureInput("worker")))) as IgnConfig;

  /**
   * Fake curl (answers /readyz for the addresses in `ready`), nft (logs the ruleset it
   * is given, and checks it with the real nft's parser) and kubectl (prints `slice`, or
   * fails when it is null), the known-servers file and, when `kubeconfig`, a kubelet.conf.
   */
  function setup(opts: { known?: string; ready?: string[]; slice?: string | null; kubeconfig?: boolean; learned?: string }) {
    const dir = tempDir("api-path");
    const log = path.join(dir, "log");
    const ready = path.join(dir, "ready");
    fs.writeFileSync(ready, (opts.ready ?? []).join("\n") + "\n");
    const known = path.join(dir, "api-servers");
    if (opts.known !== undefined) fs.writeFileSync(known, opts.known);
    const learned = path.join(dir, "state", "api-servers");
    if (opts.learned !== undefined) {
      fs.mkdirSync(path.dirname(learned));
      fs.writeFileSync(learned, opts.learned);
    }
    const slice = path.join(dir, "slice");
    if (opts.slice !== null) fs.writeFileSync(slice, opts.slice ?? "");
    const kubeconfig = path.join(dir, "kubelet.conf");
    if (opts.kubeconfig) fs.writeFileSync(kubeconfig, "apiVersion: v1\nkind: Config\n");
    const ca = path.join(dir, "ca.crt");
    fs.writeFileSync(ca, "CA");
    const env = {
      V6FABRIC_API_SERVERS_FILE: known,
      V6FABRIC_API_SERVERS_LEARNED: learned,
      V6FABRIC_METADATA_ENV: metadataEnv(dir, METADATA),
      V6FABRIC_KUBECONFIG: kubeconfig,
      V6FABRIC_API_CA_FILES: `${path.join(dir, "missing.crt")} ${ca}`,
      V6FABRIC_CURL_COMMAND: fakeCommand(dir, "curl", log, `url=\${!#}; host=\${url#https://[}; host=\${host%%]*}; [ "$url" = "https://[$host]:443/readyz" ] && [ "\${@: -2:1}" = "${ca}" ] && grep -qxF "$host" "${ready}"`),
      V6FABRIC_NFT_COMMAND: fakeCommand(dir, "nft", log, `rules=$(cat); echo "$rules" > "${dir}/rules"; nft -c -f "${dir}/rules"`),
      V6FABRIC_KUBECTL_COMMAND: fakeCommand(dir, "kubectl", log, `[ -f "${slice}" ] && cat "${slice}"`),
    };
    return { env, log, learned, rules: () => fs.readFileSync(path.join(dir, "rules"), "utf8") };
  }

  /** The addresses the ruleset's one DNAT rule sends the ClusterIP to. */
  function servers(rules: string): string[] {
    const rule = rules.split("\n").filter((l) => l.includes("dnat"));
    expect(rule).toHaveLength(1);
    expect(rule[0]).toMatch(/^ip6 daddr 2001:db8:0:ab02::1 tcp dport 443 dnat to /);
    const targets = [...rule[0].replace(/^.* dnat to /, "").matchAll(/[0-9a-f]*:[0-9a-f:]+/g)].map((m) => m[0]);
    // Connections to any other server are reset: the same set, in the filter hook.
    const reset = rules.split("\n").filter((l) => l.includes("reject"));
    expect(reset).toEqual([`meta l4proto tcp ct original ip6 daddr 2001:db8:0:ab02::1 ct original proto-dst 443 ct reply ip6 saddr != { ${targets.join(",")} } reject with tcp reset`]);
    return targets;
  }

  it("sends the ClusterIP only to the API servers that answer /readyz, spread at random, in one checked nft transaction", () => {
    const { env, rules } = setup({ known: `${A}\n${B}\n${C}\n`, ready: [A, C] });
    const result = run(script("api-path", worker), env);
    expect([result.status, result.out]).toEqual([0, expect.stringContaining(`api-path: [2001:db8:0:ab02::1]:443 -> ${A} ${C}`)]);
    const text = rules();
    expect(servers(text)).toEqual([A, C]);
    expect(text).toContain(`dnat to numgen random mod 2 map { 0 : ${A},1 : ${C} }`);
    // Replaces the table atomically, in the output hook before kube-proxy's NAT (-100).
    expect(text.split("\n").slice(0, 5)).toEqual([
      "table ip6 v6fabric_api_path",
      "delete table ip6 v6fabric_api_path",
      "table ip6 v6fabric_api_path {",
      "chain output {",
      "type nat hook output priority -110; policy accept;",
    ]);
  });

  it("one ready server: a plain DNAT to it", () => {
    const { env, rules } = setup({ known: `${A}\n${B}\n`, ready: [B] });
    expect(run(script("api-path", worker), env).status).toBe(0);
    expect(rules()).toContain(`ip6 daddr 2001:db8:0:ab02::1 tcp dport 443 dnat to ${B}\n`);
  });

  it("none ready (the first API server still starting): every candidate, so the first to answer is used", () => {
    const { env, rules } = setup({ known: `${A}\n${B}\n`, ready: [] });
    expect(run(script("api-path", worker), env).status).toBe(0);
    expect(servers(rules())).toEqual([A, B]);
  });

  it("a control plane counts itself (its address from the metadata); a worker does not", () => {
    const cp = setup({ known: `${A}\n`, ready: [A, SELF] });
    expect(run(script("api-path"), cp.env).status).toBe(0);
    expect(servers(cp.rules()).sort()).toEqual([A, SELF].sort());
    const w = setup({ known: `${A}\n`, ready: [A, SELF] });
    expect(run(script("api-path", worker), w.env).status).toBe(0);
    expect(servers(w.rules())).toEqual([A]);
  });

  it("learns the API servers of the kubernetes EndpointSlice once the node has a kubelet.conf, and keeps them", () => {
    const { env, log, learned, rules } = setup({ known: `${A}\n`, ready: [A, B, C], kubeconfig: true, slice: `${C}\n${B}\nnot-an-address\n` });
    const result = run(script("api-path", worker), env);
    expect([result.status, result.out]).toEqual([0, expect.stringContaining(`the kubernetes EndpointSlice lists ${B} ${C}`)]);
    expect(fs.readFileSync(learned, "utf8")).toBe(`${B}\n${C}\n`);
    expect(servers(rules())).toEqual([A, B, C]);
    expect(fs.readFileSync(log, "utf8")).toMatch(/^kubectl --kubeconfig \S+kubelet.conf --request-timeout=5s -n default get endpointslices.discovery.k8s.io kubernetes -o /m);
  });

  it("keeps what it learned when the cluster does not answer, and asks nothing before the node joined", () => {
    const down = setup({ known: `${A}\n`, ready: [A, B], kubeconfig: true, slice: null, learned: `${B}\n` });
    expect(run(script("api-path", worker), down.env).status).toBe(0);
    expect(fs.readFileSync(down.learned, "utf8")).toBe(`${B}\n`);
    expect(servers(down.rules())).toEqual([A, B]);
    const before = setup({ known: `${A}\n`, ready: [A], slice: `${C}\n` });
    expect(run(script("api-path", worker), before.env).status).toBe(0);
    expect(fs.readFileSync(before.log, "utf8")).not.toContain("kubectl");
  });

  it("ignores lines that are not IPv6 addresses, and with none known leaves the ClusterIP to the network", () => {
    const { env, rules } = setup({ known: `10.0.0.1\n${A}; nft flush ruleset\n\n`, ready: [] });
    const result = run(script("api-path", worker), env);
    expect([result.status, result.out]).toEqual([0, expect.stringContaining("-> nothing (no API server known yet)")]);
    expect(rules()).not.toContain("dnat");
    expect(rules()).not.toContain("reject");
    expect(rules()).toContain("type nat hook output priority -110;");
  });
});

describe("service-announcement", () => {
  const LABEL = "node.kubernetes.io/exclude-from-external-load-balancers";
  /** Fake kubectl (prints `label` for the node's label, fails `get` when null) and curl (kube-proxy healthy or not). */
  function setup(opts: { label: string | null; healthy: boolean; joined?: boolean }) {
    const dir = tempDir("announce");
    const log = path.join(dir, "log");
    const kubeconfig = path.join(dir, "kubelet.conf");
    if (opts.joined ?? true) fs.writeFileSync(kubeconfig, "apiVersion: v1\nkind: Config\n");
    const getBody = opts.label === null ? 'echo "connection refused" >&2; exit 1' : `echo -n "${opts.label}"`;
    // kubectl is found on PATH, by its default name, as on a node.
    fakeCommand(dir, "kubectl", log, `if [ "$4" = get ]; then ${getBody}; fi`);
    const env = {
      PATH: `${dir}:${process.env.PATH ?? "/usr/bin:/bin"}`,
      V6FABRIC_KUBECONFIG: kubeconfig,
      V6FABRIC_CURL_COMMAND: fakeCommand(dir, "curl", log, `exit ${opts.healthy ? 0 : 22}`),
    };
    const calls = () => (fs.existsSync(log) ? fs.readFileSync(log, "utf8").trim().split("\n") : []).filter((l) => l.startsWith("kubectl"));
    return { env, calls, kubeconfig };
  }
  const get = (kubeconfig: string) => `kubectl --kubeconfig ${kubeconfig} --request-timeout=10s get node v6fabric-cp-1 -o go-template={{index .metadata.labels "${LABEL}"}}`;

  it("removes the label once kube-proxy answers, so the node announces the Service ranges", () => {
    const { env, calls, kubeconfig } = setup({ label: "true", healthy: true });
    const result = run(script("service-announcement"), env);
    expect([result.status, result.out]).toEqual([0, expect.stringContaining("kube-proxy is healthy; v6fabric-cp-1 announces the Service ranges")]);
    expect(calls()).toEqual([get(kubeconfig), `kubectl --kubeconfig ${kubeconfig} --request-timeout=10s label node v6fabric-cp-1 ${LABEL}-`]);
  });

  it("labels the node when kube-proxy stops answering, so Calico withdraws its Service routes", () => {
    const { env, calls, kubeconfig } = setup({ label: "<no value>", healthy: false });
    const result = run(script("service-announcement"), env);
    expect([result.status, result.out]).toEqual([0, expect.stringContaining("withdraws the Service ranges")]);
    expect(calls()).toEqual([get(kubeconfig), `kubectl --kubeconfig ${kubeconfig} --request-timeout=10s label node v6fabric-cp-1 ${LABEL}=true --overwrite`]);
  });

  it.each([
    ["healthy and announcing", "<no value>", true],
    ["unhealthy and withdrawn", "true", false],
  ])("changes nothing when %s", (_name, label, healthy) => {
    const { env, calls, kubeconfig } = setup({ label, healthy });
    expect(run(script("service-announcement"), env).status).toBe(0);
    expect(calls()).toEqual([get(kubeconfig)]);
  });

  it("does nothing before the node has joined, and fails (the timer runs it again) when the API does not answer", () => {
    const before = setup({ label: "true", healthy: true, joined: false });
    expect(run(script("service-announcement"), before.env).status).toBe(0);
    expect(before.calls()).toEqual([]);
    const down = setup({ label: null, healthy: false });
    const result = run(script("service-announcement"), down.env);
    expect(result.status).not.toBe(0);
    expect(down.calls()).toEqual([get(down.kubeconfig)]);
  });
});
