/**
 * The Terraform rehearsal (rung L5, without Metal): the pinned Terraform 1.5.7 and the
 * real tls provider, built from its Go module by `npm run tools`,
 * init from the local mirror, validate, plan, apply, plan again and destroy what the
 * app synthesizes. User data is read back from the real Terraform state and checked
 * with the real tools; nothing here uses the project's own template scanner.
 *
 * The Metal resources are not applied: no equinix/metal provider can be built here
 * (docs/rehearsal.md). `.ci/run` builds the tools, so CI always runs this suite.
 */
import { X509Certificate, createPublicKey, createPrivateKey } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import YAML from "yaml";
import { StackRehearsal, readStack, synthesize } from "../rehearsal/rehearse";
import { plannedActions } from "../rehearsal/terraform";
import { toolsPresent } from "../rehearsal/tools";
import { IgnConfig, decodeDataUrl, files, hasCommand, ignitionValidate, installHint } from "./support/ignition";

const present = toolsPresent(["terraform"]);
if (!present) console.warn("SKIPPED Terraform rehearsal: the pinned terraform and providers are not built; run `npm run tools` (.ci/run does)");
const describeRehearsal = present ? describe : describe.skip;
const hasIgnitionValidate = hasCommand("ignition-validate");
if (present && !hasIgnitionValidate) console.warn(`SKIPPED ignition-validate of applied user data: ${installHint(["ignition-validate"])}`);

const work = fs.mkdtempSync(path.join(os.tmpdir(), "v6fabric-rehearsal-test-"));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

// Only what a deploy reads: the settings of each case, and TF_VAR_* (none here).
const BASE_ENV: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, CHECKPOINT_DISABLE: "1" };

interface Applied {
  rehearsal: StackRehearsal;
  outputs: Record<string, { value: unknown; sensitive: boolean }>;
  planText: string;
  created: Record<string, Record<string, number>>;
  milliseconds: number;
}

function applyCase(name: string, settings: Record<string, string>): Applied {
  const started = Date.now();
  const env = { ...BASE_ENV, ...settings };
  const outdir = path.join(work, name, "cdktf.out");
  const [stack] = synthesize(env, outdir);
  const rehearsal = new StackRehearsal(stack, readStack(outdir, stack), path.join(work, name, "tf"), env);
  rehearsal.init();
  rehearsal.validate();
  const { plan, text } = rehearsal.plan();
  rehearsal.apply();
  return { rehearsal, outputs: rehearsal.outputs(), planText: text, created: plannedActions(plan), milliseconds: Date.now() - started };
}

function userData(applied: Applied): Map<string, string> {
  const byHost = new Map<string, string>();
  for (const device of applied.rehearsal.root.devices) {
    const output = applied.outputs[device.userDataOutput];
    expect(output.sensitive).toBe(true);
    byHost.set(device.hostname, output.value as string);
  }
  return byHost;
}

function fileBytes(config: IgnConfig, filePath: string): Buffer {
  const found = files(config).filter((f) => f.path === filePath);
  expect(found).toHaveLength(1);
  return decodeDataUrl(found[0].contents!.source, found[0].contents!.compression);
}

/** The private keys' PEM bodies in the state: what must never show in plan output or plain outputs. */
function stateSecrets(rehearsal: StackRehearsal): string[] {
  const state = rehearsal.terraform.json<{ values?: { root_module?: { resources?: { type: string; values: Record<string, unknown> }[] } } }>(["show", "-json"]);
  const secrets: string[] = [];
  for (const r of state.values?.root_module?.resources ?? []) {
    if (r.type === "tls_private_key") secrets.push(String(r.values.private_key_pem).split("\n")[1]);
  }
  return secrets;
}

