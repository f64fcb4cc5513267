/**
 * The Terraform rehearsal (rung L5): the pinned Terraform 1.5.7, the real tls provider
 * and the real equinix/metal 3.3.0, built by `npm run tools` (the metal provider from its
 * pinned source), init from the local mirror, validate, plan, apply against the Metal API
 * emulator, plan again and destroy what the app synthesizes. User data is read back from
 * what the provider sent Metal and checked with the real tools; nothing here uses the
 * project's own template scanner. `.ci/run` builds the tools, so CI always runs this
 * suite; a clone without the pinned sources skips it, saying what to put where.
 */
import { X509Certificate, createPublicKey, createPrivateKey } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import YAML from "yaml";
import { largestPerRole, reportedUserData } from "../rehearsal/metal";
import type { StackRehearsal } from "../rehearsal/rehearse";
import type { PlanJson } from "../rehearsal/terraform";
import { toolsPresent, toolsUnavailable } from "../rehearsal/tools";
import { IgnConfig, decodeDataUrl, files, hasCommand, ignitionValidate, installHint, unpackMerges } from "./support/ignition";
import { TerraformCases, VARIANTS, slug } from "./support/terraform-cases";
import {
  Applied,
  expectNewWorkersOutsideZone0Refused,
  expectNoSecretLeaks,
  expectNodesBootTerraformsDevices,
  expectOnlyProjectAndBlock,
  expectReportedSizesAreTerraforms,
  expectTwoMoreWorkers,
  leftInMetal,
  stateUserData,
} from "./support/terraform-rehearsal";

const present = toolsPresent(["terraform"]);
if (!present) console.warn(`SKIPPED Terraform rehearsal: the pinned terraform and providers are not built: ${toolsUnavailable(["terraform"]) ?? "run `npm run tools` (.ci/run does)"}`);
const describeRehearsal = present ? describe : describe.skip;
const hasIgnitionValidate = hasCommand("ignition-validate");
if (present && !hasIgnitionValidate) console.warn(`SKIPPED ignition-validate of applied user data: ${installHint(["ignition-validate"])}`);

// Every rehearsal started here has an emulator process, and an apply may still run beside the tests: all stopped whatever happens.
const cases = new TerraformCases();
afterAll(() => cases.close());

/**
 * The 3 + 97 apply waits mostly on the provider (10 s before its first look at a new
 * device, helpers_device.go waitForDeviceAttribute), ten devices at a time: it is planned
 * first and applied beside the other cases; its test, last, waits for it.
 */
let large: { rehearsal: StackRehearsal; started: number; before: number; finished: Promise<number> } | undefined;
beforeAll(() => {
  if (!present) return;
  const started = Date.now();
  const rehearsal = cases.rehearsalOf("large", { CONTROL_PLANE_COUNT: "3", WORKER_COUNT: "97" });
  rehearsal.init();
  rehearsal.validate();
  rehearsal.plan();
  const before = rehearsal.apiRequests();
  const finished = cases.startApply(rehearsal).then(() => Date.now());
  finished.catch(() => undefined); // its test reports a failure; until then it is no unhandled rejection
  large = { rehearsal, started, before, finished };
}, 300_000);

/** A device's user data with the boot config it merges folded in, as Ignition applies it. */
function unpacked(text: string): IgnConfig {
  return unpackMerges(JSON.parse(text) as IgnConfig);
}

/** Each device's user data as Metal received it from the provider. */
function userData(applied: Applied): Map<string, string> {
  return new Map(applied.rehearsal.devices().map((d) => [d.hostname, d.userData]));
}

/**
 * Metal's answer to "how big": the bytes of user data each device holds, by role, as the
 * emulator reports them (its request log). Issue #22 asks for at most 24 KiB per role,
 * constant in N, because large user data slows provisioning (Lokomotive saw 64 kB add
 * minutes to Packet deploys). Synth's own budget (USER_DATA_BUDGET_BYTES, 28 KiB) holds an
 * estimate that counts each PEM at about twice its size; this holds the real bytes.
 */
