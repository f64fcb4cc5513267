/**
 * The emulator's TLS identity: a CA made at each start and a certificate for
 * api.equinix.com signed by it, with the openssl CLI. packngo's base URL is fixed at
 * https://api.equinix.com/metal/v1/ (packngo.go), so the provider must trust this CA:
 * Go on Linux reads it from SSL_CERT_FILE.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { issueCertificates } from "../tls";

export const API_HOST = "api.equinix.com";

export interface TlsFiles {
  /** The CA certificate, for SSL_CERT_FILE or curl --cacert. */
  readonly caFile: string;
  readonly key: Buffer;
  readonly cert: Buffer;
}

/** Makes a fresh CA and server certificate in `dir` (created, mode 0700). */
export function makeTlsFiles(dir: string): TlsFiles {
  const caFile = issueCertificates(dir, "v6fabric Metal emulator CA", [
    { name: "server", commonName: API_HOST, extensions: [`subjectAltName=DNS:${API_HOST}`, "extendedKeyUsage=serverAuth"] },
  ]);
  return { caFile, key: fs.readFileSync(path.join(dir, "server.key")), cert: fs.readFileSync(path.join(dir, "server.crt")) };
}
