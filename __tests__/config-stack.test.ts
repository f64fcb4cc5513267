/**
 * The configuration stack (constructs/cluster-config-stack.ts): synthesized with the
 * cluster stack, it keeps exactly the objects the init node's user data applies, with
 * first boot's field manager, reading the cluster stack's outputs from its state.
 * Expectations come from the artifacts: the init node's decoded Ignition (its add-on
 * list and files) and the apply script as shipped.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import YAML from "yaml";
import { ADDON_FIELD_MANAGER, IMMUTABLE_FIELDS } from "../lib/cluster-config";
import { SettingsError, loadSettings } from "../lib/settings";
import { clusterOutputsState, configStackRoot, isConfigStack } from "../rehearsal/config-stack";
import { devicesOf } from "../scripts/synthesized";
import { referencePath } from "./support/reference";
import { TerraformJson, resourcesOf, synthesize } from "./support/synth";

const RUNNER = { CONFIG_STACK_RUNNER_PREFIX: "2001:db8:99:1::/64", API_ALLOWED_PREFIXES: "2001:db8:99::/48" };
const ADDON_LIST = "/etc/v6fabric/addons.list";

type Doc = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } };
const identity = (d: Doc) => `${d.apiVersion} ${d.kind} ${d.metadata.namespace ?? ""}/${d.metadata.name}`;

/** The documents the init node applies at first boot, in its order: its add-on list, each inline file's YAML. */
function firstBootDocuments(stacks: Record<string, TerraformJson>): { docs: Doc[]; listed: string[] } {
  const decoded = devicesOf(stacks as never).flatMap((d) => (d.userData && "ignition" in d.userData ? [d.userData.ignition] : []));
  const init = decoded.filter((ignition) => ignition.files.some((f) => f.path === ADDON_LIST));
  expect(init).toHaveLength(1);
  const files = init[0].files;
  const listed = files.find((f) => f.path === ADDON_LIST)!.text!.split("\n").filter(Boolean);
  const docs: Doc[] = [];
  for (const p of listed) {
    const text = files.find((f) => f.path === p)?.text;
    // Downloaded files (Calico's CRDs and operator) have no inline text: first boot's alone.
    if (text === undefined) continue;
    for (const doc of YAML.parseAllDocuments(text, { version: "1.1" })) docs.push(doc.toJS());
  }
  return { docs, listed };
}

function manifestsOf(stack: TerraformJson): [string, Record<string, any>][] {
  return resourcesOf(stack, "kubernetes_manifest");
}

describe("without CONFIG_STACK_RUNNER_PREFIX", () => {
  test("the app has the cluster stack only, and no kubernetes provider anywhere", () => {
    const synth = synthesize({});
    expect(Object.keys(synth.stacks)).toEqual(["v6fabric"]);
    expect(synth.raw.v6fabric).not.toContain("kubernetes_manifest");
  });
});

