/**
 * Checks the Terraform rehearsal (rehearsal-terraform.test.ts) runs on each applied
 * variant: the default cluster, 3 + 5 and the Terraform Cloud stack.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import { answerMetadata } from "../../emulators/metal/metadata";
import { nodeSources } from "../../rehearsal/cluster";
import { linkAddresses } from "../../rehearsal/nodes";
import { MetadataDocument, metadataAddresses } from "../../rehearsal/node-root";
import type { StackRehearsal } from "../../rehearsal/rehearse";
import { plannedActions } from "../../rehearsal/terraform";

/** A stack applied against the Metal API emulator, with what the test reads of it. */
export interface Applied {
  rehearsal: StackRehearsal;
  outputs: Record<string, { value: unknown; sensitive: boolean }>;
  planText: string;
  created: Record<string, Record<string, number>>;
  milliseconds: number;
  /** Requests the Metal API emulator served during apply. */
  requests: number;
}

/** What the emulator holds apart from the project and its blocks: must be nothing after destroy. */
export function leftInMetal(rehearsal: StackRehearsal): string[] {
  const state = rehearsal.metal.state();
  return [
    ...state.devices.map((d) => `device ${d.hostname}`),
    ...state.bgpSessions.map((b) => `bgp session ${b.id}`),
    ...state.reservations.filter((r) => r.type === "public_ipv4" || r.deviceId).map((r) => `reservation ${r.network}/${r.cidr}`),
  ];
}

/** After destroy: an empty state, and the seeded project and its /56 (the settings' defaults) are all Metal holds. */
export function expectOnlyProjectAndBlock(rehearsal: StackRehearsal): void {
  expect(rehearsal.stateResources()).toEqual([]);
  expect(leftInMetal(rehearsal)).toEqual([]);
  const state = rehearsal.metal.state();
  expect(state.projects.map((p) => p.id)).toEqual(["00000000-0000-0000-0000-000000000000"]);
  expect(state.reservations.filter((r) => r.type === "public_ipv6").map((r) => `${r.network}/${r.cidr}`)).toEqual(["2001:db8:0:ab00::/56"]);
}

type StateJson = { values?: { root_module?: { resources?: { type: string; values: Record<string, unknown> }[] } } };

function stateResourcesOf(rehearsal: StackRehearsal, type: string): Record<string, unknown>[] {
  const state = rehearsal.terraform.json<StateJson>(["show", "-json"]);
  return (state.values?.root_module?.resources ?? []).filter((r) => r.type === type).map((r) => r.values);
}

/** The private keys' PEM bodies in the state: what must never show in plan output or plain outputs. */
function stateSecrets(rehearsal: StackRehearsal): string[] {
  return stateResourcesOf(rehearsal, "tls_private_key").map((values) => String(values.private_key_pem).split("\n")[1]);
}

/** One `network` entry of a metal_device in the state: an address the provider read back from Metal. */
interface StateNetwork {
  readonly address: string;
  readonly gateway: string;
  readonly cidr: number;
  readonly family: number;
  readonly public: boolean;
}

/** A metal_device as Terraform's state holds it. */
interface StateDevice {
  /** What the provider sent (equinix/metal 3.3.0 keeps the configured user_data and never reads it back from Metal, resource_metal_device.go). */
  readonly userData: string;
  /** The device's addresses as the provider read them from Metal's API (helpers_device.go getNetworkInfo). */
  readonly network: readonly StateNetwork[];
}

/** Each metal_device in Terraform's state, by hostname. */
function stateDevices(rehearsal: StackRehearsal): Map<string, StateDevice> {
  return new Map(
    stateResourcesOf(rehearsal, "metal_device").map((values) => [String(values.hostname), { userData: String(values.user_data), network: values.network as StateNetwork[] }]),
  );
}

/** The user data each metal_device in Terraform's state holds, by hostname: what the provider sent. */
export function stateUserData(rehearsal: StackRehearsal): Map<string, string> {
  return new Map([...stateDevices(rehearsal)].map(([host, device]) => [host, device.userData]));
}

/** Length and SHA-256 of a text's UTF-8 bytes: equal for byte-identical texts, and printable (user data holds keys). */
function bytesOf(text: string): { bytes: number; sha256: string } {
  return { bytes: Buffer.byteLength(text), sha256: createHash("sha256").update(text).digest("hex") };
}

