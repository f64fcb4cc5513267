/**
 * `npm run synth-diff -- <base> <head>`: the diff of the synthesized Terraform the
 * pull-request workflow publishes. Real synths for the WORKER_COUNT case; small
 * handmade trees for user data, secrets, truncation and trees that are not a synth.
 * Every directory a test makes is removed in afterAll.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { diffOutdirs, diffStacks, renderDiff } from "../scripts/synth-diff";
import { SynthesizedTreeError, TerraformJson } from "../scripts/synthesized";
import { Synthesized, synthesize } from "./support/synth";
import { writeSynthesizedTree } from "./support/synthesized-tree";

const root = path.resolve(__dirname, "..");

const scratch: string[] = [];
afterAll(() => {
  for (const dir of scratch) fs.rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "synth-diff-"));
  scratch.push(dir);
  return dir;
}

function synth(env: Record<string, string>): Synthesized {
  const s = synthesize(env);
  scratch.push(s.outdir);
  return s;
}

/** `stacks` as the cdktf.out of a complete synth (or, with `manifest: false`, of one that stopped early), removed in afterAll. */
function tree(stacks: Record<string, unknown>, options: { manifest: boolean } = { manifest: true }): string {
  const dir = writeSynthesizedTree(stacks, options);
  scratch.push(dir);
  return dir;
}

describe("raising WORKER_COUNT from 2 to 4", () => {
  const base = synth({ WORKER_COUNT: "2" });
  const head = synth({ WORKER_COUNT: "4" });
  const diff = diffOutdirs(base.outdir, head.outdir);
  const headDevices = Object.entries(Object.values(head.stacks)[0].resource!.metal_device);
  const baseDevices = Object.keys(Object.values(base.stacks)[0].resource!.metal_device);
  const newDevices = headDevices.filter(([id]) => !baseDevices.includes(id));

  test("shows exactly the two new devices and their BGP sessions as added", () => {
    expect(newDevices.map(([, d]) => d.hostname).sort()).toEqual(["v6fabric-worker-03", "v6fabric-worker-04"]);
    const added = diff.changes.filter((c) => c.action === "added");
    expect(added.filter((c) => c.type === "metal_device").map((c) => c.address).sort()).toEqual(newDevices.map(([id]) => `metal_device.${id}`).sort());
    expect(added.filter((c) => c.type === "metal_bgp_session")).toHaveLength(2);
    for (const c of added.filter((x) => x.type === "metal_device")) {
      expect(c.sections.find((s) => s.name === "attributes")!.after).toMatch(/"hostname": "v6fabric-worker-0[34]"/);
    }
  });

  test("removes and changes no device", () => {
    expect(diff.changes.filter((c) => c.type === "metal_device" && c.action !== "added")).toEqual([]);
    expect(diff.changes.filter((c) => c.action === "removed")).toEqual([]);
  });

  test("the added devices' user data is shown as Ignition files, not an escaped JSON string", () => {
    const device = diff.changes.find((c) => c.address === `metal_device.${newDevices[0][0]}`)!;
    const hostnameFile = device.sections.find((s) => s.name.startsWith("file /etc/hostname"));
    expect(hostnameFile?.after).toBe(`${newDevices[0][1].hostname}\n`);
    expect(device.sections.find((s) => s.name === "attributes")!.after).toContain('"user_data": "(Ignition: see the files and units below)"');
  });

  test("the Markdown names the added devices and the counts", () => {
    const markdown = renderDiff(diff);
    const added = diff.changes.filter((c) => c.action === "added").length;
    expect(markdown).toContain(`**${added} added, `);
    for (const [id] of newDevices) expect(markdown).toContain(`| v6fabric | \`metal_device.${id}\` | added |`);
    expect(markdown).not.toContain("⚠️ Removes");
  });

  test("changes no object in the cluster: nothing in-cluster names a node", () => {
    expect(diff.clusterObjects).toEqual([]);
    expect(renderDiff(diff)).not.toContain("In-cluster objects");
  });
});

