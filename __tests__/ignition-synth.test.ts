/**
 * The user data of every device, as synthesized: after Terraform's references are
 * replaced with values of the right shape it is Ignition JSON that ignition-validate
 * accepts without a warning; the kubeadm and Calico YAML inside validates against the
 * reference schemas once the shipped boot script has filled in the node's addresses; its
 * size stays within budget and does not grow with the cluster.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { BootRole, NODE_PATHS, NODE_UNITS } from "../ignition";
import { BOOT_VALUES, SAMPLE_BOOT_VALUES } from "../lib/boot-values";
import { calicoErrors, parseManifest } from "./support/calico-validate";
import { decodeDataUrl, describeWithTools, fileText, files, IgnConfig, ignitionValidate, tempDir, unit, unpackMerges } from "./support/ignition";

import { onlyStack, resourcesOf, synthesize } from "./support/synth";
import { USER_DATA_BUDGET_BYTES, userDataSize } from "../lib/user-data-size";
import { resolveTerraformRefs } from "./support/terraform-refs";
import { parseYaml11Documents, validateKubeadmFile } from "./support/kubeadm-validate";

interface Device {
  hostname: string;
  role: BootRole;
  userData: string;
  /** The user data as Ignition reads it, after Terraform: a config that merges the gzip'd boot config. */
  packed: IgnConfig;
  /** The same with the merged config folded in: every file and unit the node gets. */
  config: IgnConfig;
  /** Size in bytes once Terraform has filled in the references (lib/user-data-size.ts estimate). */
  appliedBytes: number;
}

function roleOf(hostname: string): BootRole {
  if (/-cp-1$/.test(hostname)) return "init";
  if (/-cp-\d+$/.test(hostname)) return "control-plane";
  if (/-worker-\d+$/.test(hostname)) return "worker";
  throw new Error(`unexpected hostname ${hostname}`);
}

function devices(env: Record<string, string>): Device[] {
  return resourcesOf(onlyStack(synthesize(env)), "metal_device").map(([, body]) => {
    const userData = body.user_data as string;
    return {
      hostname: body.hostname,
      role: roleOf(body.hostname),
      userData,
      packed: JSON.parse(resolveTerraformRefs(userData).text) as IgnConfig,
      config: unpackMerges(JSON.parse(resolveTerraformRefs(userData).text) as IgnConfig),
      appliedBytes: userDataSize(userData).appliedBytes,
    };
  });
}

const SCENARIOS: [string, Record<string, string>][] = [
  ["default example", {}],
  ["CONTROL_PLANE_COUNT=3 WORKER_COUNT=5", { CONTROL_PLANE_COUNT: "3", WORKER_COUNT: "5" }],
];

const synthesized = new Map<string, Device[]>();
function scenario(name: string): Device[] {
  if (!synthesized.has(name)) synthesized.set(name, devices(SCENARIOS.find(([n]) => n === name)![1]));
  return synthesized.get(name)!;
}

/**
 * Runs the node's own render-boot-values on its template tree (as Ignition writes it
 * from the user data) with sample metadata; returns the rendered root.
 */
function renderOnNode(config: IgnConfig): string {
  const dir = tempDir("node");
  const templates = path.join(dir, "templates");
  for (const f of files(config).filter((f) => f.path.startsWith(`${NODE_PATHS.templateDir}/`))) {
    const target = path.join(templates, f.path.slice(NODE_PATHS.templateDir.length));
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, fileText(config, f.path), { mode: f.mode ?? 0o644 });
  }
  const script = path.join(dir, "render-boot-values");
  fs.writeFileSync(script, fileText(config, `${NODE_PATHS.scriptDir}/render-boot-values`), { mode: 0o755 });
  const metadata = path.join(dir, "flatcar");
  fs.writeFileSync(
    metadata,
    `COREOS_PACKET_IPV6_PUBLIC_0=${SAMPLE_BOOT_VALUES.nodeIpv6}\nCOREOS_PACKET_IPV6_PUBLIC_GATEWAY_0=2001:db8:0:ab00::2\nCOREOS_PACKET_IPV4_PRIVATE_0=${SAMPLE_BOOT_VALUES.nodePrivateIpv4}\n`,
  );
  const root = path.join(dir, "root");
  const result = spawnSync("bash", [script], {
    env: { PATH: process.env.PATH, V6FABRIC_METADATA_ENV: metadata, V6FABRIC_TEMPLATE_DIR: templates, V6FABRIC_TARGET_ROOT: root },
    encoding: "utf8",
  });
  if (result.status !== 0) throw new Error(`render-boot-values failed: ${result.stderr}`);
  return root;
}