/** The one address of a family and kind in a device's state; its prefix is Metal's (facts.md): a /127 public IPv6, /31 IPv4s. */
function stateAddress(host: string, device: StateDevice, family: 4 | 6, isPublic: boolean): StateNetwork {
  const found = device.network.filter((n) => n.family === family && n.public === isPublic);
  expect([host, family, isPublic, found.length, found[0]?.cidr]).toEqual([host, family, isPublic, 1, family === 6 ? 127 : 31]);
  return found[0];
}

/**
 * Issue #22: the user data each device holds in Metal is byte for byte what the cluster
 * rehearsal boots, and its node gets exactly Metal's addresses. Against each metal_device
 * in Terraform's state (the user_data the provider sent, the addresses it read back
 * through Metal's API), through the rehearsal's own functions: nodeSources (what
 * PreparedCluster writes each node's root from and puts on its link), and the metadata
 * service's answers to the device's own addresses (answerMetadata: /userdata as Ignition
 * reads it; /metadata through metadataAddresses, as the node reads it at boot).
 */
export function expectNodesBootTerraformsDevices(applied: Applied, nodes: number): void {
  const sent = stateDevices(applied.rehearsal);
  expect(sent.size).toBe(nodes);
  // Each device's user data differs from every other's (its hostname, its keys): serving another's would show.
  expect(new Set([...sent.values()].map((d) => bytesOf(d.userData).sha256)).size).toBe(nodes);
  const sources = nodeSources(applied.rehearsal.devices());
  expect(sources.map((s) => s.hostname).sort()).toEqual([...sent.keys()].sort());
  const metal = applied.rehearsal.metal.state();
  for (const source of sources) {
    const host = source.hostname;
    const device = sent.get(host)!;
    const wanted = bytesOf(device.userData);
    expect(wanted.bytes).toBeGreaterThan(1000);
    const [ipv6, privateIpv4, publicIpv4] = [stateAddress(host, device, 6, true), stateAddress(host, device, 4, false), stateAddress(host, device, 4, true)];
    expect(device.network).toHaveLength(3);
    expect([host, bytesOf(source.userData)]).toEqual([host, wanted]);
    expect([host, linkAddresses(source.addresses), source.addresses.ipv6Gateway, source.addresses.privateIpv4Gateway]).toEqual([
      host,
      { ipv6: `${ipv6.address}/${ipv6.cidr}`, privateIpv4: `${privateIpv4.address}/${privateIpv4.cidr}` },
      ipv6.gateway,
      privateIpv4.gateway,
    ]);
    // Metal's metadata service knows a server by any of its addresses; a node asks from its IPv6.
    for (const caller of [ipv6.address, privateIpv4.address, publicIpv4.address]) {
      const userdata = answerMetadata(metal, caller, "/userdata");
      expect([host, caller, userdata.status, bytesOf(userdata.body)]).toEqual([host, caller, 200, wanted]);
      const metadata = answerMetadata(metal, caller, "/metadata");
      expect([host, caller, metadata.status]).toEqual([host, caller, 200]);
      expect([caller, metadataAddresses(JSON.parse(metadata.body) as MetadataDocument)]).toEqual([
        caller,
        {
          hostname: host,
          ipv6: ipv6.address,
          ipv6Gateway: ipv6.gateway,
          privateIpv4: privateIpv4.address,
          privateIpv4Gateway: privateIpv4.gateway,
          publicIpv4: publicIpv4.address,
          publicIpv4Gateway: publicIpv4.gateway,
        },
      ]);
    }
  }
}

/**
 * The emulator's own report of each device (its request log: hostname and bytes of user
 * data, never the data) names every device Terraform's state holds, with exactly the byte
 * length of the user data there; the log holds none of that user data.
 */
export function expectReportedSizesAreTerraforms(applied: Applied, nodes: number): void {
  const sent = stateUserData(applied.rehearsal);
  expect(sent.size).toBe(nodes);
  const reported = applied.rehearsal.metal.reportedDevices();
  expect(new Map(reported.map((d) => [d.hostname, d.userDataBytes]))).toEqual(new Map([...sent].map(([host, text]) => [host, Buffer.byteLength(text)])));
  const created = applied.rehearsal.metal.requests().filter((r) => r.method === "POST" && /\/devices$/.test(r.path) && r.status === 201);
  expect(created.map((r) => r.device?.hostname).sort()).toEqual([...sent.keys()].sort());
  const log = fs.readFileSync(applied.rehearsal.metal.logFile, "utf8");
  // A stretch from the middle of each: the gzip'd boot config's base64, unlike anything else.
  for (const text of sent.values()) expect(log).not.toContain(text.slice(text.length / 2, text.length / 2 + 48));
}

