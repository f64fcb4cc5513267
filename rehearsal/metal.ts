/**
 * Metal for the rehearsal: the emulator (emulators/metal/) seeded with the project your
 * settings describe, as it stands before a first deploy: it exists, Metal has allocated
 * its public IPv6 /56 in the metro (CLUSTER_IPV6_BLOCK), and its local BGP is enabled as
 * METAL_BGP_ASN and METAL_BGP_MD5_ENABLED say, unless METAL_MANAGE_PROJECT_BGP asks the
 * app to enable it (then the project has none yet). The real equinix/metal provider
 * applies the stack against it (docs/metal-emulator.md says how it is reached).
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { MetalEmulatorHandle, startMetalEmulator } from "../emulators/metal";
import { MetalSeed, MetalState, readState, SeedFaults, StoredAddress, StoredDevice, writeState } from "../emulators/metal/state";
import { nodeHostname } from "../lib/naming";
import type { ClusterSettings } from "../lib/settings";

/** The running emulator of one stack's rehearsal. */
export type MetalApi = MetalEmulatorHandle;

/**
 * Starts the emulator with its files in `dir`, seeded with `seed` unless `dir` already
 * holds a state (a kept rehearsal goes on where it stopped; the seed's faults, if any,
 * then replace the kept projects', so a test can go on from a kept rehearsal with a
 * fault). Its token is new each time: the operator's METAL_AUTH_TOKEN is never used.
 */
export function startRehearsalMetal(dir: string, seed: MetalSeed): MetalApi {
  const stateFile = path.join(dir, "state.json");
  if (fs.existsSync(stateFile) && seed.projects.some((p) => p.faults)) {
    const state = readState(stateFile);
    for (const project of state.projects) project.faults = { ...(seed.projects.find((p) => p.id === project.id)?.faults ?? project.faults) };
    writeState(stateFile, state);
  }
  return startMetalEmulator({ dir, seed, token: randomBytes(24).toString("hex") });
}

/** How the rehearsal's Metal departs from the settings, for tests of the app's guards. */
export interface RehearsalMetalOptions {
  readonly faults?: SeedFaults;
  /**
   * Seconds a device stays provisioning.
   * @default 1
   */
  readonly provisioningSeconds?: number;
}

/** The organization the rehearsal's project belongs to: any UUID serves, the app never reads it. */
export const REHEARSAL_ORGANIZATION_ID = "6f0d4e38-9a4c-4c39-8a2e-5b0ee0c5f3a1";

/**
 * The emulator's seed for `settings`. The BGP password, when the settings use one, is
 * the one the deploy passes (TF_VAR_metal_bgp_md5_password): the emulator's project then
 * matches what the plan checks, and the value only ever sits in the emulator's state.
 */
export function projectSeed(settings: ClusterSettings, env: NodeJS.ProcessEnv, options: RehearsalMetalOptions = {}): MetalSeed {
  const md5 = settings.bgpMd5Enabled ? env.TF_VAR_metal_bgp_md5_password : undefined;
  if (settings.bgpMd5Enabled && !md5) throw new Error("METAL_BGP_MD5_ENABLED=true: the rehearsal needs TF_VAR_metal_bgp_md5_password, as a deploy does");
  return {
    provisioningSeconds: options.provisioningSeconds ?? 1,
    projects: [
      {
        id: settings.metalProjectId,
        name: `${settings.clusterName} (rehearsal)`,
        organizationId: REHEARSAL_ORGANIZATION_ID,
        ipv6Blocks: { [settings.metro]: settings.addressPlan.block.toString() },
        // Room for the largest cluster the settings allow (5 + 100 nodes, a /31 each).
        privateIpv4Block: "10.88.0.0/23",
        bgpConfig: settings.manageProjectBgp ? undefined : { asn: settings.bgpAsn, md5 },
        faults: options.faults,
      },
    ],
  };
}

/** A device as the cluster rehearsal boots it: what Metal holds for it. */
export interface RehearsalDevice {
  readonly id: string;
  readonly hostname: string;
  readonly tags: readonly string[];
  /** Exactly what the provider sent Metal. */
  readonly userData: string;
  readonly publicIpv6: StoredAddress;
  readonly privateIpv4: StoredAddress;
  readonly publicIpv4: StoredAddress;
}

function address(device: StoredDevice, family: 4 | 6, isPublic: boolean): StoredAddress {
  const found = device.addresses.find((a) => a.family === family && a.public === isPublic);
  if (!found) throw new Error(`Metal gave ${device.hostname} no ${isPublic ? "public" : "private"} IPv${family} address`);
  return found;
}

/** The project's devices, by hostname. */
export function rehearsalDevices(state: MetalState): RehearsalDevice[] {
  return [...state.devices]
    .sort((a, b) => a.hostname.localeCompare(b.hostname))
    .map((d) => ({
      id: d.id,
      hostname: d.hostname,
      tags: d.tags,
      userData: d.userData ?? "",
      publicIpv6: address(d, 6, true),
      privateIpv4: address(d, 4, false),
      publicIpv4: address(d, 4, true),
    }));
}

/** A node's role as its user data is budgeted: the first control plane carries the most. */
export type UserDataRole = "first control plane" | "control plane" | "worker";

/** A device's user data as the emulator reports it: its size, never its content. */
export interface ReportedUserData {
  readonly hostname: string;
  readonly role: UserDataRole;
  readonly bytes: number;
}

/**
 * The size of each device's user data as the emulator reports it (its request log,
 * emulators/metal/request-log.ts), with the device's role: its `k8s-role-*` tag, and
 * the first control plane by the name the app gives it.
 */
export function reportedUserData(metal: MetalApi, clusterName: string): ReportedUserData[] {
  const tags = new Map(metal.state().devices.map((d) => [d.id, d.tags]));
  const first = nodeHostname(clusterName, "control-plane", 0);
  return metal.reportedDevices().map((d) => ({
    hostname: d.hostname,
    role: tags.get(d.id)?.includes("k8s-role-worker") ? "worker" : d.hostname === first ? "first control plane" : "control plane",
    bytes: d.userDataBytes,
  }));
}

/** The largest user data of each role, in the order first control plane, control plane, worker. */
export function largestPerRole(reported: readonly ReportedUserData[]): Map<UserDataRole, number> {
  const largest = new Map<UserDataRole, number>();
  for (const role of ["first control plane", "control plane", "worker"] as const) {
    const sizes = reported.filter((r) => r.role === role).map((r) => r.bytes);
    if (sizes.length > 0) largest.set(role, Math.max(...sizes));
  }
  return largest;
}
