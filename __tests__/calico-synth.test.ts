/**
 * The Calico fabric as a deploy would send it: read back from the synthesized init
 * node's user data (Terraform template -> Ignition JSON -> data URLs), validated
 * strictly, and compared across node counts.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { NODE_PATHS } from "../ignition";
import { CALICO_ADDON_DIR } from "../lib/calico";
import { CALICO } from "../lib/versions";
import { IgnitionFileOut, fileText, ignitionFiles, templateExpressions } from "./support/calico-userdata";
import { V3_CRDS_FILE, calicoErrors, parseManifest, v3Crds } from "./support/calico-validate";
import { describeWithTools, hasCommand, IgnConfig, installHint, ignitionValidate, offline, tempDir } from "./support/ignition";
import { referencePath } from "./support/reference";
import { resolveTerraformRefs } from "./support/terraform-refs";
import { TerraformJson, onlyStack, synthesize } from "./support/synth";

const SAMPLE_PASSWORD = 'p@ss "word"+/=';
const PASSWORD_EXPRESSION = "base64encode(base64encode(var.metal_bgp_md5_password))";

/** Stands in for Terraform: the password expression gets a sample value, anything else an inert token. */
function resolve(expression: string): string {
  if (expression === PASSWORD_EXPRESSION) return Buffer.from(Buffer.from(SAMPLE_PASSWORD).toString("base64")).toString("base64");
  // A bootstrap-token-shaped value: valid in JSON strings, data URLs and kubeadm configs.
  return "abcdef.0123456789abcdef";
}

function devices(stack: TerraformJson): [string, Record<string, any>][] {
  return Object.values(stack.resource?.metal_device ?? {}).map((d) => [d.hostname as string, d]);
}

function initDevice(stack: TerraformJson): Record<string, any> {
  const found = devices(stack).filter(([hostname]) => hostname.endsWith("-cp-1"));
  expect(found).toHaveLength(1);
  return found[0][1];
}

function calicoFiles(device: Record<string, any>): IgnitionFileOut[] {
  return ignitionFiles(device.user_data, resolve).filter((f) => f.path.startsWith(`${CALICO_ADDON_DIR}/`));
}

const plain = onlyStack(synthesize({}));
const withPassword = onlyStack(synthesize({ METAL_BGP_MD5_ENABLED: "true" }));

describe("the init node carries the Calico manifests and applies them in order", () => {
  const files = calicoFiles(initDevice(plain));

  test("the v3 CRDs, then the operator, as pinned downloads Ignition verifies; then the inline manifests", () => {
    expect(files.map((f) => f.path)).toEqual([
      `${CALICO_ADDON_DIR}/00-calico-v3-crds.yaml`,
      `${CALICO_ADDON_DIR}/00-tigera-operator.yaml`,
      `${CALICO_ADDON_DIR}/10-installation.yaml`,
      `${CALICO_ADDON_DIR}/20-bgp.yaml`,
      `${CALICO_ADDON_DIR}/25-local-service-admission.yaml`,
      `${CALICO_ADDON_DIR}/30-ippools.yaml`,
    ]);
    expect(files[0]).toMatchObject({ source: CALICO.v3Crds.url, hash: CALICO.v3Crds.hash });
    expect(files[1]).toMatchObject({ source: CALICO.operatorManifest.url, hash: CALICO.operatorManifest.hash });
    // Inline: percent-encoded text inside the gzip'd boot config (ignition/user-data.ts).
    for (const f of files.slice(2)) expect(f.source).toMatch(/^data:,apiVersion:%20/);
  });

  test("the add-on list names them in the same order", () => {
    const list = ignitionFiles(initDevice(plain).user_data, resolve).find((f) => f.path === NODE_PATHS.addonList);
    expect(list).toBeDefined();
    const listed = fileText(list!).split("\n").filter((l) => l.startsWith(`${CALICO_ADDON_DIR}/`));
    expect(listed).toEqual(files.map((f) => f.path));
  });

  test("no other node carries Calico manifests (new nodes need nothing)", () => {
    for (const [hostname, device] of devices(plain)) {
      if (!hostname.endsWith("-cp-1")) expect(calicoFiles(device)).toEqual([]);
    }
  });

  test("the pod pool equals the kubeadm podSubnet in the init node's kubeadm config", () => {
    const docs = ignitionFiles(initDevice(plain).user_data, resolve)
      .filter((f) => f.source.startsWith("data:"))
      .flatMap((f) => {
        try {
          return parseManifest(fileText(f));
        } catch {
          return [];
        }
      });
    const clusterConfigs = docs.filter((d) => d && d.kind === "ClusterConfiguration");
    expect(clusterConfigs).toHaveLength(1);
    const pools = files.slice(2).flatMap((f) => parseManifest(fileText(f))).filter((d) => d.kind === "IPPool");
    const podPool = pools.find((p) => p.spec.allowedUses.includes("Workload"))!;
    expect(podPool.spec.cidr).toBe(clusterConfigs[0].networking.podSubnet);
    expect(podPool.spec.cidr).toBe("2001:db8:0:ab10::/64");
    // And the FlexVolume dir is the kubelet's plugin dir (read from the same kubeadm config).
    const kubelet = docs.find((d) => d && d.kind === "KubeletConfiguration")!;
    const installation = files.slice(2).flatMap((f) => parseManifest(fileText(f))).find((d) => d.kind === "Installation")!;
    expect(installation.spec.flexVolumePath).toBe(kubelet.volumePluginDir);
  });
});

