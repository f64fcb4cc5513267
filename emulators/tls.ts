/**
 * A throwaway certificate authority for the emulators and the rehearsal's servers: a CA
 * made on the spot and leaf certificates it signs, with the openssl CLI (P-256, 30 days).
 * Go wants a CA marked CA:TRUE with keyCertSign, and a leaf whose names are in
 * subjectAltName. The CA key is deleted once every leaf is signed.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

export interface Leaf {
  /** Its files: `<name>.key` and `<name>.crt`. */
  readonly name: string;
  readonly commonName: string;
  /** openssl extension lines besides basicConstraints and keyUsage (subjectAltName, extendedKeyUsage). */
  readonly extensions: readonly string[];
}

/** Makes the CA (`ca.crt`) and each leaf in `dir` (created, mode 0700); returns the CA's path. */
export function issueCertificates(dir: string, caCommonName: string, leaves: readonly Leaf[]): string {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = (name: string) => path.join(dir, name);
  const openssl = (args: string[]) => execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl(["req", "-x509", ...ec, "-keyout", file("ca.key"), "-out", file("ca.crt"), "-days", "30", "-sha256", "-subj", `/CN=${caCommonName}`,
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
  for (const { name, commonName, extensions } of leaves) {
    openssl(["req", "-new", ...ec, "-keyout", file(`${name}.key`), "-out", file(`${name}.csr`), "-subj", `/CN=${commonName}`]);
    fs.writeFileSync(file(`${name}.ext`), [...extensions, "basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature", ""].join("\n"));
    openssl(["x509", "-req", "-in", file(`${name}.csr`), "-CA", file("ca.crt"), "-CAkey", file("ca.key"), "-set_serial", `0x${randomBytes(8).toString("hex")}`,
      "-days", "30", "-sha256", "-extfile", file(`${name}.ext`), "-out", file(`${name}.crt`)]);
  }
  fs.rmSync(file("ca.key"));
  return file("ca.crt");
}
