/**
 * Metal API JSON for the stored objects, in the shapes packngo 0.25.0 decodes (its struct
 * tags in devices.go, ip.go, projects.go, bgp_sessions.go, bgp_configs.go) and the fields
 * equinix/metal 3.3.0 reads. Objects not asked for with `include=` are references
 * (`{"href": …}`), as Metal returns them (packngo issues 122/123 show such bodies).
 */
import { createHash } from "node:crypto";
import { format6Long, netmask, parse6, parseBlock } from "./addresses";
import { MetalState, StoredAddress, StoredBgpConfig, StoredBgpSession, StoredDevice, StoredProject, StoredReservation } from "./state";

type Json = Record<string, unknown>;

export const API_PREFIX = "/metal/v1";

/** The routers' ASN and peers of local BGP in current sites (facts.md: Talos and network-helpers fixtures). */
export const METAL_PEER_ASN = 65530;
export const METAL_PEERS_IPV6 = ["fc00::e", "fc00::f"] as const;
export const METAL_PEERS_IPV4 = ["169.254.255.1", "169.254.255.2"] as const;

const href = (kind: string, id: string) => `${API_PREFIX}/${kind}/${id}`;
const ref = (kind: string, id: string) => ({ href: href(kind, id) });

/** A UUID-shaped ID derived from a name, so metros and facilities keep their IDs across restarts. */
export function stableId(name: string): string {
  const h = createHash("sha256").update(name).digest("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

const METRO_NAMES: Record<string, string> = {
  am: "Amsterdam",
  at: "Atlanta",
  ch: "Chicago",
  da: "Dallas",
  dc: "Washington DC",
  fr: "Frankfurt",
  ld: "London",
  ny: "New York",
  sv: "Silicon Valley",
  sy: "Sydney",
  ty: "Tokyo",
};

export function metroJson(code: string): Json {
  return { id: stableId(`metro:${code}`), code, name: METRO_NAMES[code] ?? code.toUpperCase(), country: "US" };
}

/** Metal places a device in one facility of the metro; the emulator names it `<metro>11`. */
export function facilityFor(metro: string): string {
  return `${metro}11`;
}

function facilityJson(code: string, metro: string): Json {
  return {
    id: stableId(`facility:${code}`),
    code,
    name: `${METRO_NAMES[metro] ?? metro} ${code}`,
    features: ["baremetal", "bgp", "ipv6"],
    metro: metroJson(metro),
    href: href("facilities", stableId(`facility:${code}`)),
  };
}

export function projectJson(state: MetalState, p: StoredProject, includes: ReadonlySet<string> = new Set()): Json {
  return {
    id: p.id,
    name: p.name,
    created_at: p.createdAt,
    updated_at: p.updatedAt,
    href: href("projects", p.id),
    // The provider takes path.Base of these hrefs for organization_id and payment_method_id.
    organization: includes.has("organization") ? { id: p.organizationId, href: href("organizations", p.organizationId) } : ref("organizations", p.organizationId),
    payment_method: ref("payment-methods", p.paymentMethodId),
    members: [],
    memberships: [],
    invitations: [],
    devices: state.devices.filter((d) => d.projectId === p.id).map((d) => ref("devices", d.id)),
    ssh_keys: [],
    volumes: [],
    bgp_config: p.bgpConfig ? ref("bgp-configs", p.bgpConfig.id) : undefined,
    backend_transfer_enabled: p.backendTransfer,
    customdata: {},
    network_status: {},
  };
}

export function bgpConfigJson(state: MetalState, p: StoredProject, c: StoredBgpConfig): Json {
  const deviceIds = new Set(state.devices.filter((d) => d.projectId === p.id).map((d) => d.id));
  return {
    id: c.id,
    status: c.status,
    deployment_type: c.deploymentType,
    asn: c.asn,
    route_object: null,
    md5: c.md5 ?? null,
    max_prefix: c.maxPrefix,
    project: ref("projects", p.id),
    created_at: c.createdAt,
    requested_at: c.requestedAt,
    sessions: state.bgpSessions.filter((s) => deviceIds.has(s.deviceId)).map((s) => ref("bgp/sessions", s.id)),
    ranges: [],
    href: href("bgp-configs", c.id),
  };
}

/** The parent block of a device address: network and netmask zero-padded for IPv6, as in the metadata fixture. */
function parentBlockJson(state: MetalState, a: StoredAddress): Json {
  const r = state.reservations.find((x) => x.id === a.reservationId);
  if (!r) return { network: a.network, netmask: a.netmask, cidr: a.cidr };
  const v6 = a.family === 6;
  return { network: v6 ? format6Long(parse6(r.network)) : r.network, netmask: netmask(a.family, r.cidr), cidr: r.cidr, href: href("ips", r.id) };
}

/** What the API's `ip_addresses[]` and the metadata's `network.addresses[]` say alike of a device address. */
export function addressFields(a: StoredAddress): Json {
  return {
    id: a.id,
    address_family: a.family,
    netmask: a.netmask,
    created_at: a.createdAt,
    public: a.public,
    cidr: a.cidr,
    management: true,
    enabled: true,
    network: a.network,
    address: a.address,
    gateway: a.gateway,
  };
}

/** One `ip_addresses[]` entry: `management` makes the provider take it for access_public_ipv6 etc. (helpers_device.go getNetworkInfo). */
export function assignmentJson(state: MetalState, device: StoredDevice, a: StoredAddress): Json {
  return {
    ...addressFields(a),
    manageable: true,
    global_ip: false,
    href: href("ips", a.id),
    parent_block: parentBlockJson(state, a),
    assigned_to: ref("devices", device.id),
    metro: metroJson(device.metro),
  };
}

export function macFor(deviceId: string, port: number): string {
  const h = createHash("sha256").update(`${deviceId}:${port}`).digest("hex");
  return ["0c", h.slice(0, 2), h.slice(2, 4), h.slice(4, 6), h.slice(6, 8), h.slice(8, 10)].join(":");
}

/** Two bonded NICs in bond0: the provider derives network_type `layer3` from them (packngo devices.go GetNetworkType). */
function portsJson(device: StoredDevice): Json[] {
  const bondId = stableId(`port:${device.id}:bond0`);
  return [
    { id: bondId, type: "NetworkBondPort", name: "bond0", data: { bonded: true }, network_type: "layer3", href: href("ports", bondId) },
    ...[0, 1].map((i) => {
      const id = stableId(`port:${device.id}:eth${i}`);
      return { id, type: "NetworkPort", name: `eth${i}`, data: { mac: macFor(device.id, i), bonded: true }, bond: { id: bondId, name: "bond0" }, href: href("ports", id) };
    }),
  ];
}

export function osJson(slug: string): Json {
  const [distro, ...version] = slug.split("_");
  return { slug, name: slug, distro, version: version.join("_"), provisionable_on: [] };
}

export function deviceJson(state: MetalState, device: StoredDevice, includes: ReadonlySet<string> = new Set(), excludes: ReadonlySet<string> = new Set()): Json {
  const project = state.projects.find((p) => p.id === device.projectId)!;
  const body: Json = {
    id: device.id,
    short_id: device.id.slice(0, 8),
    href: href("devices", device.id),
    hostname: device.hostname,
    description: device.description ?? null,
    state: device.state,
    created_at: device.createdAt,
    updated_at: device.updatedAt,
    locked: device.locked,
    billing_cycle: device.billingCycle,
    tags: device.tags,
    ip_addresses: device.addresses.map((a) => assignmentJson(state, device, a)),
    volumes: [],
    operating_system: osJson(device.operatingSystem),
    plan: { id: stableId(`plan:${device.plan}`), slug: device.plan, name: device.plan, class: device.plan },
    // packngo always asks for the facility, and the provider reads its code unchecked.
    facility: facilityJson(device.facility, device.metro),
    metro: metroJson(device.metro),
    project: includes.has("project") ? projectJson(state, project) : ref("projects", project.id),
    userdata: device.userData ?? "",
    customdata: device.customData ? safeJson(device.customData) : {},
    always_pxe: device.alwaysPxe,
    ipxe_script_url: device.ipxeScriptUrl ?? null,
    network_ports: portsJson(device),
    ssh_keys: [],
    spot_instance: false,
  };
  for (const key of excludes) delete body[key];
  return body;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return {};
  }
}

export function bgpSessionJson(state: MetalState, s: StoredBgpSession, includes: ReadonlySet<string> = new Set()): Json {
  const device = state.devices.find((d) => d.id === s.deviceId);
  return {
    id: s.id,
    status: s.status,
    learned_routes: [],
    address_family: s.addressFamily,
    // The provider reads device.id, and asks for include=device (resource_metal_bgp_session.go).
    device: includes.has("device") && device ? deviceJson(state, device) : ref("devices", s.deviceId),
    href: href("bgp/sessions", s.id),
    default_route: s.defaultRoute,
    created_at: s.createdAt,
    updated_at: s.createdAt,
  };
}

/** The block a reservation shows: the seeded one unless the `reportedIpv6Blocks` fault says otherwise. */
function reportedBlock(project: StoredProject | undefined, r: StoredReservation): { network: string; cidr: number } {
  const fault = r.type === "public_ipv6" && r.metro ? project?.faults.reportedIpv6Blocks?.[r.metro] : undefined;
  if (!fault) return { network: r.network, cidr: r.cidr };
  const parsed = parseBlock(fault, 6, "reportedIpv6Blocks");
  return { network: fault.split("/")[0], cidr: parsed.cidr };
}

export function reservationJson(state: MetalState, r: StoredReservation): Json {
  const project = state.projects.find((p) => p.id === r.projectId);
  const family = r.type === "public_ipv6" ? 6 : 4;
  const { network, cidr } = reportedBlock(project, r);
  const assignments = state.devices.flatMap((d) => d.addresses.filter((a) => a.reservationId === r.id).map((a) => ref("ips", a.id)));
  return {
    id: r.id,
    address_family: family,
    netmask: netmask(family, cidr),
    created_at: r.createdAt,
    details: null,
    tags: [],
    public: r.type !== "private_ipv4",
    cidr,
    // Blocks Metal makes itself for a project's devices are management blocks.
    management: true,
    manageable: true,
    enabled: true,
    global_ip: false,
    customdata: {},
    project: ref("projects", r.projectId),
    project_lite: ref("projects", r.projectId),
    assignments,
    network,
    address: network,
    gateway: network,
    href: href("ips", r.id),
    type: r.type,
    state: "created",
    available: "",
    addon: false,
    bill: false,
    // The precreated-block data source matches on metro.code (datasource_metal_precreated_ip_block.go).
    metro: r.metro ? metroJson(r.metro) : undefined,
    facility: r.metro ? facilityJson(facilityFor(r.metro), r.metro) : undefined,
  };
}

/** Device BGP neighbours: one per session (API `/devices/{id}/bgp/neighbors` and metadata `bgp_neighbors`). */
export function bgpNeighborsJson(state: MetalState, device: StoredDevice): Json[] {
  const project = state.projects.find((p) => p.id === device.projectId);
  const config = project?.bgpConfig;
  if (!project || !config) return [];
  const md5 = config.md5 ?? "";
  return state.bgpSessions
    .filter((s) => s.deviceId === device.id)
    .sort((a, b) => (a.addressFamily < b.addressFamily ? -1 : 1))
    .map((s) => {
      const v6 = s.addressFamily === "ipv6";
      const address = device.addresses.find((a) => (v6 ? a.family === 6 : a.family === 4 && !a.public));
      // Local BGP accepts more-specifics of the project's blocks: the /56 for IPv6, the public IPv4 blocks for IPv4.
      const routesIn = v6
        ? [{ route: project.ipv6Blocks[device.metro], exact: false }]
        : state.reservations.filter((r) => r.projectId === project.id && r.type === "public_ipv4" && r.metro === device.metro).map((r) => ({ route: `${r.network}/${r.cidr}`, exact: false }));
      return {
        address_family: v6 ? 6 : 4,
        customer_as: config.asn,
        customer_ip: address?.address ?? "",
        md5_enabled: md5 !== "",
        md5_password: md5 === "" ? null : md5,
        multihop: true,
        peer_as: METAL_PEER_ASN,
        peer_ips: [...(v6 ? METAL_PEERS_IPV6 : METAL_PEERS_IPV4)],
        routes_in: routesIn,
        routes_out: [],
      };
    });
}
