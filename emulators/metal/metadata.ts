/**
 * The metadata service: GET /metadata (JSON) and GET /userdata for the device whose
 * address is the caller's source address, as Metal's answers only the server itself
 * (facts.md). Any of the device's addresses matches, so tests can call from an IPv4
 * loopback alias and the rehearsal from a node's namespace.
 */
import * as http from "node:http";
import { canonicalAddress, format6Long, netmask, parse6 } from "./addresses";
import { addressFields, bgpNeighborsJson, macFor, osJson } from "./render";
import { MetalState, StoredDevice } from "./state";
import { RequestLog } from "./request-log";

export function findDeviceByAddress(state: MetalState, caller: string | undefined): StoredDevice | undefined {
  const address = caller === undefined ? undefined : canonicalAddress(caller);
  if (address === undefined) return undefined;
  return state.devices.find((d) => d.addresses.some((a) => canonicalAddress(a.address) === address));
}

/** The metadata JSON, in the shape of packngo's metadata fixture and facts.md. */
export function metadataDocument(state: MetalState, device: StoredDevice): Record<string, unknown> {
  const { provisionable_on: _unused, name: _name, ...os } = osJson(device.operatingSystem);
  return {
    id: device.id,
    hostname: device.hostname,
    iqn: `iqn.${device.createdAt.slice(0, 7)}.net.packet:device.${device.id.slice(0, 8)}`,
    operating_system: { ...os, license_activation: { state: "unlicensed" }, image_tag: null },
    plan: device.plan,
    class: device.plan,
    metro: device.metro,
    facility: device.facility,
    tags: device.tags,
    ssh_keys: [],
    network: {
      bonding: { mode: 4 },
      interfaces: [0, 1].map((i) => ({ name: `eth${i}`, mac: macFor(device.id, i), bond: "bond0" })),
      addresses: device.addresses.map((a) => {
        const block = state.reservations.find((r) => r.id === a.reservationId);
        return { ...addressFields(a), parent_block: block ? parentBlock(block.network, block.cidr, a.family, block.id) : undefined };
      }),
    },
    customdata: {},
    volumes: [],
    bgp_neighbors: bgpNeighborsJson(state, device),
    api_url: "https://metadata.platformequinix.com",
    phone_home_url: "http://metadata.platformequinix.com/phone-home",
    user_state_url: "http://metadata.platformequinix.com/events",
  };
}

function parentBlock(network: string, cidr: number, family: 4 | 6, id: string) {
  // Same text as the API's parent_block (render.ts); the href without the API prefix, as in the fixture.
  return { network: family === 6 ? format6Long(parse6(network)) : network, netmask: netmask(family, cidr), cidr, href: `/ips/${id}` };
}

/** The metadata service's answer to one request: status, body and content type. */
export interface MetadataAnswer {
  readonly status: number;
  readonly body: string;
  readonly type: string;
}

/**
 * What the service answers a GET of `pathname` (`/metadata` or `/userdata`) from
 * `caller`: the device that holds the caller's address, its metadata JSON or its user
 * data exactly as Metal holds it; 404 for another path or an unknown caller. One function
 * for the server and for the Terraform rehearsal's check that each device boots what
 * Terraform sent (rehearsal-terraform.test.ts), so the check reads what a node reads.
 */
export function answerMetadata(state: MetalState, caller: string | undefined, pathname: string): MetadataAnswer {
  const notFound = { status: 404, body: JSON.stringify({ error: "Not found" }), type: "application/json" };
  if (pathname !== "/metadata" && pathname !== "/userdata") return notFound;
  const device = findDeviceByAddress(state, caller);
  if (!device) return notFound;
  if (pathname === "/metadata") return { status: 200, body: JSON.stringify(metadataDocument(state, device)), type: "application/json" };
  return { status: 200, body: device.userData ?? "", type: "text/plain; charset=utf-8" };
}

export function createMetadataServer(readState: () => MetalState, log: RequestLog): http.Server {
  return http.createServer((req, res) => {
    const started = Date.now();
    const caller = req.socket.remoteAddress;
    const pathname = new URL(req.url ?? "/", "http://metadata").pathname.replace(/\/+$/, "");
    let answer: MetadataAnswer = { status: 404, body: JSON.stringify({ error: "Not found" }), type: "application/json" };
    // Any other path is a 404 without reading the state.
    if (req.method === "GET" && (pathname === "/metadata" || pathname === "/userdata")) {
      try {
        answer = answerMetadata(readState(), caller, pathname);
      } catch (error) {
        answer = { status: 500, body: JSON.stringify({ error: "The Metal emulator could not read its state" }), type: "application/json" };
        process.stderr.write(`metal emulator metadata: ${(error as Error).message}\n`);
      }
    }
    res.writeHead(answer.status, { "Content-Type": answer.type });
    res.end(answer.body);
    log({ listener: "metadata", method: req.method ?? "?", path: pathname || "/", status: answer.status, durationMs: Date.now() - started, caller });
  });
}
