/**
 * The Metal API emulator as its own process (the rehearsal blocks its event loop in
 * spawnSync while Terraform runs, so the emulator cannot live inside it).
 *
 *   node -r ts-node/register/transpile-only emulators/metal/server.ts \
 *     --state FILE --log FILE --token TOKEN --seed SEED.json [--ready-file FILE] \
 *     [--metadata-listen ADDR:PORT] [--proxy-listen ADDR:PORT] [--tls-dir DIR] [--metadata-only]
 *
 * The token may come from METAL_EMULATOR_TOKEN instead of --token (keeps it out of `ps`).
 * With --metadata-only only the metadata listener runs, reading --state on every request
 * (so it can run inside a node's network namespace beside a full emulator).
 */
import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { ApiHandler, createApiHandler, StateStore } from "./api";
import { createMetadataServer } from "./metadata";
import { createConnectProxy } from "./proxy";
import { openRequestLog, RequestLog, RequestLogEntry } from "./request-log";
import { MetalSeed, MetalState, readState, stateFromSeed, StoredDevice, writeState } from "./state";
import { makeTlsFiles } from "./tls";

export interface ServerOptions {
  readonly stateFile: string;
  readonly logFile: string;
  readonly token?: string;
  readonly seedFile?: string;
  readonly readyFile?: string;
  readonly metadataListen: string;
  readonly proxyListen: string;
  readonly tlsDir?: string;
  readonly metadataOnly: boolean;
}

/** What the ready file holds once every listener is up. */
export interface ReadyInfo {
  readonly pid: number;
  /** For HTTPS_PROXY (absent with --metadata-only). */
  readonly proxyUrl?: string;
  /** For SSL_CERT_FILE (absent with --metadata-only). */
  readonly caFile?: string;
  readonly metadataUrl: string;
}

const USAGE =
  "usage: server.ts --state FILE --log FILE --token TOKEN --seed SEED.json [--ready-file FILE] [--metadata-listen ADDR:PORT] " + "[--proxy-listen ADDR:PORT] [--tls-dir DIR] [--metadata-only]";

export function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): ServerOptions {
  const values = new Map<string, string>();
  let metadataOnly = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--metadata-only") {
      metadataOnly = true;
      continue;
    }
    const known = ["--state", "--log", "--token", "--seed", "--ready-file", "--metadata-listen", "--proxy-listen", "--tls-dir"];
    if (!known.includes(arg) || argv[i + 1] === undefined) throw new Error(`${arg}: unknown option or missing value\n${USAGE}`);
    values.set(arg.slice(2), argv[++i]);
  }
  const stateFile = values.get("state");
  const logFile = values.get("log");
  if (!stateFile || !logFile) throw new Error(`--state and --log are required\n${USAGE}`);
  const token = values.get("token") ?? env.METAL_EMULATOR_TOKEN;
  if (!metadataOnly && !token) throw new Error(`--token (or METAL_EMULATOR_TOKEN) is required\n${USAGE}`);
  if (!metadataOnly && !values.get("seed") && !fs.existsSync(stateFile)) throw new Error(`--seed is required when ${stateFile} does not exist yet\n${USAGE}`);
  return {
    stateFile: path.resolve(stateFile),
    logFile: path.resolve(logFile),
    token,
    seedFile: values.get("seed"),
    readyFile: values.get("ready-file"),
    metadataListen: values.get("metadata-listen") ?? "127.0.0.1:0",
    proxyListen: values.get("proxy-listen") ?? "127.0.0.1:0",
    tlsDir: values.get("tls-dir"),
    metadataOnly,
  };
}

/** `host:port` or `[v6]:port`. */
function splitListen(text: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  if (!m) throw new Error(`${text}: expected ADDRESS:PORT or [IPV6]:PORT`);
  return { host: m[1], port: Number(m[2]) };
}

