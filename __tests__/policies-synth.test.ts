/**
 * The security manifests as a deploy would send them: read back from the synthesized
 * init node's user data, in the add-on list after Calico's, validated strictly, and
 * still enforcing the opt-in and the prefixes. Bad prefixes stop synth itself.
 */
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { NODE_PATHS } from "../ignition";
import { Ipv6Cidr } from "../lib/address-plan";
import { CALICO_ADDON_DIR } from "../lib/calico";
import { SECURITY_ADDON_DIR } from "../lib/policies";
import { loadSettings } from "../lib/settings";
import { Endpoint, PolicyModel } from "./support/calico-policy-eval";
import { IgnitionFileOut, fileText, ignitionFiles } from "./support/calico-userdata";
import { calicoErrors, parseManifest } from "./support/calico-validate";
import { tempDir } from "./support/ignition";

import { TerraformJson, onlyStack, synthesize } from "./support/synth";

/** Stands in for Terraform's apply-time values: a bootstrap-token-shaped string. */
const resolve = () => "abcdef.0123456789abcdef";

function devices(stack: TerraformJson): [string, Record<string, any>][] {
  return Object.values(stack.resource?.metal_device ?? {}).map((d) => [d.hostname as string, d]);
}

function filesOf(device: Record<string, any>): IgnitionFileOut[] {
  return ignitionFiles(device.user_data, resolve);
}

const OPEN_ENV = { ADMIN_ALLOWED_PREFIXES: "2001:db8:aa::/48", API_ALLOWED_PREFIXES: "2001:db8:bb::/48", WORKER_COUNT: "3", CONTROL_PLANE_COUNT: "3" };
const closed = onlyStack(synthesize({}));
const open = onlyStack(synthesize(OPEN_ENV));

function initFiles(stack: TerraformJson): IgnitionFileOut[] {
  const init = devices(stack).filter(([hostname]) => hostname.endsWith("-cp-1"));
  expect(init).toHaveLength(1);
  return filesOf(init[0][1]);
}

function securityDocs(stack: TerraformJson): Record<string, any>[] {
  return initFiles(stack)
    .filter((f) => f.path.startsWith(`${SECURITY_ADDON_DIR}/`))
    .flatMap((f) => parseManifest(fileText(f)));
}