/**
 * The Calico documents the init node applies with the default settings, written out by
 * hand from docs/bgp-fabric.md and docs/facts.md (not computed by lib/calico.ts), and
 * compared whole: any field set to another valid value fails here although the schemas
 * still accept it. Comments say why a value is what it is. Calico's own objects are
 * `projectcalico.org/v3`, the API Calico supports for direct use (docs/bgp-fabric.md,
 * "API group").
 */
const INSTALLATION_YAML = `
apiVersion: operator.tigera.io/v1
kind: Installation
metadata:
  name: default
spec:
  variant: Calico
  cni:
    type: Calico
    ipam:
      type: Calico
  # Writable on Flatcar and the kubelet's volumePluginDir; ends in "/" because the
  # operator appends "nodeagent~uds".
  flexVolumePath: /var/lib/kubelet/volumeplugins/
  calicoNetwork:
    bgp: Enabled
    # kube-proxy runs in iptables mode to match.
    linuxDataplane: Iptables
    # The kubelet's node-ip, the public IPv6: the only address the routers accept a session from.
    nodeAddressAutodetectionV6:
      kubernetes: NodeInternalIP
    # Only for the BGP router ID: Metal's private management range. No IPv4 pool exists.
    nodeAddressAutodetectionV4:
      cidrs:
        - 10.0.0.0/8
    # The operator creates no pool; ours follow (30-ippools.yaml).
    ipPools: []
`;

const BGP_YAML = `
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata:
  name: default
spec:
  # The routers send nothing back: traffic between nodes goes up to them.
  nodeToNodeMeshEnabled: false
  # METAL_BGP_ASN's default: Metal's customer ASN for local BGP.
  asNumber: 65000
  # Zone 2, the whole /108 from every node (ECMP at the routers).
  serviceClusterIPs:
    - cidr: "2001:db8:0:ab20::/108"
  # Zone 3, external and LoadBalancer addresses: one range, one route.
  serviceExternalIPs:
    - cidr: "2001:db8:0:ab30::/112"
  serviceLoadBalancerIPs:
    - cidr: "2001:db8:0:ab30::/112"
  # Disabled would announce a /128 per Service from every node, far over max_prefix.
  serviceLoadBalancerAggregation: Enabled
---
apiVersion: projectcalico.org/v3
kind: BGPFilter
metadata:
  name: metal-export
spec:
  # First match decides; no match leaves the route to Calico (docs/bgp-fabric.md, the export table).
  exportV6:
    # Nothing longer than a /120 block from the pod range.
    - action: Reject
      matchOperator: In
      cidr: "2001:db8:0:ab10::/64"
      prefixLength:
        min: 121
        max: 128
    # Nothing longer than the /108 from the Service range.
    - action: Reject
      matchOperator: In
      cidr: "2001:db8:0:ab20::/108"
      prefixLength:
        min: 109
        max: 128
    # Local /128s only from the Local pool (zone 3's second /113, first 4 addresses)...
    - action: Accept
      matchOperator: In
      cidr: "2001:db8:0:ab30::8000/126"
      prefixLength:
        min: 128
        max: 128
    # ...and nothing else longer than the /112 from the external range.
    - action: Reject
      matchOperator: In
      cidr: "2001:db8:0:ab30::/112"
      prefixLength:
        min: 113
        max: 128
  importV6:
    - action: Reject
---
# One global peer per Metal router: every node, so nodes added later peer by themselves.
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata:
  name: metal-router-fc00-e
spec:
  nodeSelector: all()
  # The routers' IPv6 address on every server (docs/facts.md).
  peerIP: "fc00::e"
  # Metal's router ASN (docs/facts.md).
  asNumber: 65530
  # The routers accept the session only from the server's own address (customer_ip).
  sourceAddress: UseNodeIP
  filters:
    - metal-export
  # BIRD's graceful restart time: how long a router may keep a dead node's Service routes.
  maxRestartTime: 30s
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata:
  name: metal-router-fc00-f
spec:
  nodeSelector: all()
  peerIP: "fc00::f"
  asNumber: 65530
  sourceAddress: UseNodeIP
  filters:
    - metal-export
  maxRestartTime: 30s
`;

