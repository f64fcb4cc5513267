/**
 * The real Matchbox server (rehearsal/matchbox-tools.ts builds it) for the Matchbox
 * target's rehearsal, on loopback: HTTP for what machines fetch (iPXE, Ignition,
 * metadata) and the gRPC API the poseidon/matchbox provider applies through, with TLS
 * and client certificates as in a deployment (a CA, a server and a client certificate
 * made at each start with the openssl CLI). Its data directory holds what it stores:
 * profiles/, groups/ and ignition/.
 */
import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { issueCertificates } from "../emulators/tls";
import { matchboxBinary } from "./matchbox-tools";

/** PEMs the provider needs, as the TF_VAR_ values of constructs/matchbox-machine.ts MATCHBOX_CREDENTIAL_VARIABLES. */
export interface MatchboxCredentials {
  readonly ca: string;
  readonly clientCert: string;
  readonly clientKey: string;
}

export interface MatchboxServer {
  /** e.g. http://127.0.0.1:40123 (MATCHBOX_HTTP_ENDPOINT). */
  readonly httpEndpoint: string;
  /** e.g. 127.0.0.1:40124 (MATCHBOX_RPC_ENDPOINT). */
  readonly rpcEndpoint: string;
  readonly dataDir: string;
  readonly credentials: MatchboxCredentials;
  /** What the server logged so far (for failure messages). */
  log(): string;
  /** Stops the server and waits for it to exit. */
  stop(): Promise<void>;
}

/** A CA, a server certificate for 127.0.0.1 and a client certificate, in `dir`. */
export function makeMatchboxTls(dir: string): { caFile: string; certFile: string; keyFile: string; credentials: MatchboxCredentials } {
  const caFile = issueCertificates(dir, "v6fabric rehearsal Matchbox CA", [
    { name: "server", commonName: "server", extensions: ["subjectAltName=IP:127.0.0.1,DNS:localhost", "extendedKeyUsage=serverAuth"] },
    { name: "client", commonName: "client", extensions: ["extendedKeyUsage=clientAuth"] },
  ]);
  const read = (name: string) => fs.readFileSync(path.join(dir, name), "utf8");
  return { caFile, certFile: path.join(dir, "server.crt"), keyFile: path.join(dir, "server.key"), credentials: { ca: read("ca.crt"), clientCert: read("client.crt"), clientKey: read("client.key") } };
}

/** A TCP port nobody listens on right now, on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once("exit", () => resolve()));
}

/** Starts Matchbox with a fresh data directory and TLS identity under `dir`; resolves once both endpoints answer. */
export async function startMatchbox(dir: string): Promise<MatchboxServer> {
  const dataDir = path.join(dir, "data");
  for (const sub of ["profiles", "groups", "ignition", "generic", "cloud", "assets"]) fs.mkdirSync(path.join(dataDir, sub), { recursive: true });
  const tls = makeMatchboxTls(path.join(dir, "tls"));
  const [httpPort, rpcPort] = [await freePort(), await freePort()];
  const args = [
    `-address=127.0.0.1:${httpPort}`,
    `-rpc-address=127.0.0.1:${rpcPort}`,
    `-data-path=${dataDir}`,
    `-assets-path=${path.join(dataDir, "assets")}`,
    `-cert-file=${tls.certFile}`,
    `-key-file=${tls.keyFile}`,
    `-ca-file=${tls.caFile}`,
    "-log-level=debug",
  ];
  // Matchbox also reads MATCHBOX_* variables as flags: give it none of the caller's.
  const child = spawn(matchboxBinary(), args, { env: { PATH: process.env.PATH ?? "/usr/bin:/bin" }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout?.on("data", (d) => (output += d));
  child.stderr?.on("data", (d) => (output += d));
  const server: MatchboxServer = {
    httpEndpoint: `http://127.0.0.1:${httpPort}`,
    rpcEndpoint: `127.0.0.1:${rpcPort}`,
    dataDir,
    credentials: tls.credentials,
    log: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited(child);
    },
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`matchbox exited (${child.exitCode}):\n${output}`);
    const http = await fetch(`${server.httpEndpoint}/`).then((r) => r.ok, () => false);
    const rpc = await new Promise<boolean>((resolve) => {
      const socket = net.connect(rpcPort, "127.0.0.1", () => (socket.end(), resolve(true)));
      socket.once("error", () => resolve(false));
    });
    if (http && rpc) return server;
    if (Date.now() > deadline) {
      await server.stop();
      throw new Error(`matchbox did not answer on ${server.httpEndpoint} and ${server.rpcEndpoint} within 20 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
