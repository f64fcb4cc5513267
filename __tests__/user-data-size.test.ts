/**
 * The user data size estimate (lib/user-data-size.ts): what each kind of Terraform
 * expression is assumed to become, checked against real P-256 PEMs made here.
 */
import { generateKeyPairSync } from "node:crypto";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { gzipSync } from "node:zlib";
import { USER_DATA_BUDGET_BYTES, ZLIB_SIZE_TOLERANCE_BYTES, assumedGzippedPemBytes, assumedPemBytes, formatKiB, userDataSize } from "../lib/user-data-size";
import { describeWithTools, tempDir } from "./support/ignition";
import { onlyStack, resourcesOf, synthesize } from "./support/synth";

const CERT = "base64gzip(tls_self_signed_cert.ca.cert_pem)";
const KEY = "base64gzip(tls_private_key.ca.private_key_pem)";
const PUB = "base64gzip(tls_private_key.sa.public_key_pem)";

/** Real keys of the kinds the control plane makes (ECDSA P-256), each with the expression that stands for it. */
function realKeys(): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < 5; i++) {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    out.push([KEY, privateKey.export({ type: "sec1", format: "pem" }).toString()]);
    out.push([KEY, privateKey.export({ type: "pkcs8", format: "pem" }).toString()]);
    out.push([PUB, publicKey.export({ type: "spki", format: "pem" }).toString()]);
  }
  return out;
}

/** Self-signed P-256 CA certificates like the control plane's (CN kubernetes, ten years), made by openssl. */
function realCertificates(): [string, string][] {
  const dir = tempDir("pem");
  return [0, 1, 2].map((i) => {
    const cert = path.join(dir, `ca${i}.crt`);
    const r = spawnSync(
      "openssl",
      ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path.join(dir, `ca${i}.key`), "-subj", "/CN=kubernetes", "-days", "3650", "-out", cert],
      { encoding: "utf8" },
    );
    // A failing openssl is a failure, not a smaller sample.
    if (r.status !== 0) throw new Error(`openssl req failed (${r.status}): ${r.stderr}`);
    return [CERT, fs.readFileSync(cert, "utf8")];
  });
}

/** The estimate holds for each real PEM: plain and gzip'd, at the assumed and at the real size. */
function expectEstimateCovers(pems: [string, string][]): void {
  for (const [expression, pem] of pems) {
    const bytes = Buffer.byteLength(pem);
    expect({ expression, bytes: Math.min(bytes, assumedPemBytes(expression)) }).toEqual({ expression, bytes });
    const gzipped = gzipSync(pem, { level: 9 }).length;
    expect({ expression, gzipped: Math.min(gzipped, assumedGzippedPemBytes(expression)) }).toEqual({ expression, gzipped });
    // Monotonic model: it holds at the real size too, not only at the assumed one.
    expect(gzipped).toBeLessThanOrEqual(Math.ceil(bytes * 0.8) + 40);
  }
}

describe("user data size estimate", () => {
  it("assumes every real key at least as large as it is, and its gzip at least as large as gzip makes it", () => {
    const keys = realKeys();
    expect(keys.length).toBe(15);
    expectEstimateCovers(keys);
  });

  it("counts gzip'd PEMs smaller than plain ones, literals as they are", () => {
    const plain = userDataSize("a${base64encode(tls_self_signed_cert.ca.cert_pem)}").appliedBytes;
    const gzipped = userDataSize(`a\${${CERT}}`).appliedBytes;
    expect(plain).toBe(1 + Math.ceil(1024 / 3) * 4);
    expect(gzipped).toBe(1 + Math.ceil((Math.ceil(1024 * 0.8) + 40) / 3) * 4);
    expect(gzipped).toBeLessThan(plain);
    expect(userDataSize("abc").appliedBytes).toBe(3);
  });

  it("counts the API servers file as a full-length IPv6 line per device it names", () => {
    const three = '${base64encode(join("\\n", [metal_device.a.access_public_ipv6, metal_device.b.access_public_ipv6, metal_device.c.access_public_ipv6, ""]))}';
    // The longest address text is 39 characters plus its newline; base64 makes 4 of every 3 bytes.
    expect(userDataSize(three).appliedBytes).toBe(160);
    expect(Buffer.from(`${"ffff:".repeat(7)}ffff\n`.repeat(3)).toString("base64").length).toBeLessThanOrEqual(160);
  });
});

