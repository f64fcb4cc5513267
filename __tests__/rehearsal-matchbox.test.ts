/**
 * The Matchbox target's rehearsal: the real Matchbox server v0.11.0 (gRPC with TLS client
 * certificates, HTTP) and the real poseidon/matchbox provider v0.5.4 under the pinned
 * Terraform apply the synthesized stack of an inventory of 3 control planes and 2
 * workers. Matchbox's data directory then holds exactly one install profile and each
 * machine's profile and two groups; a second plan changes nothing; and each machine's
 * Ignition, fetched from Matchbox's HTTP endpoint by its MAC as iPXE and the installer
 * would, merges byte for byte the user data the Metal target synthesizes for the same
 * node, evaluated by the same Terraform against the same state.
 *
 * Needs `npm run tools -- terraform matchbox`; skipped loudly otherwise.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { MatchboxServer, startMatchbox } from "../rehearsal/matchbox";
import { IGNITION_VERSION, ignitionValidateBinary } from "../rehearsal/matchbox-tools";
import { REHEARSAL_TAYGA_PACKAGE_URL } from "../rehearsal/rehearse";
import { Terraform } from "../rehearsal/terraform";
import { toolsPresent, toolsUnavailable } from "../rehearsal/tools";
import { decodeDataUrl } from "./support/ignition";
import { onlyStack, resourcesOf, synthesize } from "./support/synth";

/** "matchbox" also builds Ignition's ignition-validate (rehearsal/matchbox-tools.ts). */
const GROUPS = ["terraform", "matchbox"] as const;
const present = toolsPresent([...GROUPS]);
if (!present) {
  console.warn(`SKIPPED Matchbox rehearsal: the pinned terraform, providers and Matchbox are not built: ${toolsUnavailable([...GROUPS]) ?? "run `npm run tools -- terraform matchbox` (.ci/run does)"}`);
}
const describeRehearsal = present ? describe : describe.skip;

const inventoryFile = path.join(__dirname, "fixtures", "matchbox-inventory-metal-peers.json");
const machines: { name: string; role: string; mac: string; address: string; installDisk?: string }[] = JSON.parse(fs.readFileSync(inventoryFile, "utf8")).machines;
/** Settings both targets share, so the Metal target renders the same nodes. */
const COMMON = { NAT64_TAYGA_PACKAGE_URL: REHEARSAL_TAYGA_PACKAGE_URL };