/** IPAM's caps, then the pools: flat routed, no NAT (docs/bgp-fabric.md, "IP pools" and "What holds at run time"). */
const IPPOOLS_YAML = `
# v3's IPAMConfiguration (crd.projectcalico.org/v1 called it IPAMConfig); Calico reads "default".
apiVersion: projectcalico.org/v3
kind: IPAMConfiguration
metadata:
  name: default
spec:
  # No borrowed addresses; at most 2 blocks of /120 per node (110 pods, 1 spare).
  strictAffinity: true
  autoAllocateBlocks: true
  maxBlocksPerHost: 2
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: pods-ipv6
spec:
  # Zone 1 = kubeadm's podSubnet.
  cidr: "2001:db8:0:ab10::/64"
  blockSize: 120
  ipipMode: Never
  vxlanMode: Never
  nodeSelector: all()
  allowedUses:
    - Workload
  assignmentMode: Automatic
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: loadbalancer-ipv6
spec:
  # Zone 3's first half: Calico's LoadBalancer IPAM assigns Cluster Services' addresses from it.
  cidr: "2001:db8:0:ab30::/113"
  blockSize: 120
  ipipMode: Never
  vxlanMode: Never
  nodeSelector: all()
  allowedUses:
    - LoadBalancer
  assignmentMode: Automatic
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: local-services-ipv6
spec:
  # LOCAL_SERVICE_ROUTES=4 addresses at the start of zone 3's second half; only on request.
  cidr: "2001:db8:0:ab30::8000/126"
  blockSize: 126
  ipipMode: Never
  vxlanMode: Never
  nodeSelector: all()
  allowedUses:
    - LoadBalancer
  assignmentMode: Manual
`;

describe("the Calico documents of the default settings, field by field", () => {
  const byPath = (stack: TerraformJson) => new Map(calicoFiles(initDevice(stack)).map((f) => [f.path, f]));
  const docs = (stack: TerraformJson, file: string) => parseManifest(fileText(byPath(stack).get(`/etc/kubernetes/addons/calico/${file}`)!));

  test.each([
    ["10-installation.yaml", INSTALLATION_YAML],
    ["20-bgp.yaml", BGP_YAML],
    ["30-ippools.yaml", IPPOOLS_YAML],
  ])("%s", (file, yaml) => {
    expect(docs(plain, file)).toEqual(parseManifest(yaml));
  });

  test("the operator manifest: Calico v3.32.1's own, from the Calico repository, SHA-512 pinned, mode 0644", () => {
    const operator = byPath(plain).get("/etc/kubernetes/addons/calico/00-tigera-operator.yaml")!;
    expect(operator).toMatchObject({ source: "https://raw.githubusercontent.com/projectcalico/calico/v3.32.1/manifests/tigera-operator.yaml", mode: 0o644 });
    expect(operator.hash).toMatch(/^sha512-[0-9a-f]{128}$/);
  });

  test("the native v3 CRDs: Calico v3.32.1's own file, SHA-512 pinned, serving every Calico kind the user data writes, and no crd.projectcalico.org kind", () => {
    const crds = byPath(plain).get("/etc/kubernetes/addons/calico/00-calico-v3-crds.yaml")!;
    expect(crds).toMatchObject({ source: "https://raw.githubusercontent.com/projectcalico/calico/v3.32.1/manifests/v3_projectcalico_org.yaml", mode: 0o644 });
    // The reference copy is the upstream file (reference/upstream/calico-v3.32.1/README.md); its hash is computed here.
    const copy = fs.readFileSync(V3_CRDS_FILE);
    expect(crds.hash).toBe(`sha512-${createHash("sha512").update(copy).digest("hex")}`);
    const served = new Set(v3Crds().map((c) => `${c.spec.names.kind}.${c.spec.group}`));
    expect(v3Crds().filter((c) => c.spec.group === "crd.projectcalico.org")).toEqual([]);
    const written = calicoFiles(initDevice(withPassword))
      .filter((f) => f.source.startsWith("data:"))
      .flatMap((f) => parseManifest(fileText(f)))
      .filter((d) => /projectcalico\.org|operator\.tigera\.io/.test(d.apiVersion));
    for (const d of written) expect(served).toContain(`${d.kind}.${d.apiVersion.split("/")[0]}`);
  });

  test("with METAL_BGP_MD5_ENABLED=true the peers read the password from metal-bgp-password/password; nothing else changes", () => {
    const peers = docs(withPassword, "20-bgp.yaml");
    const expected = parseManifest(BGP_YAML).map((d) =>
      d.kind === "BGPPeer" ? { ...d, spec: { ...d.spec, password: { secretKeyRef: { name: "metal-bgp-password", key: "password" } } } } : d,
    );
    expect(peers).toEqual(expected);
  });
});