/**
 * No private key from the state, nor the emulator's token, in the plan output, a plain
 * output or the emulator's log. Keys: the three CAs', the service account's, the admin's,
 * and one join key per node but the first control plane.
 */
export function expectNoSecretLeaks(applied: Applied, nodes: number, alsoPrinted: readonly string[] = []): void {
  const secrets = stateSecrets(applied.rehearsal);
  expect(secrets.length).toBe(5 + nodes - 1);
  const plain = JSON.stringify(Object.values(applied.outputs).filter((o) => !o.sensitive));
  const log = fs.readFileSync(applied.rehearsal.metal.logFile, "utf8");
  expect(log.split("\n").filter(Boolean).length).toBeGreaterThan(10);
  for (const secret of [...secrets, applied.rehearsal.metal.env().METAL_AUTH_TOKEN]) {
    expect(secret.length).toBeGreaterThan(15);
    expect(applied.planText).not.toContain(secret);
    expect(plain).not.toContain(secret);
    expect(log).not.toContain(secret);
    for (const text of alsoPrinted) expect(text).not.toContain(secret);
  }
  expect(applied.planText).toContain("(sensitive value)");
}

/**
 * `moreWorkers` (the stack synthesized with WORKER_COUNT raised by 2) plans, against the
 * applied state, a device, a BGP session, a key, a request and a certificate for each of
 * `newHosts`, and nothing else created, changed or replaced; only the summary output moves.
 */
export function expectTwoMoreWorkers(applied: Applied, moreWorkers: Record<string, unknown>, newHosts: readonly string[]): void {
  applied.rehearsal.write(moreWorkers);
  const { plan } = applied.rehearsal.plan("more-workers.tfplan");
  expect(plannedActions(plan)).toEqual({
    metal_device: { create: 2 },
    metal_bgp_session: { create: 2 },
    tls_private_key: { create: 2 },
    tls_cert_request: { create: 2 },
    tls_locally_signed_cert: { create: 2 },
  });
  const created = (plan.resource_changes ?? []).filter((rc) => rc.change.actions.join() === "create").map((rc) => rc.address);
  expect(created).toHaveLength(10);
  for (const host of newHosts) expect(created.filter((address) => address.includes(host))).toHaveLength(5);
  const outputChanges = Object.entries(plan.output_changes ?? {}).filter(([, c]) => c.actions.join() !== "no-op");
  expect(outputChanges.map(([output, c]) => `${output}:${c.actions.join("+")}`).sort()).toEqual(["fabric_summary:update"]); // the worker count
}

/**
 * With the emulator told to put `newHosts` outside zone 0 (the /56's last /64), applying
 * the plan expectTwoMoreWorkers made fails with the device's own postcondition message,
 * once per new device, read from Terraform's output; Metal made the devices where the
 * fault put them, and no BGP session peers from them.
 */
export function expectNewWorkersOutsideZone0Refused(applied: Applied, newHosts: readonly string[]): void {
  const sessionsBefore = applied.rehearsal.metal.state().bgpSessions.length;
  const result = applied.rehearsal.terraform.run(["apply", "-input=false", "-no-color", "more-workers.tfplan"]);
  expect(result.status).toBe(1);
  const message = (result.stderr + result.stdout).replace(/│/g, "").replace(/\s+/g, " ");
  const guard = "The device's public IPv6 address is outside 2001:db8:0:ab00::/60, where the address plan expects Metal to place node addresses (zone 0 of CLUSTER_IPV6_BLOCK).";
  expect(message.split(guard)).toHaveLength(newHosts.length + 1);
  for (const host of newHosts) expect(message).toContain(`metal_device.${host}`);
  const state = applied.rehearsal.metal.state();
  const misplaced = state.devices.filter((d) => newHosts.includes(d.hostname));
  expect(misplaced.map((d) => d.hostname).sort()).toEqual([...newHosts].sort());
  for (const d of misplaced) expect(d.addresses.find((a) => a.family === 6)?.address).toMatch(/^2001:db8:0:abff::/);
  expect(state.bgpSessions).toHaveLength(sessionsBefore);
  expect(state.bgpSessions.filter((b) => misplaced.some((d) => d.id === b.deviceId))).toEqual([]);
}