describeRehearsal("Matchbox rehearsal: real Matchbox, real provider, real Terraform", () => {
  let work: string;
  let server: MatchboxServer | undefined;
  let tf: Terraform;
  let applyMs = 0;
  let secondPlan: { status: number; stdout: string; stderr: string };
  let applied = false;

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), "v6fabric-rehearsal-matchbox-"));
    server = await startMatchbox(path.join(work, "matchbox"));
    const stack = synthesize({ ...COMMON, NODE_TARGET: "matchbox", MATCHBOX_INVENTORY: inventoryFile, MATCHBOX_HTTP_ENDPOINT: server.httpEndpoint, MATCHBOX_RPC_ENDPOINT: server.rpcEndpoint });
    const tfDir = path.join(work, "tf");
    fs.mkdirSync(tfDir);
    fs.copyFileSync(path.join(stack.outdir, "stacks", "v6fabric", "cdk.tf.json"), path.join(tfDir, "cdk.tf.json"));
    // The provider's credentials reach it as a deploy's would: sensitive TF_VAR_s.
    const { ca, clientCert, clientKey } = server.credentials;
    tf = new Terraform(tfDir, { PATH: process.env.PATH, HOME: process.env.HOME, TF_VAR_matchbox_ca: ca, TF_VAR_matchbox_client_cert: clientCert, TF_VAR_matchbox_client_key: clientKey });
    tf.must(["init", "-input=false", "-no-color"]);
    const started = Date.now();
    tf.must(["apply", "-auto-approve", "-input=false", "-no-color"]);
    applyMs = Date.now() - started;
    applied = true;
    secondPlan = tf.run(["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    console.log(`Matchbox rehearsal: apply ${(applyMs / 1000).toFixed(1)} s; second plan exit ${secondPlan.status}`);
  }, 300_000);

  afterAll(async () => {
    try {
      if (applied) {
        const destroyed = tf.run(["destroy", "-auto-approve", "-input=false", "-no-color"]);
        if (destroyed.status !== 0) console.warn(`Matchbox rehearsal: destroy failed: ${destroyed.stderr}`);
      }
    } finally {
      await server?.stop();
      if (work) fs.rmSync(work, { recursive: true, force: true });
    }
  }, 120_000);

  const stored = (kind: "profiles" | "groups") =>
    fs.readdirSync(path.join(server!.dataDir, kind)).map((f) => JSON.parse(fs.readFileSync(path.join(server!.dataDir, kind, f), "utf8")));

  test("Matchbox stores exactly one install profile, one profile per machine, and two groups per machine", () => {
    const profiles = stored("profiles");
    const install = profiles.filter((p) => p.boot?.kernel);
    expect(install.map((p) => p.id)).toEqual(["v6fabric-install"]);
    expect(profiles.map((p) => p.id).sort()).toEqual(["v6fabric-install", ...machines.map((m) => m.name)].sort());
    const groups = stored("groups");
    expect(groups).toHaveLength(2 * machines.length);
    for (const m of machines) {
      const mine = groups.filter((g) => g.selector?.mac === m.mac).sort((a, b) => Object.keys(a.selector).length - Object.keys(b.selector).length);
      expect(mine.map((g) => [g.id, g.profile, g.selector])).toEqual([
        [`${m.name}-install`, "v6fabric-install", { mac: m.mac }],
        [m.name, m.name, { mac: m.mac, os: "installed" }],
      ]);
    }
  });

  test("a second plan changes nothing", () => {
    expect([secondPlan.status, secondPlan.stderr]).toEqual([0, ""]);
  });

  const hyphenated = (mac: string) => mac.replace(/:/g, "-");
  const get = async (query: string) => {
    const response = await fetch(`${server!.httpEndpoint}${query}`);
    if (!response.ok) throw new Error(`GET ${query}: ${response.status}\n${server!.log().slice(-2000)}`);
    return response.text();
  };

  test("by MAC alone (what iPXE asks) every machine gets the one install config, and its install disk from /metadata", async () => {
    for (const m of machines) {
      const config = JSON.parse(await get(`/ignition?mac=${hyphenated(m.mac)}`));
      expect(config.systemd.units.map((u: any) => u.name)).toEqual(["v6fabric-install.service"]);
      const script = decodeDataUrl(config.storage.files[0].contents.source).toString("utf8");
      expect(script).toContain(`endpoint=${server!.httpEndpoint}\n`);
      expect(await get(`/metadata?mac=${hyphenated(m.mac)}`)).toContain(`INSTALL_DISK=${m.installDisk ?? "/dev/sda"}\n`);
    }
  });

  test("the install config, run as the machine would with the kernel command line iPXE makes of the stored profile, installs its installed config to its disk", async () => {
    const install = stored("profiles").find((p) => p.id === "v6fabric-install");
    for (const m of machines) {
      const dir = path.join(work, `install-${m.name}`);
      const stubs = path.join(dir, "bin");
      fs.mkdirSync(stubs, { recursive: true });
      // iPXE fills in ${mac:hexhyp} with the booting interface's MAC, hyphenated.
      fs.writeFileSync(path.join(dir, "cmdline"), `${install.boot.args.join(" ").replace("${mac:hexhyp}", hyphenated(m.mac))}\n`);
      // flatcar-install, udevadm and systemctl are the machine's: stubs record how they are called.
      for (const tool of ["flatcar-install", "udevadm", "systemctl"]) {
        fs.writeFileSync(path.join(stubs, tool), `#!/bin/bash\necho "${tool} $*" >>"${dir}/calls"\n`, { mode: 0o755 });
      }
      const config = JSON.parse(await get(`/ignition?mac=${hyphenated(m.mac)}`));
      const script = path.join(dir, "v6fabric-install");
      fs.writeFileSync(script, decodeDataUrl(config.storage.files.find((f: any) => f.path === "/opt/v6fabric-install").contents.source), { mode: 0o755 });
      const result = spawnSync("bash", [script], { encoding: "utf8", env: { PATH: `${stubs}:${process.env.PATH}`, V6FABRIC_CMDLINE: path.join(dir, "cmdline"), V6FABRIC_INSTALL_DIR: dir } });
      expect([m.name, result.status, result.stderr]).toEqual([m.name, 0, ""]);
      expect(fs.readFileSync(path.join(dir, "calls"), "utf8").split("\n")).toEqual([
        `flatcar-install -d ${m.installDisk ?? "/dev/sda"} -C stable -i ${dir}/v6fabric-installed.ign`,
        "udevadm settle",
        "systemctl reboot",
        "",
      ]);
      expect(fs.readFileSync(path.join(dir, "v6fabric-installed.ign"), "utf8")).toBe(await get(`/ignition?mac=${hyphenated(m.mac)}&os=installed`));
    }
  });

  test(`ignition-validate ${IGNITION_VERSION} (the Ignition Matchbox parses with) accepts every config Matchbox serves, as served (spec 3.4.0), and refuses a broken one`, async () => {
    const validate = (config: string) => {
      const file = path.join(work, "served.ign");
      fs.writeFileSync(file, config);
      const r = spawnSync(ignitionValidateBinary(), [file], { encoding: "utf8" });
      return [r.status, `${r.stdout}${r.stderr}`.trim()];
    };
    expect(spawnSync(ignitionValidateBinary(), ["-version"], { encoding: "utf8" }).stdout.trim()).toBe(`Ignition v${IGNITION_VERSION}`);
    for (const m of machines) {
      for (const query of [`mac=${hyphenated(m.mac)}`, `mac=${hyphenated(m.mac)}&os=installed`]) {
        const served = await get(`/ignition?${query}`);
        expect(JSON.parse(served).ignition.version).toBe("3.4.0");
        expect([m.name, query, ...validate(served)]).toEqual([m.name, query, 0, ""]);
      }
    }
    // A unit whose drop-in has no name: the same validator refuses it.
    const broken = JSON.parse(await get(`/ignition?mac=${hyphenated(machines[0].mac)}&os=installed`));
    broken.systemd.units[0].dropins[0].name = "";
    const [status, output] = validate(JSON.stringify(broken));
    expect([status, output]).toEqual([1, expect.stringMatching(/error/i)]);
  });

  /**
   * The Metal target's user data of each machine, as the same Terraform evaluates it
   * against the applied state: each device's user_data template (its references to
   * other devices' addresses replaced by the inventory's) becomes an output of the
   * applied module, applied again (outputs only) and read back.
   */
  function metalUserDataEvaluated(metal: ReturnType<typeof onlyStack>): Record<string, Buffer> {
    const devices = resourcesOf(metal, "metal_device");
    const output: Record<string, { value: string; sensitive: true }> = {};
    for (const [, device] of devices) {
      let template: string = device.user_data;
      for (const [id, d] of devices) {
        const address = machines.find((m) => m.name === d.hostname)!.address.split("/")[0];
        template = template.split(`metal_device.${id}.access_public_ipv6`).join(JSON.stringify(address));
      }
      output[`metal_user_data_${device.hostname.replace(/-/g, "_")}`] = { value: template, sensitive: true };
    }
    fs.writeFileSync(path.join(tf.dir, "metal-user-data.tf.json"), JSON.stringify({ output }));
    const apply = tf.must(["apply", "-auto-approve", "-input=false", "-no-color"]);
    expect(apply.stdout).toMatch(/Resources: 0 added, 0 changed, 0 destroyed/);
    const outputs = tf.json<Record<string, { value: string }>>(["output", "-json"]);
    return Object.fromEntries(machines.map((m) => [m.name, Buffer.from(outputs[`metal_user_data_${m.name.replace(/-/g, "_")}`].value, "utf8")]));
  }

  test("with os=installed each machine's Ignition, as Matchbox serves it, merges the Metal target's user data byte for byte", async () => {
    const metal = metalUserDataEvaluated(onlyStack(synthesize({ ...COMMON, CONTROL_PLANE_COUNT: "3", WORKER_COUNT: "2" })));
    for (const m of machines) {
      const served = JSON.parse(await get(`/ignition?mac=${hyphenated(m.mac)}&os=installed`));
      // Matchbox serves raw Ignition re-encoded in its own spec version (3.4.0); the merged config is untouched.
      expect(served.ignition.version).toBe("3.4.0");
      expect(served.ignition.config.merge).toHaveLength(1);
      const merged = decodeDataUrl(served.ignition.config.merge[0].source);
      const expected = metal[m.name];
      expect(expected.length).toBeGreaterThan(4096);
      expect([m.name, merged.length]).toEqual([m.name, expected.length]);
      expect(merged.equals(expected)).toBe(true);
      // Beside the merge: only the metadata source.
      expect(served.storage.files.map((f: any) => f.path)).toEqual(["/etc/v6fabric/metadata/flatcar", "/etc/v6fabric/metadata/metadata.json", "/etc/systemd/network/00-v6fabric-uplink.network"]);
      expect(decodeDataUrl(served.storage.files[0].contents.source).toString("utf8")).toContain(`COREOS_PACKET_IPV6_PUBLIC_0=${m.address.split("/")[0]}\n`);
    }
  });
});