const APPLIED_USER_DATA_LIMIT_BYTES = 24 * 1024;
const appliedSizes = new Map<string, Map<string, number>>();
function recordSizes(name: string, rehearsal: StackRehearsal): Map<string, number> {
  const largest = largestPerRole(reportedUserData(rehearsal.metal, "v6fabric"));
  appliedSizes.set(name, largest);
  console.log(`rehearsal figure: ${name}, applied user data per role (largest, as the Metal API emulator reports it): ${[...largest].map(([role, bytes]) => `${role} ${(bytes / 1024).toFixed(1)} KiB (${bytes} bytes)`).join(", ")}; at most ${APPLIED_USER_DATA_LIMIT_BYTES} bytes each`);
  return largest;
}

function fileBytes(config: IgnConfig, filePath: string): Buffer {
  const found = files(config).filter((f) => f.path === filePath);
  expect(found).toHaveLength(1);
  return decodeDataUrl(found[0].contents!.source, found[0].contents!.compression);
}

describeRehearsal("Terraform rehearsal: the default cluster (1 control plane, 2 workers), applied by `npm run rehearse`", () => {
  let applied: Applied;
  let summary: string;
  beforeAll(() => {
    // Metal will put the two workers WORKER_COUNT=4 adds outside zone 0 (checked last).
    ({ stdout: summary, applied } = cases.rehearseKept("default", {}, { faults: { devicesOutsideZone0: ["v6fabric-worker-03", "v6fabric-worker-04"] } }));
    console.log(`rehearsal figure: default, the Metal API emulator served ${applied.requests} requests during apply`);
  }, 300_000);

  test("`npm run rehearse` sums up what it applied: the devices at Metal's addresses in CLUSTER_IPV6_BLOCK, their user data as the emulator reports it, within budget, and the requests served", () => {
    const notes = summary.split("\n").filter((line) => line.startsWith("note: v6fabric: "));
    const state = applied.rehearsal.metal.state();
    const sent = stateUserData(applied.rehearsal);
    // One line per device: the /127 Metal gave it, in the first /64 of 2001:db8:0:ab00::/56, and its user data's bytes.
    const deviceLines = notes.map((line) => /^note: v6fabric: (\S+) (2001:db8:0:ab00::[0-9a-f]+)\/127, user data (\d+) bytes$/.exec(line)).filter((m) => m !== null);
    expect(deviceLines.map((m) => m![1])).toEqual(["v6fabric-cp-1", "v6fabric-worker-01", "v6fabric-worker-02"]);
    for (const [, host, address, bytes] of deviceLines.map((m) => m!)) {
      const device = state.devices.find((d) => d.hostname === host)!;
      expect([host, address, Number(bytes)]).toEqual([host, device.addresses.find((a) => a.family === 6)!.address, Buffer.byteLength(sent.get(host)!)]);
    }
    const perRole = /^note: v6fabric: largest user data per role: first control plane (\d+) bytes \([\d.]+ KiB\), worker (\d+) bytes \([\d.]+ KiB\); the budget is 24576 bytes each: within$/m.exec(summary);
    expect(perRole).not.toBeNull();
    expect(Number(perRole![1])).toBe(Buffer.byteLength(sent.get("v6fabric-cp-1")!));
    expect(Number(perRole![2])).toBe(Math.max(...["v6fabric-worker-01", "v6fabric-worker-02"].map((h) => Buffer.byteLength(sent.get(h)!))));
    for (const bytes of [perRole![1], perRole![2]]) expect(Number(bytes)).toBeLessThanOrEqual(APPLIED_USER_DATA_LIMIT_BYTES);
    // Requests served during apply: at least the 3 device and 3 session creations, at most what the emulator logged in all.
    const api = applied.rehearsal.metal.requests().filter((r) => r.listener === "api");
    const creations = api.filter((r) => r.method === "POST" && /\/(devices|bgp\/sessions)$/.test(r.path) && r.status === 201);
    expect(creations).toHaveLength(6);
    expect(applied.requests).toBeGreaterThanOrEqual(6);
    expect(applied.requests).toBeLessThanOrEqual(api.length);
    // The stack's row: what was created, a second plan without changes, the state kept.
    const row = summary.split("\n").find((line) => line.startsWith("v6fabric "))!;
    const created = row.split(/\s{2,}/)[1].split(", ").sort();
    expect(created).toEqual(["3 metal_bgp_session", "3 metal_device", "3 tls_cert_request", "3 tls_locally_signed_cert", "3 tls_self_signed_cert", "7 tls_private_key"]);
    expect(row).toMatch(/no changes\s+kept$/);
    console.log(`rehearsal figure: default cluster, \`npm run rehearse\` (synth to second plan) done in ${(applied.milliseconds / 1000).toFixed(1)} s`);
  });

  test("the emulator reports each device's hostname and user data size, equal to the bytes of its user data in Terraform's state", () => {
    expectReportedSizesAreTerraforms(applied, 3);
  });

  test("each node the cluster rehearsal would boot gets, byte for byte, the user data Terraform sent for its device, from the rehearsal's sources and from the metadata service asked from the device's addresses, and exactly the addresses Terraform read from Metal", () => {
    expectNodesBootTerraformsDevices(applied, 3);
  });

  test("apply creates the 3 devices with a BGP session each, and exactly the cluster's trust material", () => {
    expect(applied.created).toEqual({
      metal_device: { create: 3 },
      metal_bgp_session: { create: 3 },
      tls_private_key: { create: 7 },
      tls_self_signed_cert: { create: 3 },
      tls_cert_request: { create: 3 },
      tls_locally_signed_cert: { create: 3 },
    });
    const state = applied.rehearsal.metal.state();
    expect(state.devices.map((d) => [d.hostname, d.metro, d.plan, d.operatingSystem, d.billingCycle, d.state]).sort()).toEqual([
      ["v6fabric-cp-1", "da", "c3.small.x86", "flatcar_stable", "hourly", "active"],
      ["v6fabric-worker-01", "da", "c3.small.x86", "flatcar_stable", "hourly", "active"],
      ["v6fabric-worker-02", "da", "c3.small.x86", "flatcar_stable", "hourly", "active"],
    ]);
    const ids = new Set(state.devices.map((d) => d.id));
    expect(state.bgpSessions.map((b) => b.addressFamily)).toEqual(["ipv6", "ipv6", "ipv6"]);
    expect(new Set(state.bgpSessions.map((b) => b.deviceId))).toEqual(ids);
  });

  test("every device's user data, as Metal holds it, is at most 24 KiB", () => {
    for (const [role, bytes] of recordSizes("default", applied.rehearsal)) expect([role, bytes <= APPLIED_USER_DATA_LIMIT_BYTES]).toEqual([role, true]);
  });

  test("every device's public IPv6 is a /127 in the first /64 of CLUSTER_IPV6_BLOCK, and the outputs are Metal's addresses", () => {
    const devices = applied.rehearsal.devices();
    for (const d of devices) {
      expect(d.publicIpv6.cidr).toBe(127);
      expect(d.publicIpv6.address.startsWith("2001:db8:0:ab00::")).toBe(true);
      expect(d.privateIpv4.cidr).toBe(31);
      expect(d.publicIpv4.cidr).toBe(31);
    }
    expect(new Set(devices.map((d) => d.publicIpv6.address)).size).toBe(3);
    const cp = devices.find((d) => d.hostname === "v6fabric-cp-1")!;
    expect(applied.outputs.control_plane_api_server_urls.value).toEqual([`https://[${cp.publicIpv6.address}]:443`]);
  });

  test("each device's user data, as Metal holds it, holds no template and is valid Ignition", () => {
    const byHost = userData(applied);
    expect([...byHost.keys()]).toEqual(["v6fabric-cp-1", "v6fabric-worker-01", "v6fabric-worker-02"]);
    for (const [host, text] of byHost) {
      expect(text).not.toContain("${");
      const config = unpacked(text);
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

    const cp = unpacked(userData(applied).get("v6fabric-cp-1")!);
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
    const worker = unpacked(userData(applied).get("v6fabric-worker-01")!);
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
      const config = unpacked(text);
      expect(files(config).some((f) => f.path === "/etc/kubernetes/bootstrap-token")).toBe(false);
      if (host === "v6fabric-cp-1") continue;
      const cert = new X509Certificate(fileBytes(config, "/etc/kubernetes/discovery/node.crt"));
      expect(cert.checkIssued(ca) && cert.verify(ca.publicKey)).toBe(true);
      expect(cert.subject.split("\n").sort()).toEqual([`CN=system:node:${host}`, "O=system:nodes"]);
      const key = createPrivateKey(fileBytes(config, "/etc/kubernetes/discovery/node.key"));
      expect(createPublicKey(key).export({ format: "der", type: "spki" }).equals(cert.publicKey.export({ format: "der", type: "spki" }))).toBe(true);
    }
  });

  test("no secret from the state appears in the plan output, a non-sensitive output, the emulator's log or `npm run rehearse`'s summary", () => {
    expectNoSecretLeaks(applied, 3, [summary]);
  });

  test("a second plan changes nothing", () => {
    expect(applied.rehearsal.changesPlanned()).toBe(false);
  });

  test("WORKER_COUNT=4 plans the two new devices, their BGP sessions and their join credentials, nothing else", () => {
    expectTwoMoreWorkers(applied, cases.stackOf("default-more", { WORKER_COUNT: "4" }), ["v6fabric-worker-03", "v6fabric-worker-04"]);
  });

  test("Metal puts the two new workers outside zone 0: their apply fails with the device's own message, and nothing peers from them", () => {
    expectNewWorkersOutsideZone0Refused(applied, ["v6fabric-worker-03", "v6fabric-worker-04"]);
  });

  test("destroy leaves Metal with only the project and its /56", () => {
    applied.rehearsal.destroy();
    expectOnlyProjectAndBlock(applied.rehearsal);
  });
});

