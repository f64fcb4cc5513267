/**
 * The Metal API routes the equinix/metal 3.3.0 provider calls for the objects v6fabric uses
 * (docs/metal-emulator.md has the table). Each handler works on the in-memory state and
 * the store writes the state file after every change.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { ApiError, createBgpSession, createDevice, deviceAction, findProject, notFound, setBgpConfig, unprocessable, updateDevice, updateProject } from "./changes";
import type { LoggedDevice } from "./request-log";
import { bgpConfigJson, bgpNeighborsJson, bgpSessionJson, API_PREFIX, deviceJson, projectJson, reservationJson } from "./render";
import { MetalState, settleDevices, StoredDevice, writeState } from "./state";

type Json = Record<string, unknown>;

/** The state and where it is kept. */
export class StateStore {
  constructor(readonly file: string, readonly state: MetalState) {}

  save(): void {
    writeState(this.file, this.state);
  }

  /** Devices whose provisioning is over become active, and the file says so. */
  settle(): void {
    if (settleDevices(this.state)) this.save();
  }
}

interface Request {
  readonly method: string;
  readonly segments: readonly string[];
  readonly query: URLSearchParams;
  readonly body: Json;
  readonly includes: ReadonlySet<string>;
  readonly excludes: ReadonlySet<string>;
}

interface Reply {
  readonly status: number;
  readonly body?: unknown;
  /** A device the request created or updated: the request log names it and its user data's size. */
  readonly device?: StoredDevice;
}

/** What the request log notes of a device: never its user data, only the byte count. */
export function loggedDevice(device: StoredDevice): LoggedDevice {
  return { id: device.id, hostname: device.hostname, userDataBytes: Buffer.byteLength(device.userData ?? "", "utf8") };
}

/** The API's request listener; `note` adds fields to the request's log line. */
export type ApiHandler = (req: IncomingMessage, res: ServerResponse, note?: (fields: { device: LoggedDevice }) => void) => void;

/** Largest request body accepted (user data included). Metal documents no limit (facts.md). */
const MAX_BODY = 16 * 1024 * 1024;

/**
 * The request handler. Every answer carries `Content-Type: application/json` and an
 * `X-Request-Id`: the provider counts an error as Metal's own (and so a 404 as "gone")
 * only when both are there (errors.go friendlyError, isNotFound).
 */
export function createApiHandler(store: StateStore, token: string, onChange: (device?: StoredDevice) => void): ApiHandler {
  return (req, res, note) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY) chunks.push(chunk);
    });
    req.on("end", () => {
      let reply: Reply;
      try {
        if (size > MAX_BODY) throw new ApiError(413, "Request body too large");
        reply = handle(store, token, req, Buffer.concat(chunks).toString("utf8"), onChange);
      } catch (error) {
        reply = error instanceof ApiError ? { status: error.status, body: { errors: [error.message] } } : { status: 500, body: { errors: ["Internal error in the Metal emulator"] } };
        if (!(error instanceof ApiError)) process.stderr.write(`metal emulator: ${(error as Error).stack}\n`);
      }
      if (reply.device) note?.({ device: loggedDevice(reply.device) });
      res.writeHead(reply.status, { "Content-Type": "application/json; charset=utf-8", "X-Request-Id": randomUUID() });
      res.end(reply.body === undefined ? "" : JSON.stringify(reply.body));
    });
  };
}

