/**
 * The Metal API emulator (emulators/metal), tested through real clients: curl over HTTPS
 * through its CONNECT proxy, trusting only its CA, and curl bound to a device's address
 * for the metadata service. Expected addresses are literals for the seeded blocks.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { MetalEmulatorHandle, startMetalEmulator } from "../emulators/metal";
import { ProviderBuild, providerBinaryPath, terraformBinary, toolsUnavailable } from "../rehearsal/tools";
import { Terraform } from "../rehearsal/terraform";
import { api, BGP_PROJECT, createDevice, endToEndRoot, FAULTY_PROJECT, ignition, MD5, metadata, MISPLACING_PROJECT, PLAIN_PROJECT, seed, TOKEN, waitActive } from "./support/metal-emulator";

const work = fs.mkdtempSync(path.join(os.tmpdir(), "v6fabric-test-metal-emulator-"));
const dir = path.join(work, "emulator");
const running: MetalEmulatorHandle[] = [];
let em: MetalEmulatorHandle;

function start(options: Partial<Parameters<typeof startMetalEmulator>[0]> = {}): MetalEmulatorHandle {
  const handle = startMetalEmulator({ dir, token: TOKEN, ...options });
  running.push(handle);
  return handle;
}

beforeAll(() => {
  em = start({ seed });
});

afterAll(() => {
  for (const handle of running) handle.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

describe("authentication and errors", () => {
  test.each([
    ["no token", null],
    ["a wrong token", "not-the-token"],
  ])("401 with Metal's error body for %s", (_what, token) => {
    const reply = api(em, "GET", `/projects/${BGP_PROJECT}`, { token });
    expect(reply.status).toBe(401);
    expect(reply.body).toEqual({ errors: [expect.any(String)] });
  });

  test("404 and 422 carry {errors:[…]}, JSON content type and a request id (the provider's test for an API error)", () => {
    const missing = api(em, "GET", "/devices/00000000-0000-4000-8000-000000000000");
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ errors: ["Not found"] });
    expect(missing.headers["content-type"]?.[0]).toMatch(/^application\/json/);
    expect(missing.headers["x-request-id"]?.[0]).toMatch(/^[0-9a-f-]{36}$/);
    const noPlan = api(em, "POST", `/projects/${BGP_PROJECT}/devices`, { body: { operating_system: "flatcar_stable", metro: "da" } });
    expect(noPlan.status).toBe(422);
    expect(noPlan.body).toEqual({ errors: [expect.stringContaining("plan")] });
  });
});

describe("devices", () => {
  let first: string;

  test("a device is provisioning, then active, with Metal's three management addresses", () => {
    const created = createDevice(em, BGP_PROJECT, "cp-0", { userdata: ignition("first"), tags: ["v6fabric", "control-plane"] });
    expect(created.status).toBe(201);
    expect(created.body.state).toBe("provisioning");
    first = created.body.id;
    const device = waitActive(em, first).body;
    expect(device.state).toBe("active");
    expect(device.project.id).toBe(BGP_PROJECT);
    expect(device.facility.code).toMatch(/^da/);
    expect(device.metro.code).toBe("da");
    expect(device.tags).toEqual(["v6fabric", "control-plane"]);
    const byFamily = Object.fromEntries(device.ip_addresses.map((a: Record<string, unknown>) => [`${a.address_family}/${a.public}`, a]));
    // The first /127 of 2001:db8:4641:c500::/56: gateway = network = ::, device ::1.
    expect(byFamily["6/true"]).toMatchObject({ address: "2001:db8:4641:c500::1", gateway: "2001:db8:4641:c500::", network: "2001:db8:4641:c500::", cidr: 127, management: true, public: true });
    expect(byFamily["6/true"].parent_block).toMatchObject({ cidr: 56, network: "2001:0db8:4641:c500:0000:0000:0000:0000" });
    expect(byFamily["4/false"]).toMatchObject({ address: "127.77.0.1", gateway: "127.77.0.0", cidr: 31, management: true });
    expect(byFamily["4/false"].parent_block).toMatchObject({ network: "127.77.0.0", cidr: 25 });
    expect(byFamily["4/true"]).toMatchObject({ address: "203.0.113.1", gateway: "203.0.113.0", cidr: 31, management: true });
  });

  test("later devices take the next /127s; a deleted device's address is not handed out again", () => {
    const second = createDevice(em, BGP_PROJECT, "cp-1").body;
    const v6 = (d: { ip_addresses: { address_family: number; address: string }[] }) => d.ip_addresses.find((a) => a.address_family === 6)!.address;
    expect(v6(second)).toBe("2001:db8:4641:c500::3");
    expect(api(em, "DELETE", `/devices/${second.id}`).status).toBe(204);
    expect(api(em, "GET", `/devices/${second.id}`).status).toBe(404);
    const third = createDevice(em, BGP_PROJECT, "cp-2").body;
    expect(v6(third)).toBe("2001:db8:4641:c500::5");
    expect(third.ip_addresses.find((a: { public: boolean; address_family: number }) => !a.public).address).toBe("127.77.0.5");
  });

  test("user data is stored byte-identical; Ignition JSON is accepted, unrecognized formats get 422", () => {
    const stored = em.state().devices.find((d) => d.id === first)!;
    expect(stored.userData).toBe(ignition("first"));
    for (const bad of ["just some text", '{"ignition": {"version"']) {
      const reply = createDevice(em, BGP_PROJECT, "bad-user-data", { userdata: bad });
      expect(reply.status).toBe(422);
      expect(reply.body.errors[0]).toMatch(/user data/i);
    }
    expect(createDevice(em, BGP_PROJECT, "cloud-config", { userdata: "#cloud-config\n{}\n" }).status).toBe(201);
  });

  test("PUT updates the fields the provider sends, and the device list paginates with meta", () => {
    const updated = api(em, "PUT", `/devices/${first}`, { body: { tags: ["v6fabric"], description: "first control plane" } });
    expect(updated.body).toMatchObject({ tags: ["v6fabric"], description: "first control plane", hostname: "cp-0" });
    const page = api(em, "GET", `/projects/${BGP_PROJECT}/devices?per_page=1&page=2`).body;
    expect(page.devices).toHaveLength(1);
    expect(page.meta).toMatchObject({ current_page: 2, total: 3, last_page: 3 });
    expect(page.meta.next.href).toContain("page=3");
  });

  test("seed faults: devices outside zone 0, and a different precreated block reported", () => {
    const device = createDevice(em, FAULTY_PROJECT, "odd").body;
    // The /56's last /64 is 2001:db8:cc00:3ff::/64, outside zone 0 (the first /60).
    expect(device.ip_addresses.find((a: { address_family: number }) => a.address_family === 6).address).toBe("2001:db8:cc00:3ff::1");
    const blocks = api(em, "GET", `/projects/${FAULTY_PROJECT}/ips?types=public_ipv6`).body.ip_addresses;
    expect(blocks.map((b: { network: string; cidr: number }) => `${b.network}/${b.cidr}`)).toEqual(["2001:db8:dd00:400::/56"]);
  });

  test("seed fault for named devices only: `odd-one` goes to the /56's last /64, the next device to zone 0", () => {
    const v6 = (d: { ip_addresses: { address_family: number; address: string }[] }) => d.ip_addresses.find((a) => a.address_family === 6)!.address;
    expect(v6(createDevice(em, MISPLACING_PROJECT, "odd-one").body)).toBe("2001:db8:ee00:5ff::1");
    expect(v6(createDevice(em, MISPLACING_PROJECT, "even").body)).toBe("2001:db8:ee00:500::3");
  });
});

describe("project, BGP config and sessions", () => {
  test("the precreated IPv6 block per metro is listed as the data source filters it (public, family 6, metro code)", () => {
    const query = "include=facility,metro,project,vrf&types=public_ipv4,global_ipv4,private_ipv4,public_ipv6,vrf";
    const blocks = api(em, "GET", `/projects/${PLAIN_PROJECT}/ips?${query}`).body.ip_addresses;
    const v6 = blocks.filter((b: { public: boolean; address_family: number }) => b.public && b.address_family === 6);
    expect(v6.map((b: { metro: { code: string }; network: string; cidr: number }) => `${b.metro.code} ${b.network}/${b.cidr}`).sort()).toEqual([
      "da 2001:db8:aa00:100::/56",
      "sv 2001:db8:bb00:200::/56",
    ]);
    expect(v6[0].project.href).toBe(`/metal/v1/projects/${PLAIN_PROJECT}`);
    const one = api(em, "GET", `/ips/${v6[0].id}`);
    expect(one.body.id).toBe(v6[0].id);
  });

  test("a BGP session is refused with 422 until the project's local BGP is enabled", () => {
    const device = createDevice(em, PLAIN_PROJECT, "worker-0").body;
    const refused = api(em, "POST", `/devices/${device.id}/bgp/sessions`, { body: { address_family: "ipv6", default_route: false } });
    expect(refused.status).toBe(422);
    expect(refused.body).toEqual({ errors: [expect.stringMatching(/BGP/)] });
    expect(api(em, "GET", `/projects/${PLAIN_PROJECT}/bgp-config`).body).toEqual({});

    expect(api(em, "POST", `/projects/${PLAIN_PROJECT}/bgp-configs`, { body: { deployment_type: "local", asn: 65000 } }).status).toBe(204);
    expect(api(em, "GET", `/projects/${PLAIN_PROJECT}/bgp-config`).body).toMatchObject({ deployment_type: "local", asn: 65000, status: "enabled", max_prefix: 10 });
    const session = api(em, "POST", `/devices/${device.id}/bgp/sessions`, { body: { address_family: "ipv6", default_route: false } });
    expect(session.status).toBe(201);
    expect(api(em, "GET", `/bgp/sessions/${session.body.id}?include=device`).body).toMatchObject({ address_family: "ipv6", device: { id: device.id } });
    expect(api(em, "GET", `/devices/${device.id}/bgp/sessions`).body.bgp_sessions.map((s: { id: string }) => s.id)).toEqual([session.body.id]);
    expect(api(em, "DELETE", `/bgp/sessions/${session.body.id}`).status).toBe(204);
    expect(api(em, "GET", `/bgp/sessions/${session.body.id}`).status).toBe(404);
  });

  test("the project reads back with organization and payment method hrefs; PUT renames", () => {
    const project = api(em, "GET", `/projects/${PLAIN_PROJECT}`).body;
    expect(project.organization.href).toBe("/metal/v1/organizations/9c4d5e6f-7a8b-4c9d-be0f-3a4b5c6d7e8f");
    expect(project.payment_method.href).toMatch(/\/payment-methods\/[0-9a-f-]{36}$/);
    expect(api(em, "PUT", `/projects/${PLAIN_PROJECT}`, { body: { name: "renamed" } }).body.name).toBe("renamed");
  });
});

describe("metadata service", () => {
  let deviceId: string;

  beforeAll(() => {
    deviceId = em.state().devices.find((d) => d.hostname === "cp-0")!.id;
    expect(api(em, "POST", `/devices/${deviceId}/bgp/sessions`, { body: { address_family: "ipv6" } }).status).toBe(201);
  });

  test("answers the device whose address is the caller's source address, with its BGP neighbours", () => {
    const reply = metadata(em, "/metadata", "127.77.0.1");
    expect(reply.status).toBe(200);
    const doc = JSON.parse(reply.text);
    expect(doc).toMatchObject({ id: deviceId, hostname: "cp-0", metro: "da", plan: "c3.small.x86" });
    const v6 = doc.network.addresses.find((a: { address_family: number }) => a.address_family === 6);
    expect(v6).toMatchObject({ address: "2001:db8:4641:c500::1", gateway: "2001:db8:4641:c500::", public: true, management: true, cidr: 127, parent_block: { cidr: 56 } });
    expect(doc.bgp_neighbors).toEqual([
      {
        address_family: 6,
        customer_as: 65000,
        customer_ip: "2001:db8:4641:c500::1",
        md5_enabled: true,
        md5_password: MD5,
        multihop: true,
        peer_as: 65530,
        peer_ips: ["fc00::e", "fc00::f"],
        routes_in: [{ route: "2001:db8:4641:c500::/56", exact: false }],
        routes_out: [],
      },
    ]);
  });

  test("/userdata returns the stored bytes; an unknown caller gets 404", () => {
    expect(metadata(em, "/userdata", "127.77.0.1")).toEqual({ status: 200, text: ignition("first") });
    expect(metadata(em, "/metadata", "127.0.0.1").status).toBe(404);
    expect(metadata(em, "/userdata", "127.77.0.3").status).toBe(404);
  });

  test("a metadata-only emulator on the same state file answers the same", () => {
    const only = start({ metadataOnly: true });
    expect(only.proxyUrl).toBeUndefined();
    const reply = metadata(only, "/metadata", "127.77.0.1");
    expect(JSON.parse(reply.text).hostname).toBe("cp-0");
    only.stop();
  });
});

// A node's own IPv6 as the caller needs a network namespace (root): the lead runs the
// metadata-only listener that way in the rehearsal.
const canUnshare = process.getuid?.() === 0 && spawnSync("unshare", ["--net", "true"]).status === 0;
if (!canUnshare) console.warn("SKIPPED the metadata test from a device's IPv6 address: it needs root and unshare(1) for a network namespace");

(canUnshare ? describe : describe.skip)("metadata service in a node's network namespace", () => {
  test("a metadata-only listener answers the device's own IPv6 address", () => {
    const nsDir = path.join(work, "netns");
    fs.mkdirSync(nsDir);
    const ready = path.join(nsDir, "ready.json");
    const log = path.join(nsDir, "requests.log");
    const server = path.join(__dirname, "..", "emulators", "metal", "server.ts");
    const script = [
      "set -e",
      "ip link set lo up",
      // nodad: the address is usable at once, without duplicate address detection.
      "ip -6 addr add 2001:db8:4641:c500::1/128 dev lo nodad",
      `"$NODE" -r "$TS_NODE" "$SERVER" --metadata-only --state "$STATE" --log "$LOG" --ready-file "$READY" --metadata-listen '[::]:8080' &`,
      "pid=$!",
      'for i in $(seq 1 300); do [ -f "$READY" ] && break; sleep 0.1; done',
      "curl -sS -g --noproxy '*' --interface 2001:db8:4641:c500::1 'http://[::1]:8080/metadata' > \"$OUT\" || true",
      'kill -TERM "$pid"; wait "$pid" || true',
    ].join("\n");
    const out = path.join(nsDir, "metadata.json");
    const run = spawnSync("unshare", ["--net", "sh", "-c", script], {
      encoding: "utf8",
      env: { PATH: process.env.PATH, NODE: process.execPath, TS_NODE: require.resolve("ts-node/register/transpile-only"), SERVER: server, STATE: em.stateFile, LOG: log, READY: ready, OUT: out },
      timeout: 60000,
    });
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: "" });
    const doc = JSON.parse(fs.readFileSync(out, "utf8"));
    expect(doc.hostname).toBe("cp-0");
    expect(fs.readFileSync(log, "utf8")).toContain('"caller":"2001:db8:4641:c500::1"');
  });
});

describe("isolation and logging", () => {
  test("the proxy refuses CONNECT to any other host and plain requests, and logs them", async () => {
    const other = spawnSync("curl", ["-sS", "--noproxy", "", "--proxy", em.proxyUrl!, "https://example.com/"], { encoding: "utf8", env: { PATH: process.env.PATH } });
    expect(other.status).not.toBe(0);
    expect(other.stderr).toMatch(/403/);
    const plain = spawnSync("curl", ["-sS", "--noproxy", "", "--proxy", em.proxyUrl!, "-o", "/dev/null", "-w", "%{http_code}", "http://example.com/"], {
      encoding: "utf8",
      env: { PATH: process.env.PATH },
    });
    expect(plain.stdout).toBe("403");
    // The emulator writes a request's log line once its response has gone, so the client can be first.
    const refused = () => em.requests().filter((r) => r.listener === "proxy" && r.status === 403).map((r) => `${r.method} ${r.path}`);
    for (let i = 0; i < 50 && !refused().includes("GET http://example.com/"); i++) await new Promise((r) => setTimeout(r, 100));
    expect(refused()).toEqual(expect.arrayContaining(["CONNECT example.com:443", "GET http://example.com/"]));
  });

  test("a device's create and update log its hostname and the bytes of user data it holds; reportedDevices() gives the last of each live device", () => {
    const second = ignition("second, a longer user data than the first");
    const cp0 = em.state().devices.find((d) => d.hostname === "cp-0")!;
    const created = em.requests().find((r) => r.method === "POST" && r.device?.id === cp0.id)!;
    expect(created).toMatchObject({ path: `/metal/v1/projects/${BGP_PROJECT}/devices`, status: 201, device: { hostname: "cp-0", userDataBytes: Buffer.byteLength(ignition("first")) } });
    expect(api(em, "PUT", `/devices/${cp0.id}`, { body: { userdata: second } }).status).toBe(200);
    const doomed = createDevice(em, MISPLACING_PROJECT, "short-lived", { userdata: ignition("gone") }).body;
    expect(api(em, "DELETE", `/devices/${doomed.id}`).status).toBe(204);
    const reported = em.reportedDevices();
    expect(reported.find((d) => d.id === cp0.id)).toEqual({ id: cp0.id, hostname: "cp-0", userDataBytes: Buffer.byteLength(second) });
    expect(reported.map((d) => d.hostname)).not.toContain("short-lived");
    // Devices created without user data hold none.
    expect(reported.find((d) => d.hostname === "cp-2")?.userDataBytes).toBe(0);
    expect(fs.readFileSync(em.logFile, "utf8")).not.toContain(second);
  });

  test("every API request is logged, and the log holds no token, password or user data", () => {
    const log = fs.readFileSync(em.logFile, "utf8");
    const entries = em.requests();
    expect(entries.filter((e) => e.listener === "api").length).toBeGreaterThan(20);
    for (const e of entries) expect(Object.keys(e).sort()).toEqual(expect.arrayContaining(["durationMs", "listener", "method", "path", "status", "time"]));
    for (const secret of [TOKEN, MD5, "not-the-token", ignition("first"), "data:,first", "data:,second", "#cloud-config"]) expect(log).not.toContain(secret);
  });
});

describe("restart", () => {
  test("state survives a restart: same devices and addresses, numbering continues", () => {
    const before = em.state();
    em.stop();
    em = start();
    expect(em.state().devices.map((d) => d.id)).toEqual(before.devices.map((d) => d.id));
    const cp0 = before.devices.find((d) => d.hostname === "cp-0")!;
    expect(api(em, "GET", `/devices/${cp0.id}`).body.state).toBe("active");
    const next = createDevice(em, BGP_PROJECT, "after-restart").body;
    // ::1 (cp-0), ::3 (deleted), ::5 (cp-2), ::7 (cloud-config) were taken before.
    expect(next.ip_addresses.find((a: { address_family: number }) => a.address_family === 6).address).toBe("2001:db8:4641:c500::9");
  });
});

// The pinned Terraform and provider the rehearsal's tools build (rehearsal/tools.ts); only source and version name the binary.
const TERRAFORM = terraformBinary();
const PROVIDER = providerBinaryPath({ source: "equinix/metal", version: "3.3.0" } as ProviderBuild);
const missingTools = [TERRAFORM, PROVIDER].filter((f) => !fs.existsSync(f));
if (missingTools.length > 0) {
  // The provider comes from a pinned source a lone clone lacks: say which repository and commit to put where.
  console.warn(`SKIPPED the Metal emulator's end-to-end test with the real provider: missing ${missingTools.join(", ")}: ${toolsUnavailable(["terraform"]) ?? "run `npm run tools` (.ci/run does)"}`);
}
const describeEndToEnd = missingTools.length === 0 ? describe : describe.skip;

describeEndToEnd("end to end: Terraform 1.5.7 and equinix/metal 3.3.0 against the emulator", () => {
  const PROJECT = "5e0b1c2d-3f4a-4b5c-9d6e-7f8a9b0c1d2e";
  const SECOND_PROJECT = "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
  const e2eDir = path.join(work, "e2e");
  const moduleDir = path.join(e2eDir, "module");
  let e2e: MetalEmulatorHandle;
  const userData = ignition("end-to-end");
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let root: any;

  function terraform(...args: string[]) {
    return terraformIn(moduleDir, ...args);
  }

  /** Terraform in `chdir` with the mirror-only CLI config (rehearsal/terraform.ts) and the emulator's variables, nothing else. */
  function terraformIn(chdir: string, ...args: string[]) {
    const run = new Terraform(chdir, { PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR: process.env.TMPDIR }, e2e.env()).run(args);
    return { status: run.status, stdout: run.stdout, output: `${run.stdout}\n${run.stderr}` };
  }

  beforeAll(() => {
    e2e = startMetalEmulator({
      dir: path.join(e2eDir, "emulator"),
      token: TOKEN,
      seed: {
        provisioningSeconds: 1,
        projects: [
          { id: PROJECT, name: "fabric-e2e", organizationId: "4d5e6f7a-8b9c-4dae-8f0a-1b2c3d4e5f6a", ipv6Blocks: { da: "2001:db8:4641:c500::/56" } },
          { id: SECOND_PROJECT, name: "fabric-e2e-2", organizationId: "4d5e6f7a-8b9c-4dae-8f0a-1b2c3d4e5f6a", ipv6Blocks: { da: "2001:db8:4641:c600::/56" } },
        ],
      },
    });
    running.push(e2e);
    fs.mkdirSync(moduleDir, { recursive: true });
    root = endToEndRoot(PROJECT, userData);
    fs.writeFileSync(path.join(moduleDir, "main.tf.json"), JSON.stringify(root, null, 2));
  });

  test("init, apply, an empty second plan, and destroy", () => {
    const init = terraform("init", "-input=false", "-no-color");
    expect({ status: init.status, output: init.status === 0 ? "" : init.output }).toEqual({ status: 0, output: "" });
    const apply = terraform("apply", "-input=false", "-auto-approve", "-no-color");
    expect({ status: apply.status, output: apply.status === 0 ? "" : apply.output }).toEqual({ status: 0, output: "" });
    const outputs = JSON.parse(terraform("output", "-json").stdout);
    expect(Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, (v as { value: unknown }).value]))).toEqual({
      ipv6: "2001:db8:4641:c500::1",
      private_ipv4: "10.88.0.1",
      public_ipv4: "203.0.113.1",
      block: "2001:db8:4641:c500::/56",
      session_status: "unknown",
    });
    const state = e2e.state();
    expect(state.devices.map((d) => [d.hostname, d.userData === userData])).toEqual([["e2e-cp-0", true]]);
    expect(state.bgpSessions).toHaveLength(1);
    expect(state.projects[0].bgpConfig).toMatchObject({ deploymentType: "local", asn: 65000, status: "enabled" });

    const plan = terraform("plan", "-input=false", "-detailed-exitcode", "-no-color");
    expect({ status: plan.status, output: plan.status === 0 ? "" : plan.output }).toEqual({ status: 0, output: "" });

    // The adopted project is never destroyed (prevent_destroy): it leaves the state first, as docs/bgp-fabric.md says.
    expect(terraform("state", "rm", "metal_project.project").status).toBe(0);
    // Observed with Terraform 1.5.7: while the import block stays in the configuration, destroy
    // imports the project again and then refuses (prevent_destroy). Not the emulator's doing.
    const refused = terraform("destroy", "-input=false", "-auto-approve", "-no-color");
    expect(refused.status).toBe(1);
    expect(refused.output).toMatch(/Instance cannot be destroyed/);
    // Without the import block and the project resource (METAL_MANAGE_PROJECT_BGP=false), destroy goes through.
    delete root.import;
    delete (root.resource as Record<string, unknown>).metal_project;
    (root.resource.metal_bgp_session.ipv6 as Record<string, unknown>).depends_on = undefined;
    fs.writeFileSync(path.join(moduleDir, "main.tf.json"), JSON.stringify(root, null, 2));
    const destroy = terraform("destroy", "-input=false", "-auto-approve", "-no-color");
    expect({ status: destroy.status, output: destroy.status === 0 ? "" : destroy.output }).toEqual({ status: 0, output: "" });
    expect(e2e.state().devices).toEqual([]);
    expect(e2e.state().bgpSessions).toEqual([]);
    expect(e2e.state().projects[0].bgpConfig).toMatchObject({ status: "enabled", asn: 65000 });
    const hosts = new Set(
      e2e
        .requests()
        .filter((r) => r.listener === "proxy")
        .map((r) => `${r.path} ${r.status}`)
    );
    expect([...hosts]).toEqual(["api.equinix.com:443 200"]);
  }, 300000);

  test("the provider plans a new bgp_config's status as null, not unknown, so a plan-time check of it fails on first enable", () => {
    // What MetalProjectBgp does with METAL_MANAGE_PROJECT_BGP=true, on a project without BGP yet.
    const dir = path.join(e2eDir, "first-enable");
    fs.mkdirSync(dir, { recursive: true });
    const module = {
      terraform: { required_providers: { metal: { source: "equinix/metal", version: "3.3.0" } } },
      import: [{ to: "metal_project.project", id: SECOND_PROJECT }],
      resource: {
        metal_project: {
          project: {
            name: "fabric-e2e-2",
            bgp_config: { deployment_type: "local", asn: 65000 },
            lifecycle: { postcondition: [{ condition: '${try(self.bgp_config[0].status, "") == "enabled"}', error_message: "local BGP is not enabled" }] },
          },
        },
      },
    };
    fs.writeFileSync(path.join(dir, "main.tf.json"), JSON.stringify(module, null, 2));
    expect(terraformIn(dir, "init", "-input=false", "-no-color").status).toBe(0);
    const plan = terraformIn(dir, "plan", "-input=false", "-no-color");
    expect(plan.status).toBe(1);
    expect(plan.output).toMatch(/Resource postcondition failed[\s\S]*self\.bgp_config\[0\]\.status is null/);
    // The API was not asked to change anything.
    expect(e2e.state().projects.find((p) => p.id === SECOND_PROJECT)!.bgpConfig).toBeUndefined();
  }, 120000);
});
