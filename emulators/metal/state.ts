/**
 * The emulator's model: the seed a test or the rehearsal writes, the state kept in one
 * JSON file (written atomically on every change, so it survives Terraform runs and
 * restarts), and how a new device's addresses are allocated.
 */
import { randomUUID } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { format6, parse4, ParsedBlock, parseBlock, pointToPoint, pointToPointCapacity, PointToPoint } from "./addresses";

/** What the emulated Metal account holds at first start. */
export interface MetalSeed {
  readonly projects: readonly SeedProject[];
  /**
   * Seconds a new device stays `provisioning` before it is `active`.
   * @default 1.5
   */
  readonly provisioningSeconds?: number;
  /**
   * Where devices' public IPv4 /31s come from (a documentation range: nothing real).
   * @default "203.0.113.0/24"
   */
  readonly publicIpv4Pool?: string;
}

export interface SeedProject {
  readonly id: string;
  readonly name: string;
  readonly organizationId: string;
  /** @default - a random UUID, fixed at first start */
  readonly paymentMethodId?: string;
  /** Local BGP already enabled on the project. @default - none: sessions are refused until one is set */
  readonly bgpConfig?: SeedBgpConfig;
  /** The project's precreated public IPv6 /56 per metro code (e.g. `{ "da": "2604:1380:4641:c500::/56" }`). */
  readonly ipv6Blocks: Readonly<Record<string, string>>;
  /** The project's private IPv4 /25. @default "10.88.<index>.0/25" */
  readonly privateIpv4Block?: string;
  readonly faults?: SeedFaults;
}

export interface SeedBgpConfig {
  readonly asn: number;
  /** The BGP password. @default - none */
  readonly md5?: string;
  /** @default "local" */
  readonly deploymentType?: "local" | "global";
  /** @default 10 (Metal's default route limit per server) */
  readonly maxPrefix?: number;
  /** @default "enabled" */
  readonly status?: string;
}

/** Deliberate departures from Metal's usual behaviour, for tests of the app's guards. */
export interface SeedFaults {
  /**
   * Devices get their IPv6 /127 from the /56's last /64 instead of the first ("zone 0" is
   * the first /60): every new device (true), or only new devices with one of these
   * hostnames (so a test can misplace the nodes a larger cluster adds, and no other).
   */
  readonly devicesOutsideZone0?: boolean | readonly string[];
  /** The precreated IPv6 block the API reports per metro, instead of the seeded one. */
  readonly reportedIpv6Blocks?: Readonly<Record<string, string>>;
}

export interface StoredBgpConfig {
  id: string;
  deploymentType: string;
  asn: number;
  md5?: string;
  status: string;
  maxPrefix: number;
  createdAt: string;
  requestedAt: string;
}

export interface StoredProject {
  id: string;
  name: string;
  organizationId: string;
  paymentMethodId: string;
  backendTransfer: boolean;
  createdAt: string;
  updatedAt: string;
  bgpConfig?: StoredBgpConfig;
  privateIpv4Block: string;
  ipv6Blocks: Record<string, string>;
  faults: SeedFaults;
}

export type ReservationType = "public_ipv6" | "private_ipv4" | "public_ipv4";

/** An IP block of the project (`GET /projects/{id}/ips`). */
export interface StoredReservation {
  id: string;
  projectId: string;
  type: ReservationType;
  metro?: string;
  network: string;
  cidr: number;
  createdAt: string;
  /** Set for the per-device public IPv4 /31, which goes with its device. */
  deviceId?: string;
}

/** An address assigned to a device (`ip_addresses[]`). */
export interface StoredAddress extends PointToPoint {
  id: string;
  family: 4 | 6;
  public: boolean;
  reservationId: string;
  createdAt: string;
}

export interface StoredDevice {
  id: string;
  projectId: string;
  hostname: string;
  description?: string;
  metro: string;
  facility: string;
  plan: string;
  operatingSystem: string;
  billingCycle: string;
  tags: string[];
  /** Byte-identical to what the client sent. */
  userData?: string;
  customData?: string;
  projectSshKeys: string[];
  alwaysPxe: boolean;
  ipxeScriptUrl?: string;
  locked: boolean;
  state: string;
  /** When `state` becomes `active` (ISO time). */
  activeAt: string;
  createdAt: string;
  updatedAt: string;
  addresses: StoredAddress[];
}