describeRehearsal("Terraform rehearsal: 3 control planes and 5 workers, then 2 more workers", () => {
  let applied: Applied;
  beforeAll(() => {
    // Metal will put the two workers WORKER_COUNT=7 adds outside zone 0 (checked last).
    applied = cases.applyCase("ha", { CONTROL_PLANE_COUNT: "3", WORKER_COUNT: "5" }, { faults: { devicesOutsideZone0: ["v6fabric-worker-06", "v6fabric-worker-07"] } });
  }, 300_000);
  afterAll(() => applied?.rehearsal.destroy(), 120_000);

  test("a second plan changes nothing", () => {
    expect(applied.rehearsal.changesPlanned()).toBe(false);
  });

  test("every role's user data, as Metal holds it, is at most 24 KiB", () => {
    const sizes = recordSizes("3 + 5", applied.rehearsal);
    expect([...sizes.keys()].sort()).toEqual(["control plane", "first control plane", "worker"]);
    for (const [role, bytes] of sizes) expect([role, bytes <= APPLIED_USER_DATA_LIMIT_BYTES]).toEqual([role, true]);
  });

  test("every control plane carries the same CAs; the direct API URLs are the devices' addresses", () => {
    const byHost = userData(applied);
    expect(byHost.size).toBe(8);
    const caOf = (host: string) => new X509Certificate(fileBytes(unpacked(byHost.get(host)!), "/etc/kubernetes/pki/ca.crt")).fingerprint256;
    expect(new Set(["v6fabric-cp-1", "v6fabric-cp-2", "v6fabric-cp-3"].map(caOf)).size).toBe(1);
    // The direct URLs are the control planes' addresses as Metal gave them, in node order.
    const byName = new Map(applied.rehearsal.devices().map((d) => [d.hostname, d.publicIpv6.address]));
    expect(applied.outputs.control_plane_api_server_urls.value).toEqual(
      ["v6fabric-cp-1", "v6fabric-cp-2", "v6fabric-cp-3"].map((h) => `https://[${byName.get(h)}]:443`),
    );
    expect(applied.rehearsal.devices()).toHaveLength(8);
  });

  test("no secret from the state appears in the plan output, a non-sensitive output or the emulator's log", () => {
    expectNoSecretLeaks(applied, 8);
  });

  test("the emulator reports each device's hostname and user data size, equal to the bytes of its user data in Terraform's state", () => {
    expectReportedSizesAreTerraforms(applied, 8);
  });

  test("each node the cluster rehearsal would boot gets, byte for byte, the user data Terraform sent for its device, from the rehearsal's sources and from the metadata service asked from the device's addresses, and exactly the addresses Terraform read from Metal", () => {
    expectNodesBootTerraformsDevices(applied, 8);
  });

  test("WORKER_COUNT=7 plans the two new devices, their BGP sessions and their join credentials, nothing else", () => {
    expectTwoMoreWorkers(applied, cases.stackOf("ha-more", { CONTROL_PLANE_COUNT: "3", WORKER_COUNT: "7" }), ["v6fabric-worker-06", "v6fabric-worker-07"]);
  });

  test("Metal puts the two new workers outside zone 0: their apply fails with the device's own message, and nothing peers from them", () => {
    expectNewWorkersOutsideZone0Refused(applied, ["v6fabric-worker-06", "v6fabric-worker-07"]);
  });

  test("destroy leaves Metal with only the project and its /56", () => {
    applied.rehearsal.destroy();
    expectOnlyProjectAndBlock(applied.rehearsal);
  });
});