describe("the synthesized Calico documents validate strictly", () => {
  test.each([
    ["default", plain],
    ["METAL_BGP_MD5_ENABLED=true", withPassword],
  ])("%s", (_label, stack) => {
    const docs = calicoFiles(initDevice(stack))
      .filter((f) => f.source.startsWith("data:"))
      .flatMap((f) => parseManifest(fileText(f)));
    const calico = docs.filter((d) => /projectcalico\.org|operator\.tigera\.io/.test(d.apiVersion));
    expect(calico.length).toBe(9);
    expect(new Set(calico.map((d) => d.apiVersion))).toEqual(new Set(["projectcalico.org/v3", "operator.tigera.io/v1"]));
    expect(calico.flatMap(calicoErrors)).toEqual([]);
  });
});

describe("peers cover nodes added by raising WORKER_COUNT", () => {
  test("WORKER_COUNT=2 and 4 give byte-identical Calico manifests", () => {
    const two = calicoFiles(initDevice(onlyStack(synthesize({ WORKER_COUNT: "2" }))));
    const four = calicoFiles(initDevice(onlyStack(synthesize({ WORKER_COUNT: "4" }))));
    expect(four).toEqual(two);
    const peers = two
      .filter((f) => f.source.startsWith("data:"))
      .flatMap((f) => parseManifest(fileText(f)))
      .filter((d) => d.kind === "BGPPeer");
    expect(peers).toHaveLength(2);
    for (const p of peers) {
      expect(p.spec.nodeSelector).toBe("all()");
      expect(p.spec.node).toBeUndefined();
    }
  });

  test("every node routes to exactly the peers the BGPPeers name, and the host policy lets BGP in from exactly those", () => {
    const docs = calicoFiles(initDevice(plain))
      .filter((f) => f.source.startsWith("data:"))
      .flatMap((f) => parseManifest(fileText(f)));
    const peerIPs = docs.filter((d) => d.kind === "BGPPeer").map((d) => d.spec.peerIP).sort();
    expect(peerIPs).toEqual(["fc00::e", "fc00::f"]);
    for (const [name, device] of devices(plain)) {
      const files = ignitionFiles(device.user_data, resolve);
      const routes = fileText(files.find((f) => f.path === `${NODE_PATHS.scriptDir}/bgp-peer-routes`)!);
      const configured = /^configured=\$\{V6FABRIC_BGP_PEERS:-(.*)\}$/m.exec(routes)?.[1];
      expect([name, configured?.split(" ").sort()]).toEqual([name, peerIPs]);
    }
  });

  test("synthesizing twice gives byte-identical output (with the password variable too)", () => {
    expect(synthesize({ METAL_BGP_MD5_ENABLED: "true" }).raw).toEqual(synthesize({ METAL_BGP_MD5_ENABLED: "true" }).raw);
  });
});

describe("the BGP password stays a Terraform reference", () => {
  test("a sensitive variable with no default; absent without METAL_BGP_MD5_ENABLED", () => {
    expect(plain.variable?.metal_bgp_md5_password).toBeUndefined();
    const variable = withPassword.variable?.metal_bgp_md5_password;
    expect(variable).toMatchObject({ type: "string", sensitive: true, nullable: false });
    expect(variable).not.toHaveProperty("default");
  });

  test("the init node's Secret manifest decodes to the password once Terraform fills it in", () => {
    const device = initDevice(withPassword);
    expect(templateExpressions(device.user_data)).toContain(PASSWORD_EXPRESSION);
    const secretFile = calicoFiles(device).find((f) => f.path.endsWith("40-bgp-password.yaml"));
    expect(secretFile).toMatchObject({ mode: 0o600 });
    const docs = parseManifest(fileText(secretFile!));
    const secret = docs.find((d) => d.kind === "Secret")!;
    expect(Buffer.from(secret.data.password, "base64").toString("utf8")).toBe(SAMPLE_PASSWORD);
    for (const p of calicoFiles(device)
      .filter((f) => f.path.endsWith("20-bgp.yaml"))
      .flatMap((f) => parseManifest(fileText(f)))
      .filter((d) => d.kind === "BGPPeer")) {
      expect(p.spec.password.secretKeyRef).toEqual({ name: secret.metadata.name, key: "password" });
    }
  });
});

