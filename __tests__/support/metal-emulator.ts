// Helpers for the Metal emulator tests: real clients (curl) through the emulator's
// CONNECT proxy and TLS, and from chosen source addresses to its metadata service.
import { spawnSync } from "node:child_process";
import type { MetalEmulatorHandle, MetalSeed } from "../../emulators/metal";

export const TOKEN = "emulator-test-token-7f3c9a";
export const MD5 = "bgp-password-4d1e2b";

/** Project with local BGP and a password; its private /25 is on loopback so tests can call from a device's address. */
export const BGP_PROJECT = "6f1c2d3e-4a5b-4c6d-8e7f-0a1b2c3d4e5f";
/** Project without BGP: sessions are refused until the test enables it. */
export const PLAIN_PROJECT = "7a2b3c4d-5e6f-4a7b-9c8d-1e2f3a4b5c6d";
/** Project with both seed faults. */
export const FAULTY_PROJECT = "8b3c4d5e-6f7a-4b8c-ad9e-2f3a4b5c6d7e";
/** Project whose devices named `odd-one` only go outside zone 0. */
export const MISPLACING_PROJECT = "0d5e6f7a-8b9c-4dae-8f1a-4b5c6d7e8f9a";
const ORGANIZATION = "9c4d5e6f-7a8b-4c9d-be0f-3a4b5c6d7e8f";

export const seed: MetalSeed = {
  provisioningSeconds: 0.5,
  projects: [
    {
      id: BGP_PROJECT,
      name: "fabric",
      organizationId: ORGANIZATION,
      bgpConfig: { asn: 65000, md5: MD5 },
      ipv6Blocks: { da: "2001:db8:4641:c500::/56" },
      privateIpv4Block: "127.77.0.0/25",
    },
    { id: PLAIN_PROJECT, name: "plain", organizationId: ORGANIZATION, ipv6Blocks: { da: "2001:db8:aa00:100::/56", sv: "2001:db8:bb00:200::/56" } },
    {
      id: FAULTY_PROJECT,
      name: "faulty",
      organizationId: ORGANIZATION,
      ipv6Blocks: { da: "2001:db8:cc00:300::/56" },
      faults: { devicesOutsideZone0: true, reportedIpv6Blocks: { da: "2001:db8:dd00:400::/56" } },
    },
    { id: MISPLACING_PROJECT, name: "misplacing", organizationId: ORGANIZATION, ipv6Blocks: { da: "2001:db8:ee00:500::/56" }, faults: { devicesOutsideZone0: ["odd-one"] } },
  ],
};

export interface ApiReply {
  readonly status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly body: any;
  readonly headers: Record<string, string[]>;
  readonly curlStatus: number | null;
  readonly stderr: string;
}

const META = "\n--curl-meta--\n";

/** One HTTPS request to api.equinix.com through the emulator's proxy, trusting only its CA. */
export function api(em: MetalEmulatorHandle, method: string, path: string, options: { token?: string | null; body?: unknown } = {}): ApiReply {
  const token = options.token === undefined ? TOKEN : options.token;
  const args = ["-sS", "--noproxy", "", "--proxy", em.proxyUrl!, "--cacert", em.caFile!, "-X", method, "-w", `${META}%{http_code}\n%{header_json}`];
  if (token !== null) args.push("-H", `X-Auth-Token: ${token}`);
  if (options.body !== undefined) args.push("-H", "Content-Type: application/json", "--data-binary", "@-");
  args.push(`https://api.equinix.com/metal/v1${path}`);
  const run = spawnSync("curl", args, { encoding: "utf8", input: options.body === undefined ? undefined : JSON.stringify(options.body), env: { PATH: process.env.PATH } });
  const [text, meta = ""] = run.stdout.split(META);
  const [code, ...headerLines] = meta.split("\n");
  return {
    status: Number(code),
    body: text.trim() === "" ? undefined : JSON.parse(text),
    headers: headerLines.join("\n").trim() ? JSON.parse(headerLines.join("\n")) : {},
    curlStatus: run.status,
    stderr: run.stderr,
  };
}

/** GET on the metadata service from `source` (curl --interface binds the client's address). */
export function metadata(em: MetalEmulatorHandle, path: "/metadata" | "/userdata", source: string): { status: number; text: string } {
  const run = spawnSync("curl", ["-sS", "--noproxy", "*", "--interface", source, "-w", `${META}%{http_code}`, `${em.metadataUrl}${path}`], { encoding: "utf8", env: { PATH: process.env.PATH } });
  const [text, code] = run.stdout.split(META);
  if (run.status !== 0) throw new Error(`curl failed: ${run.stderr}`);
  return { status: Number(code), text };
}

export const ignition = (marker: string) => JSON.stringify({ ignition: { version: "3.3.0" }, storage: { files: [{ path: "/etc/marker", contents: { source: `data:,${marker}` } }] } });

export function createDevice(em: MetalEmulatorHandle, projectId: string, hostname: string, extra: Record<string, unknown> = {}): ApiReply {
  return api(em, "POST", `/projects/${projectId}/devices`, { body: { hostname, plan: "c3.small.x86", operating_system: "flatcar_stable", metro: "da", billing_cycle: "hourly", ...extra } });
}

/** Polls the device until it is active, as the provider does (helpers_device.go waitForDeviceAttribute), with a short period. */
export function waitActive(em: MetalEmulatorHandle, id: string, timeoutMs = 10000): ApiReply {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const reply = api(em, "GET", `/devices/${id}?include=project`);
    if (reply.body?.state === "active" || Date.now() > until) return reply;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
  }
}

/**
 * A root module declaring what the app's constructs do: the project adopted with an
 * import block and local BGP, the project and its precreated /56 read, a device booted
 * from Ignition and its IPv6 BGP session.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function endToEndRoot(projectId: string, userData: string): any {
  return {
    terraform: { required_providers: { metal: { source: "equinix/metal", version: "3.3.0" } } },
    provider: { metal: {} },
    import: [{ to: "metal_project.project", id: projectId }],
    data: {
      metal_project: { project: { project_id: projectId } },
      metal_precreated_ip_block: { ipv6: { project_id: projectId, metro: "da", address_family: 6, public: true } },
    },
    resource: {
      metal_project: {
        project: {
          name: "${data.metal_project.project.name}",
          bgp_config: { deployment_type: "local", asn: 65000 },
          lifecycle: { prevent_destroy: true, ignore_changes: ["organization_id", "payment_method_id", "backend_transfer"] },
        },
      },
      metal_device: {
        node: {
          project_id: projectId,
          hostname: "e2e-cp-0",
          metro: "da",
          plan: "c3.small.x86",
          operating_system: "flatcar_stable",
          billing_cycle: "hourly",
          user_data: userData,
          tags: ["v6fabric"],
          lifecycle: { ignore_changes: ["user_data"] },
        },
      },
      metal_bgp_session: { ipv6: { device_id: "${metal_device.node.id}", address_family: "ipv6", depends_on: ["metal_project.project"] } },
    },
    output: {
      ipv6: { value: "${metal_device.node.access_public_ipv6}" },
      private_ipv4: { value: "${metal_device.node.access_private_ipv4}" },
      public_ipv4: { value: "${metal_device.node.access_public_ipv4}" },
      block: { value: "${data.metal_precreated_ip_block.ipv6.cidr_notation}" },
      session_status: { value: "${metal_bgp_session.ipv6.status}" },
    },
  };
}