describeRehearsal("Terraform rehearsal: a Terraform Cloud stack", () => {
  test("the cloud backend is swapped for a local state file, and the stack applies against Metal; no secret leaks, the emulator reports Terraform's user data sizes, each node boots Terraform's user data with Metal's addresses, two more workers plan only theirs and fail outside zone 0, destroy leaves the project and its /56", () => {
    const cloud = { TF_CLOUD_ORGANIZATION: "acme", TF_WORKSPACE_PREFIX: "v6-" };
    const applied = cases.applyCase("cloud", cloud, { faults: { devicesOutsideZone0: ["v6fabric-worker-03", "v6fabric-worker-04"] } });
    try {
      expect(applied.rehearsal.root.replacedBackend).toBe("Terraform Cloud (organization acme)");
      expect(applied.rehearsal.root.root.terraform.backend).toEqual({ local: { path: "terraform.tfstate" } });
      expect(applied.rehearsal.root.root.terraform.cloud).toBeUndefined();
      expect(fs.existsSync(path.join(applied.rehearsal.dir, "terraform.tfstate"))).toBe(true);
      expect(applied.created.metal_device).toEqual({ create: 3 });
      expect(applied.rehearsal.changesPlanned()).toBe(false);
      expectNoSecretLeaks(applied, 3);
      expectReportedSizesAreTerraforms(applied, 3);
      expectNodesBootTerraformsDevices(applied, 3);
      expectTwoMoreWorkers(applied, cases.stackOf("cloud-more", { ...cloud, WORKER_COUNT: "4" }), ["v6fabric-worker-03", "v6fabric-worker-04"]);
      expect(applied.rehearsal.root.root.terraform.backend).toEqual({ local: { path: "terraform.tfstate" } });
      expectNewWorkersOutsideZone0Refused(applied, ["v6fabric-worker-03", "v6fabric-worker-04"]);
    } finally {
      applied.rehearsal.destroy();
    }
    expectOnlyProjectAndBlock(applied.rehearsal);
  }, 300_000);
});