// Certificates need openssl (Node cannot make one). Without it this block is skipped
// loudly, with the install command; .ci/run and the PR workflow must install it.
describeWithTools(["openssl"], "user data size estimate for certificates", () => {
  it("assumes every real CA certificate at least as large as it is, and its gzip at least as large as gzip makes it", () => {
    const certificates = realCertificates();
    expect(certificates).toHaveLength(3);
    expectEstimateCovers(certificates);
  });
});

type Role = "init" | "control-plane" | "worker";

function roleOf(hostname: string): Role {
  return /-cp-1$/.test(hostname) ? "init" : /-cp-\d+$/.test(hostname) ? "control-plane" : "worker";
}

/** The largest applied user data of each role in a synthesized example. */
function sizesByRole(env: Record<string, string>): Partial<Record<Role, number>> {
  const out: Partial<Record<Role, number>> = {};
  for (const [, device] of resourcesOf(onlyStack(synthesize(env)), "metal_device")) {
    const role = roleOf(device.hostname);
    out[role] = Math.max(out[role] ?? 0, userDataSize(device.user_data).appliedBytes);
  }
  return out;
}

const EXAMPLES: [string, Record<string, string>][] = [
  ["default", {}],
  ["CONTROL_PLANE_COUNT=3 WORKER_COUNT=5", { CONTROL_PLANE_COUNT: "3", WORKER_COUNT: "5" }],
  ["CONTROL_PLANE_COUNT=3 WORKER_COUNT=97", { CONTROL_PLANE_COUNT: "3", WORKER_COUNT: "97" }],
];

describe("every role's applied user data fits the budget, with room for another zlib build", () => {
  const sizes = new Map(EXAMPLES.map(([label, env]) => [label, sizesByRole(env)]));

  afterAll(() => {
    // The figures behind the README's table (scripts/doc-tables.ts rounds them), per role.
    const lines = [...sizes].flatMap(([label, roles]) => Object.entries(roles).map(([role, bytes]) => `  ${label}, ${role}: ${bytes} bytes (${formatKiB(bytes!)})`));
    // eslint-disable-next-line no-console
    console.log(`applied user data per role (budget ${formatKiB(USER_DATA_BUDGET_BYTES)}):\n${lines.join("\n")}`);
  });

  test.each(EXAMPLES.map(([label]) => label))("%s", (label) => {
    const roles = sizes.get(label)!;
    expect(Object.keys(roles).sort()).toEqual(label === "default" ? ["init", "worker"] : ["control-plane", "init", "worker"]);
    for (const [role, bytes] of Object.entries(roles)) {
      expect({ role, fits: bytes! + ZLIB_SIZE_TOLERANCE_BYTES <= USER_DATA_BUDGET_BYTES }).toEqual({ role, fits: true });
    }
  });
});

describe("a role's user data does not grow with the number of nodes", () => {
  // What a worker may gain per extra control plane: one API servers line (a full-length
  // IPv6 address and its newline, base64-encoded as Terraform writes it).
  const perControlPlane = Math.ceil(40 / 3) * 4 + 2;
  // Hostnames sit inside the gzip'd boot config: worker-7 and worker-100 compress a few bytes apart.
  const hostnameSlack = 16;

  it("2 or 100 workers: every role the same size", () => {
    const few = sizesByRole({ WORKER_COUNT: "2" });
    const many = sizesByRole({ WORKER_COUNT: "100" });
    expect(Math.abs(many.init! - few.init!)).toBeLessThanOrEqual(hostnameSlack);
    expect(Math.abs(many.worker! - few.worker!)).toBeLessThanOrEqual(hostnameSlack);
  });

  it("1 or 5 control planes: only a worker's API servers file grows, by a line per control plane (at most 5)", () => {
    const one = sizesByRole({ CONTROL_PLANE_COUNT: "1", WORKER_COUNT: "2" });
    const five = sizesByRole({ CONTROL_PLANE_COUNT: "5", WORKER_COUNT: "2" });
    expect(Math.abs(five.init! - one.init!)).toBeLessThanOrEqual(hostnameSlack);
    expect(five.worker! - one.worker!).toBeGreaterThan(0);
    expect(five.worker! - one.worker!).toBeLessThanOrEqual(4 * perControlPlane + hostnameSlack);
    expect(five["control-plane"]).toBeDefined();
  });
});