describe.each(SCENARIOS.map(([name]) => name))("%s", (name) => {
  it("has one init node, the other control planes join, workers join", () => {
    const list = scenario(name);
    expect(list.filter((d) => d.role === "init")).toHaveLength(1);
    for (const d of list) {
      const dropin = unit(d.config, NODE_UNITS.kubeadm).dropins?.find((x) => x.name === "10-role.conf")?.contents;
      expect(dropin).toContain(`KUBEADM_COMMAND=${d.role === "init" ? "init" : "join"}`);
      expect(fileText(d.config, "/etc/hostname")).toBe(`${d.hostname}\n`);
    }
  });

  it("user data holds Terraform references for secrets, never their values", () => {
    for (const d of scenario(name)) {
      const refs = resolveTerraformRefs(d.userData).expressions;
      // Every node carries a private key: the CAs' on control planes, its own join key on the others.
      expect(refs.some((r) => /private_key_pem/.test(r))).toBe(true);
      expect(d.userData).not.toMatch(/PRIVATE KEY/);
      expect(d.userData).not.toMatch(/\b[a-z0-9]{6}\.[a-z0-9]{16}\b/);
    }
  });

  it("every remote source has a verification hash; every inline source decodes", () => {
    for (const d of scenario(name)) {
      for (const f of files(d.config)) {
        const source = f.contents?.source ?? "";
        if (source.startsWith("data:")) expect(() => decodeDataUrl(source, f.contents?.compression)).not.toThrow();
        else expect(f.contents?.verification?.hash).toMatch(/^sha(256|512)-[0-9a-f]{64,128}$/);
      }
    }
  });

  it("the kubeadm config takes node-ip and the advertise address from the metadata at boot", () => {
    for (const d of scenario(name)) {
      const template = fileText(d.config, `${NODE_PATHS.templateDir}${NODE_PATHS.kubeadmConfig}`);
      expect(template).toContain(BOOT_VALUES.nodeIpv6);
      const rendered = fs.readFileSync(path.join(renderOnNode(d.config), NODE_PATHS.kubeadmConfig), "utf8");
      expect(rendered).not.toContain(BOOT_VALUES.nodeIpv6);
      expect(rendered).toMatch(new RegExp(`name: node-ip\\n\\s+value: "?${SAMPLE_BOOT_VALUES.nodeIpv6}"?`));
    }
  });

  it("no bootstrap token anywhere: a joining node's credential is a client certificate for its own name, key 0600, whole files", () => {
    for (const d of scenario(name)) {
      const expressions = resolveTerraformRefs(d.userData).expressions;
      expect(expressions.filter((e) => /token|random_/.test(e))).toEqual([]);
      const own = files(d.config).filter((f) => /^\/etc\/kubernetes\/discovery\/node\./.test(f.path));
      if (d.role === "init") {
        expect(own).toEqual([]);
      } else {
        expect(own.map((f) => [f.path, f.mode, f.contents?.compression])).toEqual([
          ["/etc/kubernetes/discovery/node.crt", 0o644, "gzip"],
          ["/etc/kubernetes/discovery/node.key", 0o600, "gzip"],
        ]);
        // Made for this node alone: the resources are named after its hostname.
        const hostname = d.hostname.replace(/[^a-z0-9-]/g, "");
        expect(expressions).toContainEqual(expect.stringMatching(new RegExp(`^base64gzip\\(tls_locally_signed_cert\\.control-plane_${hostname}-join-cert_[0-9A-F]+\\.cert_pem\\)$`)));
        expect(expressions).toContainEqual(expect.stringMatching(new RegExp(`^base64gzip\\(tls_private_key\\.control-plane_${hostname}-join-key_[0-9A-F]+\\.private_key_pem\\)$`)));
      }
      const root = renderOnNode(d.config);
      expect(fs.statSync(path.join(root, NODE_PATHS.kubeadmConfig)).mode & 0o777).toBe(0o600);
      const docs = parseYaml11Documents(fs.readFileSync(path.join(root, NODE_PATHS.kubeadmConfig), "utf8")) as any[];
      const init = docs.find((x) => x.kind === "InitConfiguration");
      const join = docs.find((x) => x.kind === "JoinConfiguration");
      if (d.role === "init") {
        // kubeadm makes up this token itself; the init node deletes it right after init.
        expect(init.bootstrapTokens).toEqual([{ description: expect.any(String), ttl: "15m0s" }]);
        expect(join).toBeUndefined();
      } else {
        expect(join.discovery).toEqual({ file: { kubeConfigPath: "/etc/kubernetes/discovery/kubeconfig" } });
        expect(init).toBeUndefined();
      }
    }
  });

  it(`user data stays under the ${USER_DATA_BUDGET_BYTES / 1024} KiB budget per role`, () => {
    for (const d of scenario(name)) expect(d.appliedBytes).toBeLessThan(USER_DATA_BUDGET_BYTES);
  });

  it("nodes of one role differ only by their hostname", () => {
    const byRole = new Map<BootRole, Device[]>();
    for (const d of scenario(name)) byRole.set(d.role, [...(byRole.get(d.role) ?? []), d]);
    for (const list of byRole.values()) {
      const [first, ...rest] = list;
      for (const d of rest) {
        // Same user data once the hostname is taken out: the gzip'd boot config and its
        // inline files are compared decoded.
        const normalize = (x: Device) => {
          let text = x.userData;
          for (const merge of x.packed.ignition.config?.merge ?? []) {
            let inner = decodeDataUrl(merge.source, merge.compression).toString("utf8");
            for (const f of files(x.config)) {
              const source = f.contents?.source ?? "";
              if (source.startsWith("data:") && inner.includes(source)) inner = inner.split(source).join(`decoded:${JSON.stringify(fileText(x.config, f.path))}`);
            }
            text = text.split(merge.source).join(`merged:${inner}`);
          }
          for (const f of files(x.config)) {
            const source = f.contents?.source ?? "";
            if (source.startsWith("data:") && text.includes(source)) text = text.split(source).join(`decoded:${JSON.stringify(fileText(x.config, f.path))}`);
          }
          // Its join credential is its own (resources named after it, with their own hash suffix).
          return text.split(x.hostname).join("HOSTNAME").replace(/(HOSTNAME-join-(?:cert|key)_)[0-9A-F]+/g, "$1HASH");
        };
        expect(normalize(d)).toBe(normalize(first));
      }
    }
  });
});