describe("the init node carries the security manifests", () => {
  test("three files, 0644, applied after every Calico manifest and in their own order: failsafe ports, policies, host endpoints last", () => {
    // What the documents say is checked by the port matrix run on these very files
    // (policies-matrix.test.ts, "as synthesized"), not by comparing them with the renderer.
    const expected = [
      "/etc/kubernetes/addons/security/40-felix-failsafe-ports.yaml",
      "/etc/kubernetes/addons/security/41-host-policies.yaml",
      "/etc/kubernetes/addons/security/42-auto-host-endpoints.yaml",
    ];
    for (const stack of [closed, open]) {
      const files = initFiles(stack).filter((f) => f.path.startsWith(`${SECURITY_ADDON_DIR}/`));
      expect(files.map((f) => [f.path, f.mode])).toEqual(expected.map((p) => [p, 0o644]));
      expect(files.map((f) => parseManifest(fileText(f)).map((d) => d.kind))).toEqual([
        ["FelixConfiguration"],
        ["GlobalNetworkPolicy", "GlobalNetworkPolicy", "GlobalNetworkPolicy", "GlobalNetworkPolicy", "GlobalNetworkPolicy"],
        ["KubeControllersConfiguration"],
      ]);
      const list = initFiles(stack).find((f) => f.path === NODE_PATHS.addonList);
      const listed = fileText(list!).split("\n").filter((l) => l !== "");
      const firstSecurity = listed.findIndex((l) => l.startsWith(`${SECURITY_ADDON_DIR}/`));
      const lastCalico = listed.map((l) => l.startsWith(`${CALICO_ADDON_DIR}/`)).lastIndexOf(true);
      expect(lastCalico).toBeGreaterThanOrEqual(0);
      expect(firstSecurity).toBeGreaterThan(lastCalico);
      // Only cluster DNS's Corefile comes after them (lib/coredns.ts).
      expect(listed.slice(firstSecurity)).toEqual([...expected, "/etc/kubernetes/addons/dns/50-coredns-corefile.yaml"]);
    }
  });

  test("automatic host endpoints are on, for every interface of every node", () => {
    const [kcc] = securityDocs(closed).filter((d) => d.kind === "KubeControllersConfiguration");
    expect(kcc.spec.controllers.node.hostEndpoint).toEqual({ autoCreate: "Enabled", createDefaultHostEndpoint: "Enabled" });
  });

  test("no other node carries them: nodes added later need nothing", () => {
    for (const [hostname, device] of devices(open)) {
      if (!hostname.endsWith("-cp-1")) expect(filesOf(device).filter((f) => f.path.startsWith(`${SECURITY_ADDON_DIR}/`))).toEqual([]);
    }
  });

  test("they read the same whatever the node counts", () => {
    const more = onlyStack(synthesize({ WORKER_COUNT: "7", CONTROL_PLANE_COUNT: "5" }));
    expect(securityDocs(more)).toEqual(securityDocs(closed));
  });

  test("from the user data, they still close SSH by default and open it to ADMIN_ALLOWED_PREFIXES", () => {
    const worker: Endpoint = {
      name: "w",
      kind: "host",
      addresses: ["2001:db8:0:ab00::7"],
      labels: { "projectcalico.org/created-by": "calico-kube-controllers", "kubernetes.io/hostname": "v6fabric-worker-01" },
    };
    const ssh = { src: "2001:db8:aa::5", dst: "2001:db8:0:ab00::7", protocol: "TCP" as const, port: 22 };
    expect(new PolicyModel(securityDocs(closed), [worker]).arrive("w", ssh)).toBe("deny");
    expect(new PolicyModel(securityDocs(open), [worker]).arrive("w", ssh)).toBe("allow");
    expect(new PolicyModel(securityDocs(open), [worker]).arrive("w", { ...ssh, src: "2001:db8:ffff::1" })).toBe("deny");
  });
});

describe("the security manifests in the user data validate strictly", () => {
  test.each([
    ["defaults", closed],
    ["admin and API prefixes", open],
  ])("%s", (_label, stack) => {
    const docs = securityDocs(stack);
    expect(docs.map((d) => d.kind).sort()).toEqual([
      "FelixConfiguration",
      "GlobalNetworkPolicy",
      "GlobalNetworkPolicy",
      "GlobalNetworkPolicy",
      "GlobalNetworkPolicy",
      "GlobalNetworkPolicy",
      "KubeControllersConfiguration",
    ]);
    expect(docs.flatMap(calicoErrors)).toEqual([]);
  });
});

describe("bad prefixes stop synth", () => {
  const root = path.resolve(__dirname, "..");
  test("ADMIN_ALLOWED_PREFIXES=not-a-cidr and an IPv4 API_ALLOWED_PREFIXES: exit 1, both named, no stack trace", () => {
    const outdir = path.join(tempDir("policies-cli"), "cdktf.out");
    const result = spawnSync(process.execPath, [require.resolve("ts-node/dist/bin.js"), "--transpile-only", "main.ts"], {
      cwd: root,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", CDKTF_OUTDIR: outdir, ADMIN_ALLOWED_PREFIXES: "not-a-cidr", API_ALLOWED_PREFIXES: "192.0.2.0/24" },
      encoding: "utf8",
      timeout: 120_000,
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('ADMIN_ALLOWED_PREFIXES=not-a-cidr is not valid: "not-a-cidr" has no prefix length');
    expect(result.stderr).toContain('API_ALLOWED_PREFIXES=192.0.2.0/24 is not valid: "192.0.2.0/24" is not an IPv6 prefix');
    expect(result.stderr).toContain("use comma-separated IPv6 prefixes");
    expect(result.stderr).not.toMatch(/^\s+at /m);
  });

  test("a valid prefix list parses to the prefixes the policies use", () => {
    expect(loadSettings({ ADMIN_ALLOWED_PREFIXES: "2001:db8:aa::/48" }).adminAllowedPrefixes).toEqual([Ipv6Cidr.parse("2001:db8:aa::/48")]);
  });
});