describeRehearsal("Terraform rehearsal figures", () => {
  // Not destroyed: the emulator and its state go with the test's folder (destroy is
  // rehearsed on the smaller clusters); a destroy of 100 devices costs two more minutes.
  test("3 control planes + 97 workers apply (beside the other cases)", async () => {
    const { rehearsal, started, before } = large!;
    const finished = await large!.finished;
    expect(rehearsal.devices()).toHaveLength(100);
    // Constant in N: 92 more workers change no role's user data beyond a few bytes (hostnames, DER lengths).
    const sizes = recordSizes("3 + 97", rehearsal);
    const few = appliedSizes.get("3 + 5");
    for (const [role, bytes] of sizes) {
      expect([role, bytes <= APPLIED_USER_DATA_LIMIT_BYTES]).toEqual([role, true]);
      if (few) expect([role, Math.abs(bytes - few.get(role)!) <= 64]).toEqual([role, true]);
    }
    expect(rehearsal.metal.state().bgpSessions).toHaveLength(100);
    expect(new Set(rehearsal.devices().map((d) => d.publicIpv6.address)).size).toBe(100);
    rehearsal.close();
    console.log(`rehearsal figure: large, the Metal API emulator served ${rehearsal.apiRequests() - before} requests during apply`);
    console.log(`rehearsal figure: 3 + 97 nodes, synth to apply ${((finished - started) / 1000).toFixed(1)} s (its apply ran beside the other cases)`);
  }, 600_000);
});