export interface StoredBgpSession {
  id: string;
  deviceId: string;
  addressFamily: "ipv4" | "ipv6";
  defaultRoute: boolean;
  status: string;
  createdAt: string;
}

export interface MetalState {
  version: 1;
  provisioningMs: number;
  publicIpv4Pool: string;
  projects: StoredProject[];
  devices: StoredDevice[];
  bgpSessions: StoredBgpSession[];
  reservations: StoredReservation[];
  /** Next /127 or /31 index per allocation pool; never decreases, so a deleted device's address is not handed out again. */
  nextIndex: Record<string, number>;
}

const UUID = /^[a-fA-F0-9]{8}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{12}$/;

export function stateFromSeed(seed: MetalSeed, now = new Date()): MetalState {
  if (!seed || !Array.isArray(seed.projects) || seed.projects.length === 0) throw new Error("seed: `projects` must list at least one project");
  const created = now.toISOString();
  const pool = seed.publicIpv4Pool ?? "203.0.113.0/24";
  parseBlock(pool, 4, "seed publicIpv4Pool");
  const state: MetalState = {
    version: 1,
    provisioningMs: Math.round((seed.provisioningSeconds ?? 1.5) * 1000),
    publicIpv4Pool: pool,
    projects: [],
    devices: [],
    bgpSessions: [],
    reservations: [],
    nextIndex: {},
  };
  seed.projects.forEach((p, index) => {
    const where = `seed projects[${index}]`;
    // packngo validates every project, device and session ID as a UUID before calling (utils.go ValidateUUID).
    for (const [key, value] of [
      ["id", p.id],
      ["organizationId", p.organizationId],
    ] as const) {
      if (typeof value !== "string" || !UUID.test(value)) throw new Error(`${where}.${key}=${value} is not a UUID (packngo refuses other IDs)`);
    }
    if (!p.ipv6Blocks || Object.keys(p.ipv6Blocks).length === 0) throw new Error(`${where}.ipv6Blocks must give the /56 of at least one metro`);
    const privateIpv4Block = p.privateIpv4Block ?? `10.88.${index % 256}.0/25`;
    parseBlock(privateIpv4Block, 4, `${where}.privateIpv4Block`);
    for (const [metro, block] of Object.entries(p.ipv6Blocks as Record<string, string>)) {
      const parsed = parseBlock(block, 6, `${where}.ipv6Blocks.${metro}`);
      if (parsed.cidr !== 56) throw new Error(`${where}.ipv6Blocks.${metro}=${block}: Metal gives a project a /56 per metro`);
      state.reservations.push({ id: randomUUID(), projectId: p.id, type: "public_ipv6", metro, network: format6(parsed.base), cidr: 56, createdAt: created });
    }
    const [network, cidr] = privateIpv4Block.split("/");
    state.reservations.push({ id: randomUUID(), projectId: p.id, type: "private_ipv4", network, cidr: Number(cidr), createdAt: created });
    const bgp = p.bgpConfig;
    state.projects.push({
      id: p.id,
      name: p.name,
      organizationId: p.organizationId,
      paymentMethodId: p.paymentMethodId ?? randomUUID(),
      backendTransfer: false,
      createdAt: created,
      updatedAt: created,
      bgpConfig: bgp
        ? {
            id: randomUUID(),
            deploymentType: bgp.deploymentType ?? "local",
            asn: bgp.asn,
            md5: bgp.md5,
            status: bgp.status ?? "enabled",
            maxPrefix: bgp.maxPrefix ?? 10,
            createdAt: created,
            requestedAt: created,
          }
        : undefined,
      privateIpv4Block,
      ipv6Blocks: { ...p.ipv6Blocks },
      faults: { ...(p.faults ?? {}) },
    });
  });
  return state;
}

export function readState(file: string): MetalState {
  const state = JSON.parse(fs.readFileSync(file, "utf8")) as MetalState;
  if (state.version !== 1) throw new Error(`${file}: not a Metal emulator state (version ${String(state.version)})`);
  return state;
}