function listen(server: http.Server, where: string): Promise<string> {
  const { host, port } = splitListen(where);
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      const address = server.address() as AddressInfo;
      // A wildcard listener is reached on loopback.
      const shown = address.address === "0.0.0.0" ? "127.0.0.1" : address.address === "::" ? "::1" : address.address;
      resolve(`http://${shown.includes(":") ? `[${shown}]` : shown}:${address.port}`);
    });
  });
}

function timed(listener: "api", log: RequestLog, handler: ApiHandler): http.RequestListener {
  return (req, res) => {
    const started = Date.now();
    let noted: Partial<RequestLogEntry> = {};
    res.on("finish", () => {
      const url = new URL(req.url ?? "/", "https://api.equinix.com");
      log({ listener, method: req.method ?? "?", path: url.pathname, query: url.search.slice(1) || undefined, status: res.statusCode, durationMs: Date.now() - started, ...noted });
    });
    handler(req, res, (fields) => {
      noted = fields;
    });
  };
}

function loadOrSeed(options: ServerOptions): MetalState {
  // An existing state wins: it is what earlier runs left, and the seed only starts it.
  if (fs.existsSync(options.stateFile)) return readState(options.stateFile);
  const seed = JSON.parse(fs.readFileSync(options.seedFile!, "utf8")) as MetalSeed;
  const state = stateFromSeed(seed);
  writeState(options.stateFile, state);
  return state;
}

export async function startServer(options: ServerOptions): Promise<{ ready: ReadyInfo; close: () => Promise<void> }> {
  const log = openRequestLog(options.logFile);
  const servers: http.Server[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let ready: ReadyInfo;
  if (options.metadataOnly) {
    const metadata = createMetadataServer(() => readState(options.stateFile), log);
    servers.push(metadata);
    ready = { pid: process.pid, metadataUrl: await listen(metadata, options.metadataListen) };
  } else {
    const store = new StateStore(options.stateFile, loadOrSeed(options));
    store.settle();
    // Devices turn active on time even when nobody asks, so state() and metadata readers see it.
    const schedule = (device?: StoredDevice) => {
      if (!device) return;
      const timer = setTimeout(() => {
        timers.delete(timer);
        store.settle();
      }, Math.max(0, Date.parse(device.activeAt) - Date.now()) + 20);
      timers.add(timer);
    };
    store.state.devices.filter((d) => d.state !== "active").forEach(schedule);
    const tls = makeTlsFiles(options.tlsDir ?? path.join(path.dirname(options.stateFile), "metal-emulator-tls"));
    const api = https.createServer({ key: tls.key, cert: tls.cert }, timed("api", log, createApiHandler(store, options.token!, schedule)));
    const proxy = createConnectProxy(api, log);
    const metadata = createMetadataServer(() => store.state, log);
    servers.push(proxy, metadata, api);
    const proxyUrl = await listen(proxy, options.proxyListen);
    ready = { pid: process.pid, proxyUrl, caFile: tls.caFile, metadataUrl: await listen(metadata, options.metadataListen) };
  }
  if (options.readyFile) {
    const temp = `${options.readyFile}.${process.pid}.tmp`;
    fs.writeFileSync(temp, `${JSON.stringify(ready)}\n`);
    fs.renameSync(temp, options.readyFile);
  }
  const close = async () => {
    timers.forEach((t) => clearTimeout(t));
    await Promise.all(
      servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.close(() => resolve());
            s.closeAllConnections?.();
          })
      )
    );
  };
  return { ready, close };
}

async function main(): Promise<void> {
  let options: ServerOptions;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exit(2);
  }
  const { close } = await startServer(options);
  const stop = () => {
    void close().then(() => process.exit(0));
    // Open keep-alive tunnels must not hold the process.
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

if (require.main === module) {
  main().catch((error: Error) => {
    process.stderr.write(`metal emulator: ${error.stack ?? error.message}\n`);
    process.exit(1);
  });
}