describeRehearsal("Terraform rehearsal: the app's guards, read from the real Terraform output", () => {
  /** Init, then the first command that fails: its message, with Terraform's line breaks undone. */
  function failure(rehearsal: StackRehearsal, args: string[]): string {
    rehearsal.init();
    const result = rehearsal.terraform.run(args);
    expect(result.status).not.toBe(0);
    return (result.stderr + result.stdout).replace(/│/g, "").replace(/\s+/g, " ");
  }

  // A plan each. The zone-0 guard runs in each variant's own rehearsal above, on the two workers it adds.
  test.each(VARIANTS)("%s: a precreated block that is not CLUSTER_IPV6_BLOCK stops the plan, naming the setting, and creates nothing", (variant, settings) => {
    const rehearsal = cases.rehearsalOf(`other-block-${slug(variant)}`, settings, { faults: { reportedIpv6Blocks: { da: "2604:1380:4641:c900::/56" } } });
    const message = failure(rehearsal, ["plan", "-input=false", "-no-color"]);
    expect(message).toContain("CLUSTER_IPV6_BLOCK=2001:db8:0:ab00::/56 is not this project's public IPv6 block in metro da.");
    expect(rehearsal.metal.state().devices).toEqual([]);
  }, 300_000);
});

describeRehearsal("Terraform rehearsal: METAL_MANAGE_PROJECT_BGP=true on each variant", () => {
  const managed = new Map<string, { rehearsal: StackRehearsal; plan: PlanJson }>();
  // Planned one after the other, then applied side by side: each apply mostly waits on its emulator's devices.
  beforeAll(async () => {
    for (const [variant, settings] of VARIANTS) {
      const rehearsal = cases.rehearsalOf(`managed-bgp-${slug(variant)}`, { ...settings, METAL_MANAGE_PROJECT_BGP: "true", METAL_BGP_ASN: "65010" });
      expect(rehearsal.metal.state().projects[0].bgpConfig).toBeUndefined();
      rehearsal.init();
      managed.set(variant, { rehearsal, plan: rehearsal.plan().plan });
    }
    await Promise.all([...managed.values()].map(({ rehearsal }) => cases.startApply(rehearsal)));
  }, 300_000);

  test.each(VARIANTS)("%s: imports the project, enables local BGP before any session is created, and never plans the project's destruction", (variant, _settings, nodes) => {
    const { rehearsal, plan } = managed.get(variant)!;
    const project = (plan.resource_changes ?? []).find((rc) => rc.address === "metal_project.project") as { change: { actions: string[]; importing?: { id: string } } } | undefined;
    expect(project?.change.importing?.id).toBe("00000000-0000-0000-0000-000000000000");
    expect(project?.change.actions).toEqual(["update"]); // imported, then given its bgp_config: never created or replaced
    const state = rehearsal.metal.state();
    expect(state.projects[0].bgpConfig).toMatchObject({ asn: 65010, deploymentType: "local", status: "enabled" });
    expect(state.bgpSessions).toHaveLength(nodes);
    // Every session request came after the BGP config was set (the sessions depend on it).
    const requests = rehearsal.metal.requests();
    const enabled = requests.findIndex((r) => r.method === "POST" && /\/bgp-configs$/.test(r.path) && r.status < 300);
    const sessions = requests.map((r, i) => (r.method === "POST" && /\/bgp\/sessions$/.test(r.path) ? i : -1)).filter((i) => i >= 0);
    expect(enabled).toBeGreaterThanOrEqual(0);
    expect(sessions).toHaveLength(nodes);
    expect(Math.min(...sessions)).toBeGreaterThan(enabled);
    expect(rehearsal.changesPlanned()).toBe(false);
    const refused = rehearsal.terraform.run(["plan", "-destroy", "-input=false", "-no-color"]);
    expect(refused.status).toBe(1);
    expect((refused.stderr + refused.stdout).replace(/│/g, "").replace(/\s+/g, " ")).toContain("Instance cannot be destroyed");
  });

  test("the default cluster: destroy takes the project out of the state first (docs/bgp-fabric.md), and Metal keeps it with its BGP config", () => {
    const { rehearsal } = managed.get("the default cluster")!;
    rehearsal.destroy();
    expect(leftInMetal(rehearsal)).toEqual([]);
    expect(rehearsal.metal.state().projects.map((p) => [p.id, p.bgpConfig?.asn])).toEqual([["00000000-0000-0000-0000-000000000000", 65010]]);
  }, 120_000);
});
