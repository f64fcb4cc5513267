/**
 * The user data size estimate (lib/user-data-size.ts): what each kind of Terraform
 * expression is assumed to become, checked against real P-256 PEMs made here.
 */
import { generateKeyPairSync } from "node:crypto";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { gzipSync } from "node:zlib";
import { assumedGzippedPemBytes, assumedPemBytes, userDataSize } from "../lib/user-data-size";
import { hasCommand, tempDir } from "./support/ignition";

const CERT = "base64gzip(tls_self_signed_cert.ca.cert_pem)";
const KEY = "base64gzip(tls_private_key.ca.private_key_pem)";
const PUB = "base64gzip(tls_private_key.sa.public_key_pem)";

/** Real PEMs of the kinds the control plane makes (ECDSA P-256), each with the expression that stands for it. */
function realPems(): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < 5; i++) {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    out.push([KEY, privateKey.export({ type: "sec1", format: "pem" }).toString()]);
    out.push([KEY, privateKey.export({ type: "pkcs8", format: "pem" }).toString()]);
    out.push([PUB, publicKey.export({ type: "spki", format: "pem" }).toString()]);
  }
  if (hasCommand("openssl")) {
    const dir = tempDir("pem");
    for (let i = 0; i < 3; i++) {
      const cert = path.join(dir, `ca${i}.crt`);
      const r = spawnSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path.join(dir, `ca${i}.key`), "-subj", "/CN=kubernetes", "-days", "3650", "-out", cert]);
      if (r.status === 0) out.push([CERT, fs.readFileSync(cert, "utf8")]);
    }
  }
  return out;
}

describe("user data size estimate", () => {
  it("assumes every real PEM at least as large as it is, and its gzip at least as large as gzip makes it", () => {
    const pems = realPems();
    expect(pems.length).toBeGreaterThanOrEqual(15);
    for (const [expression, pem] of pems) {
      const bytes = Buffer.byteLength(pem);
      expect({ expression, bytes: Math.min(bytes, assumedPemBytes(expression)) }).toEqual({ expression, bytes });
      const gzipped = gzipSync(pem, { level: 9 }).length;
      expect({ expression, gzipped: Math.min(gzipped, assumedGzippedPemBytes(expression)) }).toEqual({ expression, gzipped });
      // Monotonic model: it holds at the real size too, not only at the assumed one.
      expect(gzipped).toBeLessThanOrEqual(Math.ceil(bytes * 0.8) + 40);
    }
  });

  it("counts gzip'd PEMs smaller than plain ones, the token file as a token, literals as they are", () => {
    const plain = userDataSize("a${base64encode(tls_self_signed_cert.ca.cert_pem)}").appliedBytes;
    const gzipped = userDataSize(`a\${${CERT}}`).appliedBytes;
    expect(plain).toBe(1 + Math.ceil(1024 / 3) * 4);
    expect(gzipped).toBe(1 + Math.ceil((Math.ceil(1024 * 0.8) + 40) / 3) * 4);
    expect(gzipped).toBeLessThan(plain);
    expect(userDataSize('${base64encode(coalesce(var.kubeadm_bootstrap_token, join(".", [a, b])))}').appliedBytes).toBe(32);
    expect(userDataSize("abc").appliedBytes).toBe(3);
  });
});
