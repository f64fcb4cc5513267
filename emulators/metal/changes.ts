/**
 * What the API's POST, PUT and PATCH requests change in the state, with Metal's checks
 * (422 with a message for a request Metal would refuse).
 */
import { randomUUID } from "node:crypto";
import { facilityFor, projectJson } from "./render";
import { allocateAddresses, AllocationError, MetalState, StoredBgpSession, StoredDevice, StoredProject } from "./state";
import { userDataProblem } from "./user-data";

type Json = Record<string, unknown>;

/** An API error: Metal answers `{"errors": [...]}` (packngo.go ErrorResponse). */
export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export const notFound = () => new ApiError(404, "Not found");
export const unprocessable = (message: string) => new ApiError(422, message);

export function findProject(state: MetalState, id: string): StoredProject {
  const project = state.projects.find((p) => p.id === id);
  if (!project) throw notFound();
  return project;
}

function str(body: Json, key: string, required: boolean): string | undefined {
  const value = body[key];
  if (value === undefined || value === null || value === "") {
    if (required) throw unprocessable(`${key} is required`);
    return undefined;
  }
  if (typeof value !== "string") throw unprocessable(`${key} must be a string`);
  return value;
}

function strings(body: Json, key: string): string[] | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) throw unprocessable(`${key} must be a list of strings`);
  return value as string[];
}

function checkUserData(text: string | undefined): void {
  const problem = text === undefined ? undefined : userDataProblem(text);
  if (problem) throw unprocessable(problem);
}

export function createDevice(state: MetalState, project: StoredProject, body: Json): StoredDevice {
  const plan = str(body, "plan", true)!;
  const operatingSystem = str(body, "operating_system", true)!;
  const facilities = strings(body, "facility") ?? [];
  const metro = (str(body, "metro", false) ?? facilities.find((f) => f !== "any")?.slice(0, 2) ?? "").toLowerCase();
  if (metro === "") throw unprocessable("metro or facility is required");
  if (!project.ipv6Blocks[metro]) throw unprocessable(`The Metal emulator has no IPv6 block for metro ${metro} in project ${project.id}: add it to the seed's ipv6Blocks`);
  if (Array.isArray(body.ip_addresses) && body.ip_addresses.length > 0)
    throw unprocessable("The Metal emulator does not emulate custom ip_addresses; leave them out for the default public IPv4, private IPv4 and public IPv6");
  const userData = str(body, "userdata", false);
  checkUserData(userData);
  const now = new Date();
  const id = randomUUID();
  const device: StoredDevice = {
    id,
    projectId: project.id,
    hostname: str(body, "hostname", false) ?? `emulated-${id.slice(0, 8)}`,
    description: str(body, "description", false),
    metro,
    facility: facilityFor(metro),
    plan,
    operatingSystem,
    billingCycle: str(body, "billing_cycle", false) ?? "hourly",
    tags: strings(body, "tags") ?? [],
    userData,
    customData: str(body, "customdata", false),
    projectSshKeys: strings(body, "project_ssh_keys") ?? [],
    alwaysPxe: body.always_pxe === true,
    ipxeScriptUrl: str(body, "ipxe_script_url", false),
    locked: false,
    state: "provisioning",
    activeAt: new Date(now.getTime() + state.provisioningMs).toISOString(),
    createdAt: now.toISOString(),
    updatedAt: now.toISOString(),
    addresses: [],
  };
  try {
    device.addresses = allocateAddresses(state, project, device, now.toISOString());
  } catch (error) {
    if (error instanceof AllocationError) throw unprocessable(error.message);
    throw error;
  }
  state.devices.push(device);
  return device;
}

/** The fields of packngo's DeviceUpdateRequest, and `locked` (its Lock/Unlock PATCH). */
export function updateDevice(device: StoredDevice, body: Json): void {
  const hostname = str(body, "hostname", false);
  if (hostname !== undefined) device.hostname = hostname;
  if (typeof body.description === "string") device.description = body.description;
  if (typeof body.userdata === "string") {
    checkUserData(body.userdata);
    device.userData = body.userdata;
  }
  if (typeof body.customdata === "string") device.customData = body.customdata;
  if (typeof body.locked === "boolean") device.locked = body.locked;
  const tags = strings(body, "tags");
  if (tags !== undefined) device.tags = tags;
  if (typeof body.always_pxe === "boolean") device.alwaysPxe = body.always_pxe;
  if (typeof body.ipxe_script_url === "string") device.ipxeScriptUrl = body.ipxe_script_url;
  device.updatedAt = new Date().toISOString();
}

export function deviceAction(state: MetalState, device: StoredDevice, body: Json): void {
  const type = str(body, "type", true);
  if (!["reinstall", "reboot", "power_on", "power_off", "rescue"].includes(type!)) throw unprocessable(`Unknown action type ${type}`);
  if (type === "reinstall") {
    device.state = "reinstalling";
    device.activeAt = new Date(Date.now() + state.provisioningMs).toISOString();
    device.updatedAt = new Date().toISOString();
  }
}

export function updateProject(state: MetalState, project: StoredProject, body: Json): Json {
  const name = str(body, "name", false);
  if (name !== undefined) project.name = name;
  const payment = str(body, "payment_method_id", false);
  if (payment !== undefined) project.paymentMethodId = payment;
  if (typeof body.backend_transfer_enabled === "boolean") project.backendTransfer = body.backend_transfer_enabled;
  project.updatedAt = new Date().toISOString();
  return projectJson(state, project);
}

/** POST bgp-configs: local BGP is enabled at once; global BGP waits for Metal's review (provider docs). */
export function setBgpConfig(project: StoredProject, body: Json): void {
  const deploymentType = str(body, "deployment_type", true)!;
  if (deploymentType !== "local" && deploymentType !== "global") throw unprocessable("deployment_type must be local or global");
  const asn = body.asn;
  if (typeof asn !== "number" || !Number.isInteger(asn) || asn <= 0) throw unprocessable("asn is required");
  const now = new Date().toISOString();
  const md5 = str(body, "md5", false);
  project.bgpConfig = {
    id: project.bgpConfig?.id ?? randomUUID(),
    deploymentType,
    asn,
    md5,
    status: deploymentType === "local" ? "enabled" : "requested",
    maxPrefix: project.bgpConfig?.maxPrefix ?? 10,
    createdAt: project.bgpConfig?.createdAt ?? now,
    requestedAt: now,
  };
}

export function createBgpSession(state: MetalState, device: StoredDevice, body: Json): StoredBgpSession {
  const family = str(body, "address_family", true);
  if (family !== "ipv4" && family !== "ipv6") throw unprocessable("address_family must be ipv4 or ipv6");
  const project = findProject(state, device.projectId);
  if (!project.bgpConfig || project.bgpConfig.status !== "enabled") throw unprocessable("BGP is not enabled for this project");
  if (state.bgpSessions.some((s) => s.deviceId === device.id && s.addressFamily === family)) throw unprocessable(`Address family ${family} already has a BGP session on this device`);
  // No router runs, so Metal would never learn the session's state.
  const session: StoredBgpSession = { id: randomUUID(), deviceId: device.id, addressFamily: family, defaultRoute: body.default_route === true, status: "unknown", createdAt: new Date().toISOString() };
  state.bgpSessions.push(session);
  return session;
}