/**
 * Every file and unit each role's Ignition writes, stated here rather than built from
 * ignition/parts.ts's NODE_PATHS: the paths are a contract with the boot scripts,
 * kubeadm and Flatcar (docs/flatcar-boot.md, docs/control-plane.md), and a changed path or
 * mode must fail a test, not follow the constant silently. "remote" marks a download.
 */
describe("the files and units of each role, literally (CONTROL_PLANE_COUNT=3 WORKER_COUNT=5)", () => {
  const base: [string, number][] = [
    ["/etc/hostname", 0o644],
    ["/opt/bin/kubeadm", 0o755],
    ["/opt/bin/kubelet", 0o755],
    ["/opt/bin/kubectl", 0o755],
    ["/etc/modules-load.d/v6fabric-kubernetes.conf", 0o644],
    ["/etc/sysctl.d/80-v6fabric-kubernetes.conf", 0o644],
    ["/etc/kubernetes/resolv.conf", 0o644],
    ["/etc/flatcar/update.conf", 0o644],
    ["/etc/v6fabric/README", 0o644],
    ["/opt/v6fabric/bin/render-boot-values", 0o755],
    ["/opt/v6fabric/bin/bgp-peer-routes", 0o755],
    ["/opt/v6fabric/bin/service-announcement", 0o755],
    ["/opt/v6fabric/bin/kubeadm-bootstrap", 0o755],
  ];
  const kubeadm: [string, number][] = [
    // A template with boot placeholders: 0600, like kubeadm's own files.
    ["/etc/v6fabric/templates/etc/kubernetes/kubeadm.yaml", 0o600],
  ];
  const pki: [string, number][] = [
    ["/etc/kubernetes/pki/ca.crt", 0o644],
    ["/etc/kubernetes/pki/ca.key", 0o600],
    ["/etc/kubernetes/pki/front-proxy-ca.crt", 0o644],
    ["/etc/kubernetes/pki/front-proxy-ca.key", 0o600],
    ["/etc/kubernetes/pki/etcd/ca.crt", 0o644],
    ["/etc/kubernetes/pki/etcd/ca.key", 0o600],
    ["/etc/kubernetes/pki/sa.key", 0o600],
    ["/etc/kubernetes/pki/sa.pub", 0o644],
  ];
  const discovery: [string, number][] = [
    ["/etc/kubernetes/discovery/ca.crt", 0o644],
    ["/etc/kubernetes/discovery/kubeconfig", 0o644],
    // The node's own join credential: a client certificate for its name, and its key.
    ["/etc/kubernetes/discovery/node.crt", 0o644],
    ["/etc/kubernetes/discovery/node.key", 0o600],
  ];
  // NAT64 on every node (docs/nat64.md): the pinned tayga package, its config, the
  // nftables ruleset and the script that unpacks and wires them.
  // The node-local API path (docs/control-plane.md): its script on every node.
  const apiPath: [string, number][] = [["/opt/v6fabric/bin/api-path", 0o755]];
  const nat64: [string, number][] = [
    ["/opt/v6fabric/tayga.deb", 0o644],
    ["/etc/v6fabric/tayga.conf", 0o644],
    ["/etc/v6fabric/nat64.nft", 0o644],
    ["/opt/v6fabric/bin/nat64", 0o755],
  ];
  const expectedFiles: Record<BootRole, [string, number][]> = {
    init: [
      ...base,
      ["/opt/v6fabric/bin/apply-addons", 0o755],
      ["/etc/v6fabric/addons.list", 0o644],
      ...kubeadm,
      ...pki,
      ["/etc/kubernetes/addons/calico/00-calico-v3-crds.yaml", 0o644],
      ["/etc/kubernetes/addons/calico/00-tigera-operator.yaml", 0o644],
      ["/etc/kubernetes/addons/calico/10-installation.yaml", 0o644],
      ["/etc/kubernetes/addons/calico/20-bgp.yaml", 0o644],
      ["/etc/kubernetes/addons/calico/25-local-service-admission.yaml", 0o644],
      ["/etc/kubernetes/addons/calico/30-ippools.yaml", 0o644],
      // Nodes may read the kubernetes EndpointSlice (the node-local API path learns control planes there).
      ["/etc/kubernetes/addons/api-path/05-node-endpointslice-reader.yaml", 0o644],
      ["/etc/kubernetes/addons/security/40-felix-failsafe-ports.yaml", 0o644],
      ["/etc/kubernetes/addons/security/41-host-policies.yaml", 0o644],
      ["/etc/kubernetes/addons/security/42-auto-host-endpoints.yaml", 0o644],
      // Cluster DNS's Corefile with dns64 (lib/coredns.ts).
      ["/etc/kubernetes/addons/dns/50-coredns-corefile.yaml", 0o644],
      ...apiPath,
      // Deletes the bootstrap token kubeadm init makes (no node joins with one).
      ["/etc/v6fabric/hooks/after-kubeadm", 0o755],
      ...nat64,
    ],
    "control-plane": [
      ...base,
      ...kubeadm,
      ...pki,
      ...discovery,
      // The control planes this node can reach before it joins: the first one (Terraform).
      ["/etc/v6fabric/api-servers", 0o644],
      ...apiPath,
      ...nat64,
    ],
    worker: [...base, ...kubeadm, ...discovery, ["/etc/v6fabric/api-servers", 0o644], ...apiPath, ...nat64],
  };
  const baseUnits = [
    "containerd.service enabled",
    "kubelet.service enabled",
    // Updates never reboot the whole cluster at once (README, "Updates").
    "locksmithd.service masked",
    "v6fabric-boot-values.service enabled",
    "v6fabric-bgp-peer-routes.service enabled",
    // Puts the peer routes back every minute.
    "v6fabric-bgp-peer-routes.timer enabled",
    // Withdraws the Service routes while kube-proxy does not work; only its timer starts the service.
    "v6fabric-service-announcement.service not enabled",
    "v6fabric-service-announcement.timer enabled",
    // Withdraw them again at every boot before the kubelet, and at shutdown before it stops.
    "v6fabric-withdraw-at-boot.service enabled",
    "v6fabric-withdraw-at-shutdown.service enabled",
    "v6fabric-kubeadm.service enabled",
  ];
  const expectedUnits: Record<BootRole, string[]> = {
    init: [...baseUnits, "v6fabric-addons.service enabled", "v6fabric-api-path.service enabled", "v6fabric-nat64.service enabled"],
    "control-plane": [...baseUnits, "v6fabric-api-path.service enabled", "v6fabric-nat64.service enabled"],
    worker: [...baseUnits, "v6fabric-api-path.service enabled", "v6fabric-nat64.service enabled"],
  };
  const applyTime = [...pki.map(([p]) => p), "/etc/kubernetes/discovery/ca.crt", "/etc/kubernetes/discovery/node.crt", "/etc/kubernetes/discovery/node.key", "/etc/v6fabric/api-servers"];
  const remote = ["/opt/bin/kubeadm", "/opt/bin/kubelet", "/opt/bin/kubectl", "/etc/kubernetes/addons/calico/00-calico-v3-crds.yaml", "/etc/kubernetes/addons/calico/00-tigera-operator.yaml", "/opt/v6fabric/tayga.deb"];

  it.each(["init", "control-plane", "worker"] as BootRole[])("%s", (role) => {
    for (const d of scenario("CONTROL_PLANE_COUNT=3 WORKER_COUNT=5").filter((x) => x.role === role)) {
      // Ignition merges the gzip'd boot config first, then the user data's own files:
      // those Terraform fills in at apply time (keys, certificates, addresses), in order.
      const own = expectedFiles[role].filter(([p]) => applyTime.includes(p));
      expect(files(d.packed).map((f) => [f.path, f.mode])).toEqual(own);
      const all = files(d.config).map((f): [string, number | undefined] => [f.path, f.mode]);
      expect(all.slice(all.length - own.length)).toEqual(own);
      // The boot config's order serves deflate (add-on manifests last: ignition/index.ts), not Ignition: its files compare as a set.
      const byPath = (a: [string, unknown], b: [string, unknown]) => a[0].localeCompare(b[0]);
      expect(all.slice(0, all.length - own.length).sort(byPath)).toEqual(expectedFiles[role].filter(([p]) => !applyTime.includes(p)).sort(byPath));
      expect(files(d.config).filter((f) => !f.contents?.source.startsWith("data:")).map((f) => f.path).sort()).toEqual(remote.filter((p) => expectedFiles[role].some(([q]) => q === p)).sort());
      expect((d.config.systemd?.units ?? []).map((u) => `${u.name} ${u.mask ? "masked" : u.enabled ? "enabled" : "not enabled"}`)).toEqual(expectedUnits[role]);
    }
  });

  it("the init node's boot config ends with the add-on manifests, in the order addons.list applies them (deflate's window: ignition/index.ts)", () => {
    for (const d of scenario("CONTROL_PLANE_COUNT=3 WORKER_COUNT=5").filter((x) => x.role === "init")) {
      const listed = fileText(d.config, "/etc/v6fabric/addons.list").split("\n").filter(Boolean);
      expect(listed.length).toBeGreaterThanOrEqual(10);
      const boot = files(d.config).slice(0, files(d.config).length - files(d.packed).length).map((f) => f.path);
      expect(boot.slice(-listed.length)).toEqual(listed);
    }
  });

  it("the kubelet's resolv.conf: public IPv6 resolvers only (Google, Cloudflare), Metal's are IPv4-only", () => {
    for (const d of scenario("default example")) {
      expect(fileText(d.config, "/etc/kubernetes/resolv.conf").split("\n").filter((l) => l.startsWith("nameserver "))).toEqual([
        "nameserver 2001:4860:4860::8888",
        "nameserver 2606:4700:4700::1111",
        "nameserver 2001:4860:4860::8844",
      ]);
    }
  });
});