describe("in-cluster objects a setting change modifies (issue #25)", () => {
  const runner = { CONFIG_STACK_RUNNER_PREFIX: "2001:db8:99:1::/64", API_ALLOWED_PREFIXES: "2001:db8:99::/48" };

  test("ADMIN_ALLOWED_PREFIXES: the host policy and Felix's failsafe ports change, and the report says a running cluster needs the configuration stack", () => {
    const diff = diffOutdirs(synth({}).outdir, synth({ ADMIN_ALLOWED_PREFIXES: "2001:db8:77::/48" }).outdir);
    expect(diff.clusterObjects.map((o) => [o.stack, o.object, o.action])).toEqual([
      ["v6fabric", "projectcalico.org/v3 FelixConfiguration default", "changed"],
      ["v6fabric", "projectcalico.org/v3 GlobalNetworkPolicy v6fabric-host-ingress", "changed"],
    ]);
    const policy = diff.clusterObjects[1];
    expect(policy.after).toContain("2001:db8:77::/48");
    expect(policy.before).not.toContain("2001:db8:77::/48");
    const markdown = renderDiff(diff);
    expect(markdown).toContain("| v6fabric | `projectcalico.org/v3 GlobalNetworkPolicy v6fabric-host-ingress` | changed |");
    expect(markdown).toContain("only a new cluster gets them");
    expect(markdown).toMatch(/<details><summary>changed in the cluster <code>v6fabric: projectcalico.org\/v3 GlobalNetworkPolicy v6fabric-host-ingress<\/code><\/summary>[\s\S]*\n\+.*"2001:db8:77::\/48"/);
  });

  test("LOCAL_SERVICE_ROUTES 4 -> 0 with the configuration stack: the Local pool is removed, and the next deploy applies it", () => {
    const diff = diffOutdirs(synth(runner).outdir, synth({ ...runner, LOCAL_SERVICE_ROUTES: "0" }).outdir);
    expect(diff.clusterObjects.filter((o) => o.action === "removed").map((o) => o.object)).toEqual(["projectcalico.org/v3 IPPool local-services-ipv6"]);
    expect(diff.configStack).toBe(true);
    expect(renderDiff(diff)).toContain("The configuration stack applies them to the running cluster");
  });
});