function handle(store: StateStore, token: string, req: IncomingMessage, rawBody: string, onChange: (device?: StoredDevice) => void): Reply {
  // packngo sends the token as X-Auth-Token (packngo.go NewRequest).
  if (req.headers["x-auth-token"] !== token) throw new ApiError(401, "Invalid authentication token");
  const url = new URL(req.url ?? "/", "https://api.equinix.com");
  if (!url.pathname.startsWith(`${API_PREFIX}/`)) throw notFound();
  const segments = url.pathname
    .slice(API_PREFIX.length + 1)
    .split("/")
    .filter((s) => s !== "");
  let body: Json = {};
  if (rawBody.trim() !== "") {
    try {
      body = JSON.parse(rawBody) as Json;
    } catch {
      throw unprocessable("Request body is not valid JSON");
    }
  }
  const list = (name: string) => new Set((url.searchParams.get(name) ?? "").split(",").filter((s) => s !== ""));
  const request: Request = { method: req.method ?? "GET", segments, query: url.searchParams, body, includes: list("include"), excludes: list("exclude") };
  store.settle();
  // A read changes nothing (settle() saves its own changes): only other methods pay for
  // comparing the whole state, which with 100 devices' user data is megabytes of JSON.
  if (request.method === "GET") return route(store.state, request, onChange);
  const before = JSON.stringify(store.state);
  const reply = route(store.state, request, onChange);
  if (JSON.stringify(store.state) !== before) store.save();
  return reply;
}

function route(state: MetalState, r: Request, onChange: (device?: StoredDevice) => void): Reply {
  const [kind, id, sub, subId, extra] = r.segments;
  const m = r.method;
  if (kind === "projects" && id === undefined && m === "GET")
    return {
      status: 200,
      body: paginate(
        r,
        "projects",
        state.projects.map((p) => projectJson(state, p, r.includes))
      ),
    };
  if (kind === "projects" && id !== undefined) {
    const project = findProject(state, id);
    if (sub === undefined) {
      if (m === "GET") return { status: 200, body: projectJson(state, project, r.includes) };
      if (m === "PUT" || m === "PATCH") return { status: 200, body: updateProject(state, project, r.body) };
      if (m === "DELETE") throw unprocessable("The Metal emulator does not delete projects");
    }
    if (sub === "devices" && subId === undefined) {
      if (m === "GET")
        return {
          status: 200,
          body: paginate(
            r,
            "devices",
            state.devices.filter((d) => d.projectId === id).map((d) => deviceJson(state, d, r.includes, r.excludes))
          ),
        };
      if (m === "POST") {
        const device = createDevice(state, project, r.body);
        onChange(device);
        return { status: 201, body: deviceJson(state, device, r.includes, r.excludes), device };
      }
    }
    if (sub === "ips" && subId === undefined && m === "GET") {
      // The data sources ask for types=public_ipv4,…,public_ipv6,vrf (datasource_metal_precreated_ip_block.go).
      const types = new Set((r.query.get("types") ?? r.query.get("type") ?? "").split(",").filter((t) => t !== ""));
      const blocks = state.reservations.filter((x) => x.projectId === id && (types.size === 0 || types.has(x.type)));
      return { status: 200, body: { ip_addresses: blocks.map((x) => reservationJson(state, x)) } };
    }
    if (sub === "bgp-config" && subId === undefined && m === "GET") {
      // Without a config Metal answers 200 with an empty object; the provider then leaves
      // bgp_config empty (its "guard against an empty struct", resource_metal_project.go).
      return { status: 200, body: project.bgpConfig ? bgpConfigJson(state, project, project.bgpConfig) : {} };
    }
    if (sub === "bgp-configs" && subId === undefined && m === "POST") {
      setBgpConfig(project, r.body);
      return { status: 204 };
    }
    if (sub === "bgp" && subId === "sessions" && extra === undefined && m === "GET") {
      const ids = new Set(state.devices.filter((d) => d.projectId === id).map((d) => d.id));
      return {
        status: 200,
        body: paginate(
          r,
          "bgp_sessions",
          state.bgpSessions.filter((s) => ids.has(s.deviceId)).map((s) => bgpSessionJson(state, s, r.includes))
        ),
      };
    }
    throw notFound();
  }
  if (kind === "devices" && id !== undefined) {
    const device = state.devices.find((d) => d.id === id);
    if (!device) throw notFound();
    if (sub === undefined) {
      if (m === "GET") return { status: 200, body: deviceJson(state, device, r.includes, r.excludes) };
      if (m === "PUT" || m === "PATCH") {
        updateDevice(device, r.body);
        return { status: 200, body: deviceJson(state, device, r.includes, r.excludes), device };
      }
      if (m === "DELETE") {
        if (device.locked) throw unprocessable("Cannot delete a locked device; unlock it first");
        state.devices = state.devices.filter((d) => d.id !== id);
        state.bgpSessions = state.bgpSessions.filter((s) => s.deviceId !== id);
        state.reservations = state.reservations.filter((x) => x.deviceId !== id);
        onChange();
        return { status: 204 };
      }
    }
    if (sub === "actions" && subId === undefined && m === "POST") {
      deviceAction(state, device, r.body);
      onChange(device);
      return { status: 202 };
    }
    if (sub === "ips" && subId === undefined && m === "GET") {
      return { status: 200, body: { ip_addresses: device.addresses.map((a) => reservationOrAssignment(state, a.id)) } };
    }
    if (sub === "bgp" && subId === "sessions" && extra === undefined) {
      if (m === "GET")
        return {
          status: 200,
          body: paginate(
            r,
            "bgp_sessions",
            state.bgpSessions.filter((s) => s.deviceId === id).map((s) => bgpSessionJson(state, s, r.includes))
          ),
        };
      if (m === "POST") return { status: 201, body: bgpSessionJson(state, createBgpSession(state, device, r.body), r.includes) };
    }
    if (sub === "bgp" && subId === "neighbors" && extra === undefined && m === "GET") return { status: 200, body: { bgp_neighbors: bgpNeighborsJson(state, device) } };
    throw notFound();
  }
  if (kind === "bgp" && id === "sessions" && sub !== undefined && subId === undefined) {
    const session = state.bgpSessions.find((s) => s.id === sub);
    if (!session) throw notFound();
    if (m === "GET") return { status: 200, body: bgpSessionJson(state, session, r.includes) };
    if (m === "DELETE") {
      state.bgpSessions = state.bgpSessions.filter((s) => s.id !== sub);
      return { status: 204 };
    }
  }
  if (kind === "ips" && id !== undefined && sub === undefined && m === "GET") return { status: 200, body: reservationOrAssignment(state, id) };
  throw notFound();
}