describe("size does not grow with the number of nodes", () => {
  it("each role's user data has the same size (modulo hostname length) in both examples, but a worker's line per control plane", () => {
    const size = (d: Device) => d.appliedBytes - 2 * d.hostname.length;
    const sizes = (name: string) => {
      const out: Partial<Record<BootRole, number>> = {};
      for (const d of scenario(name)) out[d.role] = Math.max(out[d.role] ?? 0, size(d));
      return out;
    };
    const small = sizes("default example");
    const large = sizes("CONTROL_PLANE_COUNT=3 WORKER_COUNT=5");
    // The base64 of /etc/hostname can differ by a few bytes between hostname lengths.
    expect(Math.abs(large.init! - small.init!)).toBeLessThanOrEqual(8);
    // A worker names every control plane in its API servers file (docs/control-plane.md):
    // 3 instead of 1 here, each at most a 40-byte line, base64-encoded (4 bytes for every 3).
    const twoMoreLines = Math.ceil((3 * 40) / 3) * 4 - Math.ceil(40 / 3) * 4;
    expect(large.worker! - small.worker!).toBeGreaterThan(0);
    expect(large.worker! - small.worker!).toBeLessThanOrEqual(twoMoreLines + 8);
  });
});

describeWithTools(["ignition-validate"], "ignition-validate: no error and no warning on any device", () => {
  it.each(SCENARIOS.map(([name]) => name))("%s", (name) => {
    for (const d of scenario(name)) {
      // What Metal hands Ignition (it does not open merged configs) and the boot config it merges.
      const merged = (d.packed.ignition.config?.merge ?? []).map((m) => decodeDataUrl(m.source, m.compression).toString("utf8"));
      expect(merged).toHaveLength(1);
      for (const [what, json] of [["user data", JSON.stringify(d.packed)], ["merged boot config", merged[0]]]) {
        const result = ignitionValidate(json);
        expect({ host: d.hostname, what, output: result.output, status: result.status }).toEqual({ host: d.hostname, what, output: "", status: 0 });
      }
    }
  });
});