/** Write to a temporary file in the same folder and rename: a reader never sees half a state. */
export function writeState(file: string, state: MetalState): void {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  fs.writeFileSync(temp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  fs.renameSync(temp, file);
}

/** Devices whose provisioning time is over become `active`; returns whether anything changed. */
export function settleDevices(state: MetalState, now = Date.now()): boolean {
  let changed = false;
  for (const device of state.devices) {
    if ((device.state === "provisioning" || device.state === "reinstalling") && Date.parse(device.activeAt) <= now) {
      device.state = "active";
      device.updatedAt = new Date(now).toISOString();
      changed = true;
    }
  }
  return changed;
}

export class AllocationError extends Error {}

/**
 * The next free point-to-point index of a pool. Indexes only grow, so a deleted device's
 * addresses are not reused; when an IPv4 pool is used up, the lowest index no live device
 * holds is taken (docs/metal-emulator.md).
 */
function nextIndex(state: MetalState, pool: string, capacity: bigint, inUse: Set<number>): number {
  let index = state.nextIndex[pool] ?? 0;
  if (BigInt(index) >= capacity) {
    index = 0;
    while (inUse.has(index)) index += 1;
    if (BigInt(index) >= capacity) throw new AllocationError(`no free address left in ${pool}`);
  } else {
    state.nextIndex[pool] = index + 1;
  }
  return index;
}

/** Indexes of the IPv4 /31s of `block` that live devices hold. */
function usedIndexes(state: MetalState, block: ParsedBlock): Set<number> {
  const used = new Set<number>();
  const size = 1n << BigInt(32 - block.cidr);
  for (const device of state.devices) {
    for (const a of device.addresses) {
      if (a.family !== 4) continue;
      const offset = parse4(a.network) - block.base;
      if (offset >= 0n && offset < size) used.add(Number(offset / 2n));
    }
  }
  return used;
}

/** Whether the `devicesOutsideZone0` fault applies to a new device named `hostname`. */
function misplaced(faults: SeedFaults, hostname: string): boolean {
  const fault = faults.devicesOutsideZone0;
  return Array.isArray(fault) ? fault.includes(hostname) : fault === true;
}

/**
 * A new device's addresses: a public IPv6 /127 from the first /64 of the project's /56 in
 * the metro (the last /64 with the `devicesOutsideZone0` fault), a private IPv4 /31 from the
 * project's /25 and a public IPv4 /31 from the pool (facts.md: a device without `ip_address`
 * blocks gets all three).
 */
export function allocateAddresses(state: MetalState, project: StoredProject, device: StoredDevice, now: string): StoredAddress[] {
  const v6Block = parseBlock(project.ipv6Blocks[device.metro], 6, "ipv6 block");
  const v6Start = misplaced(project.faults, device.hostname) ? v6Block.base + (255n << 64n) : v6Block.base;
  const v6Reservation = state.reservations.find((r) => r.projectId === project.id && r.type === "public_ipv6" && r.metro === device.metro)!;
  const v6 = pointToPoint(6, v6Start, nextIndex(state, `${project.id}/${device.metro}/ipv6`, pointToPointCapacity(v6Block, 64), new Set()));

  const privateBlock = parseBlock(project.privateIpv4Block, 4, "private IPv4 block");
  const privateReservation = state.reservations.find((r) => r.projectId === project.id && r.type === "private_ipv4")!;
  const privateIndex = nextIndex(state, `${project.id}/private_ipv4`, pointToPointCapacity(privateBlock), usedIndexes(state, privateBlock));
  const private4 = pointToPoint(4, privateBlock.base, privateIndex);

  const pool = parseBlock(state.publicIpv4Pool, 4, "public IPv4 pool");
  const publicIndex = nextIndex(state, "public_ipv4", pointToPointCapacity(pool), usedIndexes(state, pool));
  const public4 = pointToPoint(4, pool.base, publicIndex);
  // Metal makes a /31 reservation per device for its public IPv4 (its parent block is the /31 itself).
  const publicReservation: StoredReservation = {
    id: randomUUID(),
    projectId: project.id,
    type: "public_ipv4",
    metro: device.metro,
    network: public4.network,
    cidr: 31,
    createdAt: now,
    deviceId: device.id,
  };
  state.reservations.push(publicReservation);

  const assign = (p: PointToPoint, family: 4 | 6, isPublic: boolean, reservationId: string): StoredAddress => ({
    ...p,
    id: randomUUID(),
    family,
    public: isPublic,
    reservationId,
    createdAt: now,
  });
  // Metal's order: public IPv4, public IPv6, private IPv4 (packngo metadata fixture).
  return [assign(public4, 4, true, publicReservation.id), assign(v6, 6, true, v6Reservation.id), assign(private4, 4, false, privateReservation.id)];
}
