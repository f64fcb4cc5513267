/**
 * NODE_TARGET=matchbox synthesizes Matchbox profiles and groups instead of Metal devices,
 * and each machine's Ignition merges, byte for byte, the user data the Metal target
 * synthesizes for the same node (same role, hostname and addresses): the two real synth
 * outputs are compared. The one difference is the documented metadata source.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { TerraformJson, onlyStack, resourcesOf, synthesize } from "./support/synth";
import { decodeDataUrl, describeWithTools, ignitionValidate } from "./support/ignition";
import { buildReport } from "../scripts/report";
import { TerraformJson as ReportTerraformJson } from "../scripts/synthesized";

const root = path.join(__dirname, "..");
const inventoryFile = path.join(__dirname, "fixtures", "matchbox-inventory-metal-peers.json");
/** The inventory as the test reads it: the expectations come from this file, not from the code. */
const inventory: { machines: any[] } = JSON.parse(fs.readFileSync(inventoryFile, "utf8"));

let matchbox: TerraformJson;
let metal: TerraformJson;

beforeAll(() => {
  matchbox = onlyStack(synthesize({ NODE_TARGET: "matchbox", MATCHBOX_INVENTORY: inventoryFile }));
  // The Metal target with the same nodes: 3 control planes and 2 workers get the same hostnames.
  metal = onlyStack(synthesize({ CONTROL_PLANE_COUNT: "3", WORKER_COUNT: "2" }));
});

const profiles = (): any[] => resourcesOf(matchbox, "matchbox_profile").map(([, p]) => p);
const groups = (): any[] => resourcesOf(matchbox, "matchbox_group").map(([, g]) => g);

test("the fixture's machines are the Metal target's nodes", () => {
  const hostnames = resourcesOf(metal, "metal_device").map(([, d]) => d.hostname);
  expect(inventory.machines.map((m) => m.name).sort()).toEqual(hostnames.sort());
});

test("exactly one install profile: Flatcar's PXE image, Ignition URL by MAC, and flatcar-install", () => {
  const install = profiles().filter((p) => p.kernel !== undefined);
  expect(install).toHaveLength(1);
  const [p] = install;
  expect(p.name).toBe("v6fabric-install");
  expect(p.kernel).toBe("https://stable.release.flatcar-linux.net/amd64-usr/current/flatcar_production_pxe.vmlinuz");
  expect(p.initrd).toEqual(["https://stable.release.flatcar-linux.net/amd64-usr/current/flatcar_production_pxe_image.cpio.gz"]);
  // `$${` is Terraform's escape: Matchbox stores `${mac:hexhyp}` for iPXE to fill in.
  expect(p.args).toContain("flatcar.config.url=http://matchbox.example:8080/ignition?mac=$${mac:hexhyp}");
  const config = JSON.parse(p.raw_ignition);
  const script = decodeDataUrl(config.storage.files.find((f: any) => f.path === "/opt/v6fabric-install").contents.source).toString("utf8");
  expect(script).toContain("work=${V6FABRIC_INSTALL_DIR:-/run}\n");
  expect(script).toContain("cmdline=${V6FABRIC_CMDLINE:-/proc/cmdline}\n");
  expect(script).toContain(`flatcar-install -d "$disk" -C stable -i "$work/v6fabric-installed.ign"`);
  expect(script).toContain(`"$endpoint/ignition?$query&os=installed"`);
  // The installer runs it in full against the real Matchbox: rehearsal-matchbox.test.ts.
  expect(config.systemd.units).toEqual([expect.objectContaining({ name: "v6fabric-install.service", enabled: true })]);
});