/** Lists carry Metal's pagination `meta`; packngo follows `meta.next` (api_call_options.go nextPage). */
function paginate(r: Request, key: string, items: unknown[]): Json {
  const perPage = Math.max(1, Math.min(1000, Number(r.query.get("per_page") ?? 10) || 10));
  const lastPage = Math.max(1, Math.ceil(items.length / perPage));
  const page = Math.max(1, Number(r.query.get("page") ?? 1) || 1);
  const base = `${API_PREFIX}/${r.segments.join("/")}`;
  const link = (n: number) => ({ href: `${base}?page=${n}&per_page=${perPage}` });
  return {
    [key]: items.slice((page - 1) * perPage, page * perPage),
    meta: {
      first: link(1),
      previous: page > 1 ? link(page - 1) : undefined,
      self: link(page),
      next: page < lastPage ? link(page + 1) : undefined,
      last: link(lastPage),
      current_page: page,
      last_page: lastPage,
      total: items.length,
    },
  };
}

function reservationOrAssignment(state: MetalState, id: string): Json {
  const reservation = state.reservations.find((x) => x.id === id);
  if (reservation) return reservationJson(state, reservation);
  for (const device of state.devices) {
    const a = device.addresses.find((x) => x.id === id);
    if (a) return { ...reservationJson(state, state.reservations.find((x) => x.id === a.reservationId)!), ...assignmentFields(device, a) };
  }
  throw notFound();
}

function assignmentFields(device: StoredDevice, a: StoredDevice["addresses"][number]): Json {
  return {
    id: a.id,
    address: a.address,
    gateway: a.gateway,
    network: a.network,
    cidr: a.cidr,
    netmask: a.netmask,
    href: `${API_PREFIX}/ips/${a.id}`,
    assigned_to: { href: `${API_PREFIX}/devices/${device.id}` },
  };
}
