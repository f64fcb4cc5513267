/**
 * The user data size estimate (lib/user-data-size.ts): what each kind of Terraform
 * expression is assumed to become, checked against real P-256 PEMs made here.
 */
import { generateKeyPairSync } from "node:crypto";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { gzipSync } from "node:zlib";
import { USER_DATA_BUDGET_BYTES, ZLIB_SIZE_TOLERANCE_BYTES, assumedGzippedPemBytes, assumedPemBytes, userDataSize } from "../lib/user-data-size";
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

describe("every node's user data fits the budget, with room for another zlib build", () => {
  // The exact sizes of this build; the README rounds them (scripts/doc-tables.ts).
  test.each([
    ["default", {}],
    ["CONTROL_PLANE_COUNT=3 WORKER_COUNT=5", { CONTROL_PLANE_COUNT: "3", WORKER_COUNT: "5" }],
  ])("%s", (_label, env) => {
    for (const [, device] of resourcesOf(onlyStack(synthesize(env)), "metal_device")) {
      const { appliedBytes } = userDataSize(device.user_data);
      expect({ host: device.hostname, fits: appliedBytes + ZLIB_SIZE_TOLERANCE_BYTES <= USER_DATA_BUDGET_BYTES }).toEqual({ host: device.hostname, fits: true });
    }
  });
});