test("each machine: its installed profile, and two groups selected by its MAC (install, then os=installed)", () => {
  const installProfileRef = (p: any) => `\${matchbox_profile.${resourcesOf(matchbox, "matchbox_profile").find(([, x]) => x === p)![0]}.name}`;
  const install = profiles().find((p) => p.kernel !== undefined);
  expect(groups()).toHaveLength(2 * inventory.machines.length);
  for (const m of inventory.machines) {
    const profile = profiles().find((p) => p.name === m.name);
    expect(profile).toBeDefined();
    expect(profile.kernel).toBeUndefined();
    const mine = groups().filter((g) => g.selector.mac === m.mac);
    expect(mine.map((g) => g.selector).sort((a, b) => Object.keys(a).length - Object.keys(b).length)).toEqual([{ mac: m.mac }, { mac: m.mac, os: "installed" }]);
    const [installGroup, installedGroup] = mine.sort((a, b) => Object.keys(a.selector).length - Object.keys(b.selector).length);
    expect(installGroup.profile).toBe(installProfileRef(install));
    expect(installGroup.metadata).toEqual({ install_disk: m.installDisk ?? "/dev/sda" });
    expect(installedGroup.profile).toBe(installProfileRef(profile));
  }
  expect(profiles()).toHaveLength(1 + inventory.machines.length);
});

test("nothing of Metal is in the Matchbox stack; the provider's TLS credentials are sensitive variables", () => {
  const types = [...Object.keys(matchbox.resource ?? {}), ...Object.keys(matchbox.data ?? {})];
  expect(types.filter((t) => t.startsWith("metal_"))).toEqual([]);
  expect(Object.keys(matchbox.provider ?? {}).sort()).toEqual(["matchbox", "tls"]);
  expect(matchbox.provider!.matchbox).toEqual([{ endpoint: "matchbox.example:8081", ca: "${var.matchbox_ca}", client_cert: "${var.matchbox_client_cert}", client_key: "${var.matchbox_client_key}" }]);
  for (const name of ["matchbox_ca", "matchbox_client_cert", "matchbox_client_key"]) expect(matchbox.variable![name]).toMatchObject({ sensitive: true, type: "string" });
});

/** The user data the Metal target gives the device `hostname`, with its device references as the inventory's addresses. */
function metalUserData(hostname: string): string {
  const devices = resourcesOf(metal, "metal_device");
  let userData: string = devices.find(([, d]) => d.hostname === hostname)![1].user_data;
  for (const [id, d] of devices) {
    const address = inventory.machines.find((m) => m.name === d.hostname)!.address.split("/")[0];
    userData = userData.split(`metal_device.${id}.access_public_ipv6`).join(JSON.stringify(address));
  }
  return userData;
}

function machineConfig(name: string): any {
  return JSON.parse(profiles().find((p) => p.name === name).raw_ignition);
}

/** The Terraform string the machine's config merges: the local its data URL base64-encodes. */
function mergedUserData(name: string): string {
  const merge = machineConfig(name).ignition.config.merge;
  expect(merge).toHaveLength(1);
  const ref = /^data:;base64,\$\{base64encode\(local\.([^)]+)\)\}$/.exec(merge[0].source);
  expect(ref).not.toBeNull();
  return matchbox.locals![ref![1]];
}

test.each(inventory.machines.map((m) => [m.name, m.role]))("%s (%s): the merged user data is the Metal target's, byte for byte", (name) => {
  const metalText = metalUserData(name);
  // The Metal user data of a node that names control planes refers to their devices; replaced above.
  expect(metalText).not.toMatch(/metal_device\./);
  expect(mergedUserData(name)).toBe(metalText);
});

