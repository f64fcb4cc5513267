/**
 * The emulator's TLS identity: a CA made at each start and a certificate for
 * api.equinix.com signed by it, with the openssl CLI. packngo's base URL is fixed at
 * https://api.equinix.com/metal/v1/ (packngo.go), so the provider must trust this CA:
 * Go on Linux reads it from SSL_CERT_FILE.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

export const API_HOST = "api.equinix.com";

export interface TlsFiles {
  /** The CA certificate, for SSL_CERT_FILE or curl --cacert. */
  readonly caFile: string;
  readonly key: Buffer;
  readonly cert: Buffer;
}

/** Makes a fresh CA and server certificate in `dir` (created, mode 0700). */
export function makeTlsFiles(dir: string): TlsFiles {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = (name: string) => path.join(dir, name);
  const openssl = (args: string[]) => execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  // Go wants a CA marked CA:TRUE with keyCertSign, and a leaf with the name in subjectAltName.
  openssl(["req", "-x509", ...ec, "-keyout", file("ca.key"), "-out", file("ca.pem"), "-days", "30", "-sha256", "-subj", "/CN=v6fabric Metal emulator CA",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
  openssl(["req", "-new", ...ec, "-keyout", file("server.key"), "-out", file("server.csr"), "-subj", `/CN=${API_HOST}`]);
  fs.writeFileSync(file("server.ext"), [`subjectAltName=DNS:${API_HOST}`, "basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature", "extendedKeyUsage=serverAuth", ""].join("\n"));
  openssl(["x509", "-req", "-in", file("server.csr"), "-CA", file("ca.pem"), "-CAkey", file("ca.key"), "-set_serial", `0x${randomBytes(8).toString("hex")}`,
    "-days", "30", "-sha256", "-extfile", file("server.ext"), "-out", file("server.pem")]);
  // The CA key is not needed once the certificate is signed.
  fs.rmSync(file("ca.key"));
  return { caFile: file("ca.pem"), key: fs.readFileSync(file("server.key")), cert: fs.readFileSync(file("server.pem")) };
}