describe("inline kubeadm and Calico YAML validates against reference/schemas", () => {
  it.each(SCENARIOS.map(([name]) => name))("%s", (name) => {
    for (const d of scenario(name)) {
      const root = renderOnNode(d.config);
      const kinds = validateKubeadmFile(fs.readFileSync(path.join(root, NODE_PATHS.kubeadmConfig), "utf8")).map((doc) => doc.kind);
      expect(kinds).toContain(d.role === "init" ? "InitConfiguration" : "JoinConfiguration");
      // Every inline YAML file (templates as rendered on the node) with Calico kinds.
      for (const f of files(d.config)) {
        if (!/\.ya?ml$/.test(f.path) || !f.contents?.source.startsWith("data:")) continue;
        const onNode = f.path.startsWith(`${NODE_PATHS.templateDir}/`) ? f.path.slice(NODE_PATHS.templateDir.length) : f.path;
        const text = f.path.startsWith(`${NODE_PATHS.templateDir}/`) ? fs.readFileSync(path.join(root, onNode), "utf8") : fileText(d.config, f.path);
        for (const doc of parseManifest(text).filter((x) => x && /^(projectcalico\.org|crd\.projectcalico\.org|operator\.tigera\.io)\//.test(x.apiVersion))) {
          expect({ file: onNode, errors: calicoErrors(doc) }).toEqual({ file: onNode, errors: [] });
        }
      }
    }
  });
});