test("the rest of a machine's config is the documented metadata source, from the inventory", () => {
  for (const m of inventory.machines) {
    const { ignition, ...rest } = machineConfig(m.name);
    expect(Object.keys(ignition.config)).toEqual(["merge"]);
    const files = Object.fromEntries(rest.storage.files.map((f: any) => [f.path, decodeDataUrl(f.contents.source).toString("utf8")]));
    expect(Object.keys(files)).toEqual(["/etc/v6fabric/metadata/flatcar", "/etc/v6fabric/metadata/metadata.json", "/etc/systemd/network/00-v6fabric-uplink.network"]);
    const address = m.address.split("/")[0];
    expect(files["/etc/v6fabric/metadata/flatcar"].split("\n")).toEqual([
      `COREOS_PACKET_HOSTNAME=${m.name}`,
      `COREOS_PACKET_IPV4_PRIVATE_0=${m.privateIpv4}`,
      `COREOS_PACKET_IPV6_PUBLIC_0=${address}`,
      `COREOS_PACKET_IPV6_PUBLIC_GATEWAY_0=${m.gateway}`,
      "",
    ]);
    const json = JSON.parse(files["/etc/v6fabric/metadata/metadata.json"]);
    expect(json.bgp_neighbors).toEqual([{ address_family: 6, customer_as: 65000, customer_ip: address, multihop: true, peer_as: 65530, peer_ips: ["fc00::e", "fc00::f"] }]);
    const network = files["/etc/systemd/network/00-v6fabric-uplink.network"];
    expect(network).toContain(`MACAddress=${m.mac}\n`);
    expect(network).toContain(`Address=${m.address}\n`);
    expect(network).toContain(`Gateway=${m.gateway}\n`);
    expect(rest.systemd.units.map((u: any) => [u.name, u.dropins.map((d: any) => d.name)])).toEqual(
      ["v6fabric-boot-values.service", "v6fabric-bgp-peer-routes.service", "v6fabric-api-path.service"].map((u) => [u, ["10-v6fabric-metadata-source.conf"]]),
    );
    for (const u of rest.systemd.units) {
      expect(u.dropins[0].contents).toContain("Environment=V6FABRIC_METADATA_ENV=/etc/v6fabric/metadata/flatcar\n");
      expect(u.dropins[0].contents).toContain("Environment=V6FABRIC_METADATA_URL=file:///etc/v6fabric/metadata/metadata.json\n");
    }
  }
});

test("the scripts the drop-ins point elsewhere read exactly those variables", () => {
  for (const script of ["render-boot-values.sh", "bgp-peer-routes.sh", "api-path.sh"]) {
    const text = fs.readFileSync(path.join(root, "ignition", "scripts", script), "utf8");
    expect([script, /\$\{V6FABRIC_METADATA_ENV:-\/run\/metadata\/flatcar\}/.test(text)]).toEqual([script, true]);
  }
  expect(fs.readFileSync(path.join(root, "ignition", "scripts", "bgp-peer-routes.sh"), "utf8")).toMatch(/\$\{V6FABRIC_METADATA_URL:-https:\/\/metadata\.platformequinix\.com\/metadata\}/);
});

test("npm run report reads the machines: names, roles from the inventory, Flatcar's channel, and the routers as peers", () => {
  const report = buildReport({ v6fabric: matchbox as ReportTerraformJson });
  expect(report.nodes.map((n) => [n.hostname, n.role, n.operatingSystem])).toEqual(inventory.machines.map((m) => [m.name, m.role, "flatcar_stable"]));
  expect(report.peers.map((p) => [p.address, p.asn])).toEqual([["fc00::e", 65530], ["fc00::f", 65530]]);
  expect(report.perNode.map((n) => n.hostname)).toEqual(inventory.machines.map((m) => m.name));
});

describeWithTools(["ignition-validate"], "ignition-validate", () => {
  test("the install config and each machine's config (its merge as a stand-in data URL) are valid Ignition", () => {
    const install = profiles().find((p) => p.kernel !== undefined);
    expect(ignitionValidate(install.raw_ignition)).toEqual({ status: 0, output: "" });
    for (const m of inventory.machines) {
      const config = machineConfig(m.name);
      config.ignition.config.merge[0].source = "data:;base64,e30=";
      expect([m.name, ignitionValidate(JSON.stringify(config))]).toEqual([m.name, { status: 0, output: "" }]);
    }
  });
});
