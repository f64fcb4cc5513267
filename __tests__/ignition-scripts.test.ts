/**
 * The boot scripts as shipped (decoded from a rendered config), run with bash on fake
 * metadata, templates and commands (support/scripts.ts). kubeadm-bootstrap, api-path
 * and the Service announcement have their own files.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { NODE_PATHS, renderNodeIgnition } from "../ignition";
import { BOOT_VALUES, SAMPLE_BOOT_VALUES } from "../lib/boot-values";
import { fixtureInput } from "./support/ignition-fixtures";
import { describeWithTools, fileText, IgnConfig, tempDir } from "./support/ignition";
import { fakeCommand, initConfig as config, METADATA, metadataEnv, run, script } from "./support/scripts";

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

describe("shipped scripts", () => {
  /** bash's own reading of a script (`--pretty-print` parses it and prints it back without comments). */
  function parsed(text: string): string {
    const p = path.join(tempDir("parse"), "script");
    fs.writeFileSync(p, text);
    const r = spawnSync("bash", ["--pretty-print", p], { encoding: "utf8" });
    expect([r.status, r.stderr]).toEqual([0, ""]);
    // Blank lines are not part of the parse (bash keeps one where a comment block was).
    return r.stdout.split("\n").filter((line) => line.trim() !== "").join("\n");
  }

  it.each(["init", "control-plane", "worker"] as const)("%s: bash reads each shipped script as it reads its commented, indented source", (role) => {
    const shipped = JSON.parse(JSON.stringify(renderNodeIgnition(fixtureInput(role)))) as IgnConfig;
    const scripts = (shipped.storage?.files ?? []).filter((f) => f.path.startsWith(`${NODE_PATHS.scriptDir}/`));
    expect(scripts.length).toBeGreaterThan(4);
    for (const f of scripts) {
      const name = path.basename(f.path);
      const source = parsed(fs.readFileSync(path.join(__dirname, "..", "ignition", "scripts", `${name}.sh`), "utf8"));
      // The source's placeholders stand for any value on their line.
      const pattern = source.split(/@[A-Z0-9_]+@/).map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("[^\\n]*?");
      expect([name, new RegExp(`^${pattern}$`).test(parsed(fileText(shipped, f.path)))]).toEqual([name, true]);
    }
  });
});
