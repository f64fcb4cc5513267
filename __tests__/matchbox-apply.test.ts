/**
 * A Matchbox machine's installed config applied with the real ignition binary to a
 * scratch root (reference/tools/ignition-apply-check.sh: the real ignition, systemd's
 * verify of units and drop-ins, systemd-networkd's parse of .network files), then the
 * node's own boot scripts, as written there, run with the environment the metadata
 * source's drop-in gives them: they render the kubeadm config with the inventory's
 * address and route to the inventory's neighbours. Needs root and the tools CI installs.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { hasCommand, IgnConfig, installHint, offline, tempDir } from "./support/ignition";
import { referencePath } from "./support/reference";
import { onlyStack, resourcesOf, synthesize } from "./support/synth";
import { resolveTerraformRefs } from "./support/terraform-refs";

const inventoryFile = path.join(__dirname, "fixtures", "matchbox-inventory-metal-peers.json");
const machines: { name: string; address: string; gateway: string; privateIpv4: string; mac: string }[] = JSON.parse(fs.readFileSync(inventoryFile, "utf8")).machines;
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
const tool = referencePath("tools", "ignition-apply-check.sh");
const missing = ["ignition-validate", "jq", "systemd-analyze"].filter((t) => !hasCommand(t));

/** The machine's installed config after Terraform, with placeholder PEMs and no remote file (offline). */
function installedConfig(name: string): IgnConfig {
  const stack = onlyStack(synthesize({ NODE_TARGET: "matchbox", MATCHBOX_INVENTORY: inventoryFile }));
  const profile = resourcesOf(stack, "matchbox_profile").find(([, p]) => p.name === name)![1];
  const wrapper = JSON.parse(profile.raw_ignition) as IgnConfig;
  const local = /^data:;base64,\$\{base64encode\(local\.([^)]+)\)\}$/.exec(wrapper.ignition.config!.merge![0].source)![1];
  const userData = offline(JSON.parse(resolveTerraformRefs(stack.locals![local]).text) as IgnConfig);
  return { ...wrapper, ignition: { ...wrapper.ignition, config: { merge: [{ source: `data:;base64,${Buffer.from(JSON.stringify(userData)).toString("base64")}` }] } } };
}

describe("a Matchbox machine's config applies, and its scripts read the inventory's metadata", () => {
  if (!isRoot || missing.length > 0) {
    // eslint-disable-next-line no-console
    console.warn(`SKIPPED Matchbox ignition-apply-check: ${!isRoot ? "not root (the real ignition binary chowns files; run the tests as root, as CI does)" : `missing ${missing.join(", ")}; ${installHint(missing)}`}`);
    it.skip("needs root and ignition, jq, systemd", () => undefined);
    return;
  }

  it.each(["v6fabric-cp-1", "v6fabric-worker-02"])("%s", (name) => {
    const m = machines.find((x) => x.name === name)!;
    const config = installedConfig(name);
    const dir = tempDir("matchbox-apply");
    const file = path.join(dir, `${name}.ign`);
    fs.writeFileSync(file, JSON.stringify(config));
    const work = path.join(dir, "work");
    fs.mkdirSync(work);
    const result = spawnSync("bash", [tool, "--keep", `--workdir=${work}`, file], { encoding: "utf8", timeout: 300_000 });
    const output = `${result.stdout}${result.stderr}`;
    expect({ name, status: result.status, problems: output.split("\n").filter((l) => l.startsWith("PROBLEM")) }).toEqual({ name, status: 0, problems: [] });
    expect(output).toContain("RESULT: OK");
    expect(output).toContain("verify: OK");

    const [scratch] = fs.readdirSync(work).filter((n) => n.startsWith("ign-check."));
    const root = path.join(work, scratch, "root");
    const at = (p: string) => path.join(root, p);
    // The drop-ins landed next to the units the merged Metal config wrote, and say where the metadata is.
    const dropin = fs.readFileSync(at("/etc/systemd/system/v6fabric-boot-values.service.d/10-v6fabric-metadata-source.conf"), "utf8");
    const environment = Object.fromEntries([...dropin.matchAll(/^Environment=([A-Z0-9_]+)=(.*)$/gm)].map((x) => [x[1], x[2]]));
    expect(environment).toEqual({ V6FABRIC_METADATA_ENV: "/etc/v6fabric/metadata/flatcar", V6FABRIC_METADATA_URL: "file:///etc/v6fabric/metadata/metadata.json" });
    expect(fs.existsSync(at("/etc/systemd/system/v6fabric-boot-values.service"))).toBe(true);
    expect(fs.readFileSync(at("/etc/systemd/network/00-v6fabric-uplink.network"), "utf8")).toContain(`MACAddress=${m.mac}`);

    // render-boot-values as the node runs it, inside the scratch root.
    const scripts = at("/opt/v6fabric/bin");
    const run = (script: string, env: Record<string, string>) =>
      spawnSync(path.join(scripts, script), [], { encoding: "utf8", env: { PATH: process.env.PATH, ...env } });
    const rendered = run("render-boot-values", {
      V6FABRIC_METADATA_ENV: at(environment.V6FABRIC_METADATA_ENV),
      V6FABRIC_TEMPLATE_DIR: at("/etc/v6fabric/templates"),
      V6FABRIC_TARGET_ROOT: root,
    });
    const address = m.address.split("/")[0];
    expect([rendered.status, rendered.stderr]).toEqual([0, ""]);
    expect(rendered.stdout).toContain(`for node IPv6 ${address}, private IPv4 ${m.privateIpv4}`);
    const kubeadm = fs.readFileSync(at("/etc/kubernetes/kubeadm.yaml"), "utf8");
    expect(kubeadm).toContain(address);
    expect(kubeadm).not.toContain("__NODE_IPV6__");

    // bgp-peer-routes: the inventory's neighbours are the cluster's peers; routes via the inventory's gateway.
    const routes = run("bgp-peer-routes", {
      V6FABRIC_METADATA_ENV: at(environment.V6FABRIC_METADATA_ENV),
      V6FABRIC_METADATA_URL: `file://${at(environment.V6FABRIC_METADATA_URL.replace(/^file:\/\//, ""))}`,
      V6FABRIC_IP_COMMAND: "echo",
    });
    expect([routes.status, routes.stderr]).toEqual([0, ""]);
    expect(routes.stdout.split("\n").filter((l) => l.startsWith("-6"))).toEqual([`-6 route replace fc00::e/128 via ${m.gateway}`, `-6 route replace fc00::f/128 via ${m.gateway}`]);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