describeRehearsal("Terraform rehearsal: the default cluster (1 control plane, 2 workers)", () => {
  let applied: Applied;
  beforeAll(() => {
    applied = applyCase("default", {});
  }, 300_000);

  test("apply creates exactly the cluster's trust material: 3 CAs, service-account and admin keys, admin certificate, a join certificate per worker", () => {
    expect(applied.created).toEqual({
      tls_private_key: { create: 7 },
      tls_self_signed_cert: { create: 3 },
      tls_cert_request: { create: 3 },
      tls_locally_signed_cert: { create: 3 },
    });
    expect(applied.rehearsal.root.leftOut).toEqual(["3 metal_bgp_session", "3 metal_device", "1 data.metal_precreated_ip_block", "1 data.metal_project"]);
  });

  test("each device's user data from the state holds no template and is valid Ignition", () => {
    const byHost = userData(applied);
    expect([...byHost.keys()]).toEqual(["v6fabric-cp-1", "v6fabric-worker-01", "v6fabric-worker-02"]);
    for (const [host, text] of byHost) {
      expect(text).not.toContain("${");
      const config = JSON.parse(text) as IgnConfig;
      expect(config.ignition.version).toBe("3.3.0");
      expect(fileBytes(config, "/etc/hostname").toString()).toBe(`${host}\n`);
      if (hasIgnitionValidate) {
        const result = ignitionValidate(text);
        expect(result.output).toBe("");
        expect(result.status).toBe(0);
      }
    }
  });

  test("the certificates Terraform made chain as kubeadm expects, and the CA is the cluster_ca_certificate output", () => {
    const caPem = applied.outputs.cluster_ca_certificate.value as string;
    expect(applied.outputs.cluster_ca_certificate.sensitive).toBe(false);
    const ca = new X509Certificate(caPem);
    expect(ca.subject).toBe("CN=kubernetes");
    expect(ca.ca).toBe(true);
    expect(ca.verify(ca.publicKey)).toBe(true);

    const cp = JSON.parse(userData(applied).get("v6fabric-cp-1")!) as IgnConfig;
    // kubeadm's PKI layout: each CA with its own key, the etcd CA under etcd/.
    const pairs: [string, string, string][] = [
      ["/etc/kubernetes/pki/ca.crt", "/etc/kubernetes/pki/ca.key", "CN=kubernetes"],
      ["/etc/kubernetes/pki/front-proxy-ca.crt", "/etc/kubernetes/pki/front-proxy-ca.key", "CN=front-proxy-ca"],
      ["/etc/kubernetes/pki/etcd/ca.crt", "/etc/kubernetes/pki/etcd/ca.key", "CN=etcd-ca"],
    ];
    const fingerprints = new Set<string>();
    for (const [certPath, keyPath, subject] of pairs) {
      const cert = new X509Certificate(fileBytes(cp, certPath));
      expect(cert.subject).toBe(subject);
      expect(cert.ca).toBe(true);
      expect(cert.verify(cert.publicKey)).toBe(true);
      const publicOfKey = createPublicKey(createPrivateKey(fileBytes(cp, keyPath))).export({ format: "der", type: "spki" });
      expect(publicOfKey.equals(cert.publicKey.export({ format: "der", type: "spki" }))).toBe(true);
      fingerprints.add(cert.fingerprint256);
    }
    expect(fingerprints.size).toBe(3);
    expect(new X509Certificate(fileBytes(cp, "/etc/kubernetes/pki/ca.crt")).fingerprint256).toBe(ca.fingerprint256);
    const saPublic = createPublicKey(createPrivateKey(fileBytes(cp, "/etc/kubernetes/pki/sa.key"))).export({ format: "pem", type: "spki" });
    expect(fileBytes(cp, "/etc/kubernetes/pki/sa.pub").toString().trim()).toBe(String(saPublic).trim());

    // Workers verify the API server against the same CA, and get no CA key.
    const worker = JSON.parse(userData(applied).get("v6fabric-worker-01")!) as IgnConfig;
    expect(new X509Certificate(fileBytes(worker, "/etc/kubernetes/discovery/ca.crt")).fingerprint256).toBe(ca.fingerprint256);
    // The only key a worker gets is its own join key.
    expect(files(worker).map((f) => f.path).filter((p) => p.endsWith(".key"))).toEqual(["/etc/kubernetes/discovery/node.key"]);
  });

  test("admin_kubeconfig parses, and its client certificate is the cluster CA's, for kubeadm:cluster-admins", () => {
    expect(applied.outputs.admin_kubeconfig.sensitive).toBe(true);
    const kubeconfig = YAML.parse(applied.outputs.admin_kubeconfig.value as string);
    const ca = new X509Certificate(applied.outputs.cluster_ca_certificate.value as string);
    expect(kubeconfig.clusters[0].cluster.server).toBe("https://[2001:db8:0:ab20::1]:443");
    expect(Buffer.from(kubeconfig.clusters[0].cluster["certificate-authority-data"], "base64").toString()).toBe(ca.toString());
    const client = new X509Certificate(Buffer.from(kubeconfig.users[0].user["client-certificate-data"], "base64"));
    expect(client.verify(ca.publicKey)).toBe(true);
    expect(client.checkIssued(ca)).toBe(true);
    expect(client.subject.split("\n").sort()).toEqual(["CN=kubernetes-admin", "O=kubeadm:cluster-admins"]);
    const key = createPrivateKey(Buffer.from(kubeconfig.users[0].user["client-key-data"], "base64"));
    expect(createPublicKey(key).export({ format: "der", type: "spki" }).equals(client.publicKey.export({ format: "der", type: "spki" }))).toBe(true);
  });

  test("each joining node's user data holds a client certificate for its own node name, signed by the cluster CA, and the key to it; no token", () => {
    const ca = new X509Certificate(applied.outputs.cluster_ca_certificate.value as string);
    for (const [host, text] of userData(applied)) {
      const config = JSON.parse(text) as IgnConfig;
      expect(files(config).some((f) => f.path === "/etc/kubernetes/bootstrap-token")).toBe(false);
      if (host === "v6fabric-cp-1") continue;
      const cert = new X509Certificate(fileBytes(config, "/etc/kubernetes/discovery/node.crt"));
      expect(cert.checkIssued(ca) && cert.verify(ca.publicKey)).toBe(true);
      expect(cert.subject.split("\n").sort()).toEqual([`CN=system:node:${host}`, "O=system:nodes"]);
      const key = createPrivateKey(fileBytes(config, "/etc/kubernetes/discovery/node.key"));
      expect(createPublicKey(key).export({ format: "der", type: "spki" }).equals(cert.publicKey.export({ format: "der", type: "spki" }))).toBe(true);
    }
  });

  test("no secret from the state appears in the plan output or in a non-sensitive output", () => {
    const secrets = stateSecrets(applied.rehearsal);
    expect(secrets.length).toBe(7); // the CAs', service-account, admin and two workers' keys
    const plain = JSON.stringify(Object.values(applied.outputs).filter((o) => !o.sensitive));
    for (const secret of secrets) {
      expect(secret.length).toBeGreaterThan(15);
      expect(applied.planText).not.toContain(secret);
      expect(plain).not.toContain(secret);
    }
    expect(applied.planText).toContain("(sensitive value)");
  });

  test("a second plan changes nothing, and destroy leaves an empty state", () => {
    expect(applied.rehearsal.changesPlanned()).toBe(false);
    applied.rehearsal.destroy();
    expect(applied.rehearsal.stateResources()).toEqual([]);
    console.log(`rehearsal figure: default cluster, synth to apply ${(applied.milliseconds / 1000).toFixed(1)} s`);
  });
});