describe("plan-time check of the project's BGP config", () => {
  const projects = Object.values(plain.data?.metal_project ?? {});

  test("local BGP, enabled, with METAL_BGP_ASN; password presence matches; max_prefix fits", () => {
    expect(projects).toHaveLength(1);
    const [asn, md5, maxPrefix] = projects[0].lifecycle.postcondition;
    expect(asn.condition).toContain('self.bgp_config[0].deployment_type, "") == "local"');
    expect(asn.condition).toContain('self.bgp_config[0].status, "") == "enabled"');
    expect(asn.condition).toContain("self.bgp_config[0].asn, 0) == 65000");
    expect(asn.error_message).toContain("METAL_BGP_ASN=65000");
    expect(md5.condition).toContain("== false");
    expect(md5.error_message).toContain("METAL_BGP_MD5_ENABLED=true");
    expect(maxPrefix.condition).toContain(">= 8");
    expect(maxPrefix.error_message).toContain("LOCAL_SERVICE_ROUTES=4");
    const other = Object.values(onlyStack(synthesize({ METAL_BGP_ASN: "64600" })).data?.metal_project ?? {});
    expect(other[0].lifecycle.postcondition[0].condition).toContain("self.bgp_config[0].asn, 0) == 64600");
  });
});

describeWithTools(["ignition-validate"], "the init node's Ignition with the password file is valid", () => {
  test("ignition-validate: no error, no warning (Terraform references replaced by values of their shape)", () => {
    const { text, expressions } = resolveTerraformRefs(initDevice(withPassword).user_data);
    expect(expressions).toContain(PASSWORD_EXPRESSION);
    expect(ignitionValidate(text)).toEqual({ status: 0, output: "" });
  });
});

describe("the real ignition binary writes the password manifest the node will apply", () => {
  const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
  const missing = ["ignition-validate", "jq", "systemd-analyze"].filter((t) => !hasCommand(t));
  if (!isRoot || missing.length > 0) {
    // eslint-disable-next-line no-console
    console.warn(`SKIPPED ignition-apply-check of the password file: ${!isRoot ? "not root (the real ignition binary chowns files; run the tests as root, as CI does)" : `missing ${missing.join(", ")}; ${installHint(missing)}`}`);
    test.skip("needs root and ignition, jq, systemd", () => undefined);
    return;
  }
  test("applies cleanly; the Secret on disk holds the password", () => {
    const userData = initDevice(withPassword).user_data.split(`\${${PASSWORD_EXPRESSION}}`).join(resolve(PASSWORD_EXPRESSION));
    const dir = tempDir("calico-apply");
    const config = path.join(dir, "init.ign");
    // Downloads inside the gzip'd boot config are blanked: the check runs offline.
    fs.writeFileSync(config, JSON.stringify(offline(JSON.parse(resolveTerraformRefs(userData).text) as IgnConfig)));
    // --workdir: the check's scratch dir goes inside ours, not into a fixed /tmp.
    const result = spawnSync("bash", [referencePath("tools", "ignition-apply-check.sh"), "--keep", `--workdir=${dir}`, config], { encoding: "utf8", timeout: 300_000 });
    const output = `${result.stdout}${result.stderr}`;
    const scratch = /scratch dir kept: (\S+)/.exec(output)?.[1];
    try {
      expect({ status: result.status, problems: output.split("\n").filter((l) => /PROBLEM|syntax error/.test(l)) }).toEqual({ status: 0, problems: [] });
      expect(scratch).toBeDefined();
      const written = fs.readFileSync(path.join(scratch!, "root", CALICO_ADDON_DIR, "40-bgp-password.yaml"), "utf8");
      const secret = parseManifest(written).find((d) => d.kind === "Secret")!;
      expect(Buffer.from(secret.data.password, "base64").toString("utf8")).toBe(SAMPLE_PASSWORD);
      expect(fs.statSync(path.join(scratch!, "root", CALICO_ADDON_DIR, "40-bgp-password.yaml")).mode & 0o777).toBe(0o600);
    } finally {
      if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