describe("user data, secrets and outputs (handmade trees)", () => {
  const dataUrl = (text: string) => `data:;base64,${Buffer.from(text).toString("base64")}`;
  const key = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIHiddenKeyMaterial\n-----END EC PRIVATE KEY-----\n";
  const userData = (kubeletLine: string, unit: string) =>
    JSON.stringify({
      ignition: { version: "3.3.0" },
      storage: {
        files: [
          { path: "/etc/kubernetes/kubelet.yaml", mode: 0o644, contents: { source: dataUrl(`kind: KubeletConfiguration\n${kubeletLine}\nclusterDomain: cluster.local\n`) } },
          { path: "/etc/kubernetes/pki/ca.key", mode: 0o600, contents: { source: dataUrl(key) } },
          { path: "/etc/kubeadm/join.yaml", contents: { source: "data:,token%3A%20TOKEN_EXPRESSION" } },
        ],
      },
      systemd: { units: [{ name: "kubeadm.service", enabled: true, contents: unit }] },
    })
      // As cdktf writes them: the shell's ${HOME} escaped for Terraform, the token's expression raw (quotes and all).
      .replace(/\$\{HOME\}/g, "$$${HOME}")
      .replace("TOKEN_EXPRESSION", '${coalesce(var.kubeadm_bootstrap_token, join(".", [random_string.id.result]))}');
  const stack = (kubeletLine: string, unit: string, token: string) => ({
    resource: { metal_device: { cp: { "//": { metadata: { path: "x" } }, hostname: "t-cp-1", plan: "c3.small.x86", user_data: userData(kubeletLine, unit) } } },
    output: { admin_kubeconfig: { value: token, sensitive: true } },
    variable: { md5: { type: "string", sensitive: true, default: "shh-default" } },
  });
  const base = stack("maxPods: 110", "[Service]\nExecStart=/opt/bin/kubeadm init\nEnvironment=H=${HOME}\n", "${local.a}");
  const head = stack("maxPods: 250", "[Service]\nExecStart=/opt/bin/kubeadm init --v=5\nEnvironment=H=${HOME}\n", "${local.b}");
  const diff = diffStacks({ s: base as unknown as TerraformJson }, { s: head as unknown as TerraformJson });
  const markdown = renderDiff(diff);

  test("a changed file and unit in user data show as line diffs of those files", () => {
    const device = diff.changes.find((c) => c.address === "metal_device.cp")!;
    expect(device.action).toBe("changed");
    expect(device.sections.map((s) => s.name).sort()).toEqual(["file /etc/kubernetes/kubelet.yaml (mode 0644)", "unit kubeadm.service (enabled=true)"]);
    expect(markdown).toMatch(/^-maxPods: 110$/m);
    expect(markdown).toMatch(/^\+maxPods: 250$/m);
    expect(markdown).toMatch(/^\+ExecStart=\/opt\/bin\/kubeadm init --v=5$/m);
    // Escaped shell variables are shown as the node will see them, and the cdktf metadata is no change.
    expect(markdown).toContain(" Environment=H=${HOME}");
    expect(markdown).toContain("User data changes on 1 existing device(s)");
  });

  test("never prints a private key, a sensitive output or a sensitive variable default", () => {
    const everything = renderDiff(diffStacks({}, { s: head as unknown as TerraformJson }));
    for (const text of [markdown, everything]) {
      expect(text).not.toContain("HiddenKeyMaterial");
      expect(text).not.toContain("shh-default");
      expect(text).not.toContain("local.b");
    }
    expect(everything).toContain("(redacted)");
    expect(everything).toContain("${coalesce(var.kubeadm_bootstrap_token");
  });

  test("identical trees: no change; an explicit empty base: everything added, and said so; a removed device is called out", () => {
    expect(renderDiff(diffStacks({ s: base as unknown as TerraformJson }, { s: base as unknown as TerraformJson }))).toContain("No change to the synthesized Terraform.");
    const fromNothing = diffOutdirs(undefined, tree({ s: head }));
    expect(fromNothing.stacksAdded).toEqual(["s"]);
    expect(fromNothing.changes.map((c) => [c.address, c.action])).toEqual([
      ["metal_device.cp", "added"],
      ["output.admin_kubeconfig", "added"],
      ["variable.md5", "added"],
    ]);
    expect(renderDiff(fromNothing)).toContain("> ⚠️ The base did not synthesize: the head is compared against an empty base, so everything shows as added.");
    expect(renderDiff(diffOutdirs(tree({ s: base }), tree({ s: head })))).not.toContain("empty base");
    expect(renderDiff(diffStacks({ s: base as unknown as TerraformJson }, {}))).toContain("⚠️ Removes 1 device(s): `metal_device.cp`");
  });

  test.each([
    ["a directory that does not exist (a typo)", () => path.join(tempDir(), "typo"), "no such directory"],
    ["an empty directory", () => tempDir(), "no manifest.json"],
    ["a synth that stopped before manifest.json (a failed validation)", () => tree({ s: head }, { manifest: false }), "no manifest.json"],
    ["a manifest.json whose stack file is missing", () => {
      const dir = tree({ s: head });
      fs.rmSync(path.join(dir, "stacks", "s", "cdk.tf.json"));
      return dir;
    }, "manifest.json lists stack s but"],
  ])("refuses %s on either side, naming the path and what it expected", (_label, makeDir, problem) => {
    const bad = makeDir();
    const good = tree({ s: head });
    for (const [b, h] of [[bad, good], [good, bad]]) {
      expect(() => diffOutdirs(b, h)).toThrow(SynthesizedTreeError);
      expect(() => diffOutdirs(b, h)).toThrow(`${bad}: ${problem}`);
      expect(() => diffOutdirs(b, h)).toThrow("Expected a cdktf.out directory from a complete synth: manifest.json (cdktf writes it last) and stacks/<name>/cdk.tf.json for each stack it lists");
    }
    expect(() => diffOutdirs(undefined, bad)).toThrow(SynthesizedTreeError);
  });

  test("a file marked gzip that is not gzip data shows as a note instead of stopping the diff", () => {
    const userData = JSON.stringify({ ignition: { version: "3.3.0" }, storage: { files: [{ path: "/etc/x.conf", contents: { source: "data:;base64,bm90IGd6aXA=", compression: "gzip" } }] } });
    const diff = diffStacks({}, { s: { resource: { metal_device: { x: { hostname: "x", user_data: userData } } } } });
    expect(diff.changes[0].sections.find((s) => s.name === "file /etc/x.conf")?.after).toBe("(marked gzip but not gzip data)");
  });

  test("a long diff is cut at whole resources, keeping code fences balanced", () => {
    const big = renderDiff(diffStacks({}, { s: head as unknown as TerraformJson }), { maxChars: 1200 });
    expect(big).toContain("Diff truncated");
    expect(big.length).toBeLessThan(1400);
    const fences = big.split("\n").filter((l) => /^`{3,}/.test(l));
    expect(fences.length % 2).toBe(0);
  });
});

test("`npm run synth-diff -- <base> <head>` prints the Markdown; wrong arguments print usage", () => {
  const a = tree({ s: { resource: { metal_device: { w: { hostname: "a" } } } } });
  const b = tree({ s: { resource: { metal_device: { w: { hostname: "a" }, x: { hostname: "b" } } } } });
  const result = spawnSync("npm", ["run", "--silent", "synth-diff", "--", a, b], { cwd: root, encoding: "utf8", timeout: 120_000 });
  expect(result.status).toBe(0);
  expect(result.stdout).toContain("| s | `metal_device.x` | added |");
  const cut = spawnSync("npm", ["run", "--silent", "synth-diff", "--", a, b, "--max-chars", "250"], { cwd: root, encoding: "utf8", timeout: 120_000 });
  expect(cut.status).toBe(0);
  expect(cut.stdout).toContain("Diff truncated");
  const usage = spawnSync("npm", ["run", "--silent", "synth-diff", "--", a], { cwd: root, encoding: "utf8", timeout: 120_000 });
  expect(usage.status).toBe(2);
  expect(usage.stderr).toContain("usage: npm run synth-diff");
});

test("`npm run synth-diff -- <base> <typo>` fails naming the path; `--empty-base <head>` is the explicit way to diff against nothing", () => {
  const a = tree({ s: { resource: { metal_device: { w: { hostname: "a" } } } } });
  const typo = path.join(path.dirname(a), "typo-that-does-not-exist");
  const missing = spawnSync("npm", ["run", "--silent", "synth-diff", "--", a, typo], { cwd: root, encoding: "utf8", timeout: 120_000 });
  expect(missing.status).toBe(1);
  expect(missing.stdout).toBe("");
  expect(missing.stderr).toContain(`synth-diff: ${typo}: no such directory. Expected a cdktf.out directory from a complete synth: manifest.json (cdktf writes it last) and stacks/<name>/cdk.tf.json`);
  const empty = spawnSync("npm", ["run", "--silent", "synth-diff", "--", "--empty-base", a], { cwd: root, encoding: "utf8", timeout: 120_000 });
  expect(empty.status).toBe(0);
  expect(empty.stdout).toContain("compared against an empty base");
  expect(empty.stdout).toContain("| s | `metal_device.w` | added |");
  const both = spawnSync("npm", ["run", "--silent", "synth-diff", "--", "--empty-base", a, a], { cwd: root, encoding: "utf8", timeout: 120_000 });
  expect(both.status).toBe(2);
  expect(both.stderr).toContain("npm run synth-diff -- --empty-base <head-outdir>");
});