describeRehearsal("Terraform rehearsal: 3 control planes and 5 workers, then 2 more workers", () => {
  let applied: Applied;
  beforeAll(() => {
    applied = applyCase("ha", { CONTROL_PLANE_COUNT: "3", WORKER_COUNT: "5" });
  }, 300_000);
  afterAll(() => applied?.rehearsal.destroy(), 120_000);

  test("every control plane carries the same CAs; the direct API URLs are the devices' addresses", () => {
    const byHost = userData(applied);
    expect(byHost.size).toBe(8);
    const caOf = (host: string) => new X509Certificate(fileBytes(JSON.parse(byHost.get(host)!), "/etc/kubernetes/pki/ca.crt")).fingerprint256;
    expect(new Set(["v6fabric-cp-1", "v6fabric-cp-2", "v6fabric-cp-3"].map(caOf)).size).toBe(1);
    // The rehearsal gives devices the /127s Metal would: ::1, ::3, ::5 in the first /64.
    expect(applied.outputs.control_plane_api_server_urls.value).toEqual([
      "https://[2001:db8:0:ab00::1]:443",
      "https://[2001:db8:0:ab00::3]:443",
      "https://[2001:db8:0:ab00::5]:443",
    ]);
  });

  test("WORKER_COUNT=7 plans no change to the applied trust material: only the two new nodes' join credentials and user data", () => {
    const env = { ...BASE_ENV, CONTROL_PLANE_COUNT: "3", WORKER_COUNT: "7" };
    const outdir = path.join(work, "ha-more", "cdktf.out");
    const [stack] = synthesize(env, outdir);
    applied.rehearsal.write(readStack(outdir, stack));
    const { plan } = applied.rehearsal.plan("more-workers.tfplan");
    // A key, a request and a certificate for each new worker, nothing else created, changed or replaced.
    expect(plannedActions(plan)).toEqual({ tls_private_key: { create: 2 }, tls_cert_request: { create: 2 }, tls_locally_signed_cert: { create: 2 } });
    const created = (plan.resource_changes ?? []).filter((rc) => rc.change.actions.join() === "create").map((rc) => rc.address);
    expect(created.every((address) => /v6fabric-worker-0[67]-join-/.test(address))).toBe(true);
    const outputChanges = Object.entries(plan.output_changes ?? {}).filter(([, c]) => c.actions.join() !== "no-op");
    expect(outputChanges.map(([name, c]) => `${name}:${c.actions.join("+")}`).sort()).toEqual([
      "fabric_summary:update", // the worker count
      "rehearsal_user_data_v6fabric-worker-06:create",
      "rehearsal_user_data_v6fabric-worker-07:create",
    ]);
    expect(applied.rehearsal.root.leftOut).toContain("10 metal_device");
    expect(applied.rehearsal.root.leftOut).toContain("10 metal_bgp_session");
  });
});