describe("with CONFIG_STACK_RUNNER_PREFIX", () => {
  const synth = synthesize(RUNNER);
  const config = synth.stacks["v6fabric-config"];

  test("a second stack <cluster>-config, which cdktf deploys after the cluster stack", () => {
    expect(Object.keys(synth.stacks).sort()).toEqual(["v6fabric", "v6fabric-config"]);
    const manifest = JSON.parse(fs.readFileSync(path.join(synth.outdir, "manifest.json"), "utf8"));
    expect(manifest.stacks["v6fabric-config"].dependencies).toEqual(["v6fabric"]);
    expect(manifest.stacks.v6fabric.dependencies).toEqual([]);
  });

  test("its objects are exactly the documents first boot applies from inline files", () => {
    // cdk.tf.json lists resources by name; the order is in depends_on (next test).
    const byIdentity = (docs: Doc[]) => [...docs].sort((a, b) => identity(a).localeCompare(identity(b)));
    const { docs } = firstBootDocuments(synth.stacks);
    const kept = manifestsOf(config).map(([, m]) => m.manifest as Doc);
    expect(byIdentity(kept).map(identity)).toEqual(byIdentity(docs).map(identity));
    expect(byIdentity(kept)).toEqual(byIdentity(docs));
    // The settings' objects are all there (issue #25): BGP, pools, IPAM, policies, host endpoints, DNS, admission.
    const kinds = new Set(kept.map((d) => d.kind));
    for (const kind of ["BGPConfiguration", "BGPPeer", "BGPFilter", "IPPool", "IPAMConfiguration", "GlobalNetworkPolicy", "KubeControllersConfiguration", "FelixConfiguration", "ConfigMap", "ValidatingAdmissionPolicy"]) {
      expect(kinds).toContain(kind);
    }
  });

  test("every object is applied with first boot's field manager, the one apply-addons.sh names, forcing conflicts as it does", () => {
    const script = fs.readFileSync(path.join(__dirname, "..", "ignition", "scripts", "apply-addons.sh"), "utf8");
    const apply = /kubectl"? --kubeconfig "\$kubeconfig" apply (.*) -f "\$1"/.exec(script);
    expect(apply).not.toBeNull();
    const flags = apply![1].split(" ");
    expect(flags).toEqual(expect.arrayContaining(["--server-side", "--force-conflicts", `--field-manager=${ADDON_FIELD_MANAGER}`]));
    const manifests = manifestsOf(config);
    expect(manifests.length).toBeGreaterThan(10);
    for (const [, m] of manifests) expect(m.field_manager).toEqual({ name: ADDON_FIELD_MANAGER, force_conflicts: true });
  });

  test("the provider reaches the API with the cluster stack's outputs, read from that stack's own state file", () => {
    const [provider] = config.provider!.kubernetes;
    const state = "data.terraform_remote_state.cluster.outputs";
    expect(provider.host).toBe(`\${${state}.api_server_url}`);
    expect(provider.cluster_ca_certificate).toBe(`\${${state}.cluster_ca_certificate}`);
    expect(provider.client_certificate).toContain(`yamldecode(${state}.admin_kubeconfig)`);
    expect(provider.client_certificate).toContain('"client-certificate-data"');
    expect(provider.client_key).toContain('"client-key-data"');
    // Terraform runs each stack in its own folder: the path must land on the cluster stack's file.
    const remote = (config.data as any).terraform_remote_state.cluster;
    const stacks = path.join(synth.outdir, "stacks");
    const clusterState = (synth.stacks.v6fabric.terraform as any).backend.local.path;
    expect(path.resolve(stacks, "v6fabric-config", remote.config.path)).toBe(path.resolve(stacks, "v6fabric", clusterState));
    // Those outputs exist in the cluster stack.
    for (const name of ["api_server_url", "cluster_ca_certificate", "admin_kubeconfig"]) expect(synth.stacks.v6fabric.output).toHaveProperty(name);
  });

  test("with CONFIG_STACK_ADOPT (the default) each object has an import block with the provider's ID; false has none", () => {
    const imports = (config as any).import as { to: string; id: string }[];
    const manifests = manifestsOf(config);
    expect(imports.map((i) => i.to).sort()).toEqual(manifests.map(([id]) => `kubernetes_manifest.${id}`).sort());
    for (const [id, m] of manifests) {
      const doc = m.manifest as Doc;
      const namespace = doc.metadata.namespace ? `namespace=${doc.metadata.namespace},` : "";
      expect(imports.find((i) => i.to === `kubernetes_manifest.${id}`)!.id).toBe(`apiVersion=${doc.apiVersion},kind=${doc.kind},${namespace}name=${doc.metadata.name}`);
    }
    const notAdopting = synthesize({ ...RUNNER, CONFIG_STACK_ADOPT: "false" }).stacks["v6fabric-config"];
    expect((notAdopting as any).import).toBeUndefined();
  });

  test("objects wait for the previous file's, as first boot's list orders them (BGP before pools)", () => {
    const byKind = (kind: string) => manifestsOf(config).filter(([, m]) => m.manifest.kind === kind);
    const [[bgpId]] = byKind("BGPConfiguration");
    const pools = byKind("IPPool");
    expect(pools.length).toBeGreaterThan(0);
    // Pools come two files after BGP (admission policies between): they depend on that file, which depends on BGP's.
    const chain = (id: string): string[] => {
      const deps: string[] = config.resource!.kubernetes_manifest[id].depends_on ?? [];
      return [...deps, ...deps.flatMap((d) => chain(d.replace("kubernetes_manifest.", "")))];
    };
    for (const [id] of pools) expect(chain(id)).toContain(`kubernetes_manifest.${bgpId}`);
  });

  test("a changed setting changes the kept object: ADMIN_ALLOWED_PREFIXES opens SSH in the host policy", () => {
    const sshSources = (stack: TerraformJson) => {
      const policy = manifestsOf(stack).map(([, m]) => m.manifest).find((d) => d.kind === "GlobalNetworkPolicy" && d.metadata.name.includes("host-ingress"));
      return (policy.spec.ingress as { source?: { nets?: string[] }; destination?: { ports?: number[] } }[]).filter((r) => r.destination?.ports?.includes(22)).flatMap((r) => r.source?.nets ?? []);
    };
    expect(sshSources(config)).toEqual([]);
    const opened = synthesize({ ...RUNNER, ADMIN_ALLOWED_PREFIXES: "2001:db8:77::/48" }).stacks["v6fabric-config"];
    expect(sshSources(opened)).toEqual(["2001:db8:77::/48"]);
  });

  test("adding it adds one resource to the cluster stack, the first-boot wait: no output, no device, no user data changes", () => {
    const without = synthesize({ API_ALLOWED_PREFIXES: RUNNER.API_ALLOWED_PREFIXES }).stacks.v6fabric;
    const withConfig = JSON.parse(synth.raw.v6fabric);
    expect(Object.keys(withConfig.resource.terraform_data ?? {})).toEqual([expect.stringMatching(/^first-boot-wait_addons_/)]);
    delete withConfig.resource.terraform_data;
    expect(withConfig).toEqual(JSON.parse(JSON.stringify(without)));
    // CONFIG_STACK_WAIT_MINUTES=0: no wait, the cluster stack byte for byte as without the configuration stack.
    expect(synthesize({ ...RUNNER, CONFIG_STACK_WAIT_MINUTES: "0" }).raw.v6fabric).toBe(synthesize({ API_ALLOWED_PREFIXES: RUNNER.API_ALLOWED_PREFIXES }).raw.v6fabric);
  });

  test("the first-boot wait runs after the init node, once per cluster CA, with the admin_kubeconfig output's credential, for every kept object", () => {
    const cluster = synth.stacks.v6fabric as any;
    const [, wait] = Object.entries<any>(cluster.resource.terraform_data)[0];
    const init = Object.entries<any>(cluster.resource.metal_device).find(([, d]) => d.hostname === "v6fabric-cp-1")!;
    expect(wait.depends_on).toEqual([`metal_device.${init[0]}`]);
    const exec = wait.provisioner[0]["local-exec"];
    expect(exec.interpreter).toEqual(["/bin/sh", "-c"]);
    // The same references the outputs carry: the CA, and the key the admin kubeconfig holds.
    expect(exec.environment.V6FABRIC_API_URL).toBe(cluster.output.api_server_url.value);
    expect(exec.environment.V6FABRIC_CA_PEM).toBe(cluster.output.cluster_ca_certificate.value);
    expect(wait.triggers_replace).toEqual({ cluster_ca: cluster.output.cluster_ca_certificate.value });
    const key = exec.environment.V6FABRIC_CLIENT_KEY_PEM as string;
    const cert = exec.environment.V6FABRIC_CLIENT_CERT_PEM as string;
    expect(key).toMatch(/^\$\{tls_private_key\.[^.]+\.private_key_pem\}$/);
    expect(cert).toMatch(/^\$\{tls_locally_signed_cert\.[^.]+\.cert_pem\}$/);
    expect(cluster.output.admin_kubeconfig.value).toContain(`base64encode(${key.slice(2, -1)})`);
    expect(cluster.output.admin_kubeconfig.value).toContain(`base64encode(${cert.slice(2, -1)})`);
    expect(exec.environment.V6FABRIC_WAIT_SECONDS).toBe("1800");
    // One request per kept object, each ending in its name (the rehearsal asks a real API server for each).
    const requested = [...(exec.command as string).matchAll(/'(\/apis?\/[^']+)'/g)].map((m) => m[1]);
    const kept = manifestsOf(config).map(([, m]) => m.manifest as Doc);
    expect(requested).toHaveLength(kept.length);
    for (const d of kept) expect(requested.filter((p) => p.endsWith(`/${d.metadata.name}`) && p.includes(d.apiVersion)).length).toBeGreaterThan(0);
    expect(synthesize({ ...RUNNER, CONFIG_STACK_WAIT_MINUTES: "5" }).raw.v6fabric).toContain('"V6FABRIC_WAIT_SECONDS": "300"');
  });

  test("an IPPool is replaced when its CIDR or block size changes: a terraform_data of those values triggers it", () => {
    for (const [id, m] of manifestsOf(config)) {
      const trigger = config.resource!.terraform_data?.[`${id}-immutable`];
      if (m.manifest.kind !== "IPPool") continue;
      expect(trigger.triggers_replace).toEqual({ "spec.cidr": JSON.stringify(m.manifest.spec.cidr), "spec.blockSize": JSON.stringify(m.manifest.spec.blockSize) });
      expect(m.lifecycle.replace_triggered_by).toEqual([`terraform_data.${id}-immutable`]);
      // Refused at plan while its blocks hold addresses (the rehearsal runs it); a stuck deletion ends in minutes.
      expect(m.lifecycle.precondition).toHaveLength(1);
      expect(m.lifecycle.precondition[0].condition).toContain(`data.kubernetes_resources.${id}-current.objects`);
      expect(m.lifecycle.precondition[0].condition).toContain("data.kubernetes_resources.ipam-blocks.objects");
      expect(m.timeouts).toEqual({ delete: "3m" });
      expect((config.data as any).kubernetes_resources[`${id}-current`]).toMatchObject({ api_version: "projectcalico.org/v3", kind: "IPPool", field_selector: `metadata.name=${m.manifest.metadata.name}` });
    }
    expect((config.data as any).kubernetes_resources["ipam-blocks"]).toMatchObject({ api_version: "projectcalico.org/v3", kind: "IPAMBlock" });
    // Every field the pinned CRDs of the kept kinds make immutable (`self == oldSelf`) is listed.
    const keptKinds = new Set(manifestsOf(config).map(([, m]) => `${m.manifest.apiVersion}/${m.manifest.kind}`));
    const immutable: string[] = [];
    for (const file of ["v3_projectcalico_org.yaml", "operator-crds.yaml"]) {
      for (const doc of YAML.parseAllDocuments(fs.readFileSync(referencePath("upstream", "calico-v3.32.1", file), "utf8"))) {
        const crd = doc.toJS();
        if (crd?.kind !== "CustomResourceDefinition") continue;
        for (const version of crd.spec.versions) {
          const kind = `${crd.spec.group}/${version.name}/${crd.spec.names.kind}`;
          if (!keptKinds.has(kind)) continue;
          const walk = (node: any, at: string[]): void => {
            if ((node["x-kubernetes-validations"] ?? []).some((r: { rule: string }) => r.rule === "self == oldSelf")) immutable.push(`${kind} ${at.join(".")}`);
            for (const [key, child] of Object.entries(node.properties ?? {})) walk(child, [...at, key]);
          };
          walk(version.schema.openAPIV3Schema, []);
        }
      }
    }
    expect(immutable.length).toBeGreaterThan(0);
    const listed = Object.entries(IMMUTABLE_FIELDS).flatMap(([kind, paths]) => paths.map((p) => `${kind} ${p.join(".")}`));
    expect(listed).toEqual(expect.arrayContaining(immutable));
  });

  test("nothing in it is Metal's: the same stack serves the Matchbox target", () => {
    expect(JSON.stringify(config)).not.toMatch(/"metal_|equinix/);
  });

  test("no key material in the stack: credentials come from state at plan time", () => {
    expect(synth.raw["v6fabric-config"]).not.toMatch(/PRIVATE KEY|BEGIN CERTIFICATE/);
  });
});

describe("with METAL_BGP_MD5_ENABLED=true", () => {
  const synth = synthesize({ ...RUNNER, METAL_BGP_MD5_ENABLED: "true" });
  const config = synth.stacks["v6fabric-config"];

  test("the Secret the BGPPeers name is kept, holding the base64 of the same TF_VAR_ the node's file is made from", () => {
    const kept = manifestsOf(config).map(([, m]) => m.manifest);
    const peers = kept.filter((d) => d.kind === "BGPPeer");
    expect(peers.length).toBeGreaterThan(0);
    for (const peer of peers) {
      const { name, key } = peer.spec.password.secretKeyRef;
      const secret = kept.find((d) => d.kind === "Secret" && d.metadata.name === name);
      expect(secret).toMatchObject({ apiVersion: "v1", metadata: { namespace: "calico-system" }, type: "Opaque" });
      expect(secret.data).toEqual({ [key]: "${base64encode(var.metal_bgp_md5_password)}" });
    }
    // calico-node may read it: the Role and RoleBinding of the same file are kept too.
    expect(kept.filter((d) => d.metadata.namespace === "calico-system").map((d) => d.kind).sort()).toEqual(["Role", "RoleBinding", "Secret"]);
    // The node's file ends with base64(password) too: base64 of the whole file is the prefix's and base64encode(base64encode(var)).
    const file = devicesOf(synth.stacks as never)
      .flatMap((d) => (d.userData && "ignition" in d.userData ? d.userData.ignition.files : []))
      .find((f) => f.path.endsWith("40-bgp-password.yaml"));
    expect(file?.expressions).toEqual(["base64encode(base64encode(var.metal_bgp_md5_password))"]);
  });

  test("the stack declares the same sensitive variable as the cluster stack, and never holds a value", () => {
    expect(config.variable).toEqual(synth.stacks.v6fabric.variable);
    expect(config.variable!.metal_bgp_md5_password.sensitive).toBe(true);
    expect(synth.raw["v6fabric-config"]).not.toMatch(/"password": "(?!\$\{base64encode\(var\.)/);
  });
});

describe("with NODE_TARGET=matchbox", () => {
  test("the same stack keeps the same objects as that target's init node, its BGPPeers the inventory's routers", () => {
    const inventory = path.join(__dirname, "..", "examples", "matchbox-inventory.json");
    // A runner inside the cluster's pod range: admitted without API_ALLOWED_PREFIXES.
    const synth = synthesize({ NODE_TARGET: "matchbox", MATCHBOX_INVENTORY: inventory, CONFIG_STACK_RUNNER_PREFIX: "2001:db8:0:ab10::5" });
    const kept = manifestsOf(synth.stacks["v6fabric-config"]).map(([, m]) => m.manifest as Doc);
    const { docs } = firstBootDocuments(synth.stacks);
    expect(kept.map(identity).sort()).toEqual(docs.map(identity).sort());
    const routers = new Set<string>(JSON.parse(fs.readFileSync(inventory, "utf8")).machines.flatMap((m: { neighbors: { address: string }[] }) => m.neighbors.map((n) => n.address)));
    const peers = kept.filter((d) => d.kind === "BGPPeer").map((d) => (d as unknown as { spec: { peerIP: string } }).spec.peerIP);
    expect(peers.sort()).toEqual([...routers].sort());
  });
});

describe("with Terraform Cloud", () => {
  test("the configuration stack has its own workspace and reads the cluster's", () => {
    const stacks = synthesize({ ...RUNNER, TF_CLOUD_ORGANIZATION: "acme", TF_WORKSPACE_PREFIX: "fabric-" }).stacks;
    expect((stacks["v6fabric-config"].terraform as any).cloud.workspaces.name).toBe("fabric-v6fabric-config");
    const remote = (stacks["v6fabric-config"].data as any).terraform_remote_state.cluster;
    expect(remote.backend).toBe("remote");
    expect(remote.config).toMatchObject({ organization: "acme", workspaces: { name: "fabric-v6fabric" } });
  });

  test("the cluster stack waits for first boot only when CONFIG_STACK_WAIT_MINUTES says so (hosted workers do not reach the API)", () => {
    const tfc = { ...RUNNER, TF_CLOUD_ORGANIZATION: "acme" };
    expect(synthesize(tfc).raw.v6fabric).not.toContain("V6FABRIC_WAIT_SECONDS");
    expect(synthesize({ ...tfc, CONFIG_STACK_WAIT_MINUTES: "45" }).raw.v6fabric).toContain('"V6FABRIC_WAIT_SECONDS": "2700"');
  });
});

describe("the stack as the rehearsal's Terraform runs it (rehearsal/config-stack.ts)", () => {
  const synth = synthesize({ ...RUNNER, TF_CLOUD_ORGANIZATION: "acme" });

  test("only the configuration stack is taken for one; `npm run rehearse` leaves it to a running cluster", () => {
    expect(isConfigStack(synth.stacks["v6fabric-config"])).toBe(true);
    expect(isConfigStack(synth.stacks.v6fabric)).toBe(false);
  });

  test("its state goes to a local file and the cluster's outputs come from the file given, whatever backend the synth named", () => {
    const root = configStackRoot(synth.stacks["v6fabric-config"], "rehearsal/cluster.tfstate");
    expect(root.terraform.cloud).toBeUndefined();
    expect(root.terraform.backend).toEqual({ local: { path: "terraform.tfstate" } });
    expect(root.data.terraform_remote_state.cluster).toEqual({ backend: "local", config: { path: path.resolve("rehearsal/cluster.tfstate") } });
    // The synthesized stack is left as it was.
    expect((synth.stacks["v6fabric-config"].terraform as any).cloud.organization).toBe("acme");
    expect(() => configStackRoot(synth.stacks.v6fabric, "x")).toThrow("no data.terraform_remote_state.cluster");
  });

  test("a state of outputs only: what Terraform's remote state reads, the sensitive one marked", () => {
    const state = JSON.parse(clusterOutputsState({ api_server_url: { value: "https://[::1]:6443" }, admin_kubeconfig: { value: "kubeconfig", sensitive: true } }));
    expect(state).toMatchObject({ version: 4, resources: [] });
    expect(state.outputs).toEqual({ api_server_url: { value: "https://[::1]:6443", type: "string" }, admin_kubeconfig: { value: "kubeconfig", type: "string", sensitive: true } });
  });
});

describe("CONFIG_STACK_RUNNER_PREFIX must be a source the API server admits", () => {
  const problem = (env: Record<string, string>) => {
    try {
      loadSettings(env);
      return undefined;
    } catch (err) {
      if (!(err instanceof SettingsError)) throw err;
      return err.problems.join("\n");
    }
  };

  test.each([
    ["inside an API_ALLOWED_PREFIXES entry", { CONFIG_STACK_RUNNER_PREFIX: "2001:db8:99:1::/64", API_ALLOWED_PREFIXES: "2001:db8:5::/48,2001:db8:99::/48" }],
    ["an address inside one", { CONFIG_STACK_RUNNER_PREFIX: "2001:db8:99::7", API_ALLOWED_PREFIXES: "2001:db8:99::/48" }],
    ["the whole allowed prefix", { CONFIG_STACK_RUNNER_PREFIX: "2001:db8:99::/48", API_ALLOWED_PREFIXES: "2001:db8:99::/48" }],
    ["a pod of the cluster (a runner inside it)", { CONFIG_STACK_RUNNER_PREFIX: "2001:db8:0:ab10::1234" }],
    ["a node of the cluster", { CONFIG_STACK_RUNNER_PREFIX: "2001:db8:0:ab00::11/128" }],
  ])("admitted: %s", (_label, env) => {
    expect(problem(env)).toBeUndefined();
  });

  test("not admitted: synth stops naming the setting, the value, the allowed sources and what to do", () => {
    expect(problem({ CONFIG_STACK_RUNNER_PREFIX: "2001:db8:98::/64", API_ALLOWED_PREFIXES: "2001:db8:99::/48" })).toBe(
      "CONFIG_STACK_RUNNER_PREFIX=2001:db8:98::/64 is not valid: no allowed source admits it (API_ALLOWED_PREFIXES=2001:db8:99::/48; " +
        "the cluster's pods are 2001:db8:0:ab10::/64, its nodes 2001:db8:0:ab00::/60), so the configuration stack's Terraform could not reach the API server; " +
        "add 2001:db8:98::/64 or a prefix containing it to API_ALLOWED_PREFIXES, or run the stack from inside the cluster (docs/operations.md, \"The configuration stack\")",
    );
  });

  test.each([
    ["a prefix wider than the allowed one", { CONFIG_STACK_RUNNER_PREFIX: "2001:db8:98::/47", API_ALLOWED_PREFIXES: "2001:db8:99::/48" }, "API_ALLOWED_PREFIXES=2001:db8:99::/48"],
    ["no allowed prefix at all", { CONFIG_STACK_RUNNER_PREFIX: "2001:db8:99::/64" }, "API_ALLOWED_PREFIXES is empty"],
    ["not an address", { CONFIG_STACK_RUNNER_PREFIX: "ci.example.org" }, 'CONFIG_STACK_RUNNER_PREFIX=ci.example.org is not valid: "ci.example.org" is not an IPv6 address'],
    ["two runners", { CONFIG_STACK_RUNNER_PREFIX: "2001:db8:99::/64,2001:db8:98::/64" }, "(one runner; a prefix can cover several)"],
    ["host bits set", { CONFIG_STACK_RUNNER_PREFIX: "2001:db8:99::1/64" }, "has host bits set"],
    ["an unknown adoption value", { CONFIG_STACK_ADOPT: "yes" }, "CONFIG_STACK_ADOPT=yes is not valid"],
    ["a wait with a unit", { CONFIG_STACK_WAIT_MINUTES: "30m" }, "CONFIG_STACK_WAIT_MINUTES=30m is not valid: must be auto or a whole number of minutes from 0 to 240"],
    ["a wait past four hours", { CONFIG_STACK_WAIT_MINUTES: "241" }, "CONFIG_STACK_WAIT_MINUTES=241 is not valid: must be a whole number from 0 to 240"],
  ])("refused: %s", (_label, env, message) => {
    expect(problem(env)).toContain(message);
  });
});