describeRehearsal("Terraform rehearsal: a Terraform Cloud stack", () => {
  test("the cloud backend is swapped for a local state file, and the stack applies", () => {
    const applied = applyCase("cloud", { TF_CLOUD_ORGANIZATION: "acme", TF_WORKSPACE_PREFIX: "v6-" });
    try {
      expect(applied.rehearsal.root.replacedBackend).toBe("Terraform Cloud (organization acme)");
      expect(applied.rehearsal.root.root.terraform.backend).toEqual({ local: { path: "terraform.tfstate" } });
      expect(applied.rehearsal.root.root.terraform.cloud).toBeUndefined();
      expect(fs.existsSync(path.join(applied.rehearsal.dir, "terraform.tfstate"))).toBe(true);
      expect(applied.rehearsal.changesPlanned()).toBe(false);
    } finally {
      applied.rehearsal.destroy();
    }
  }, 300_000);
});

describeRehearsal("Terraform rehearsal figures", () => {
  test("3 control planes + 97 workers apply and destroy", () => {
    const applied = applyCase("large", { CONTROL_PLANE_COUNT: "3", WORKER_COUNT: "97" });
    try {
      expect(applied.rehearsal.root.devices).toHaveLength(100);
      expect(Object.keys(applied.outputs).filter((o) => o.startsWith("rehearsal_user_data_"))).toHaveLength(100);
    } finally {
      applied.rehearsal.destroy();
    }
    console.log(`rehearsal figure: 3 + 97 nodes, synth to apply ${(applied.milliseconds / 1000).toFixed(1)} s`);
  }, 600_000);
});
