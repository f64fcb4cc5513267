/**
 * Start and stop the Metal API emulator from a synchronous caller (the rehearsal, tests).
 * The emulator runs as its own detached process (server.ts): the rehearsal runs Terraform
 * with spawnSync, which blocks this process's event loop.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { LoggedDevice, readRequestLog, RequestLogEntry } from "./request-log";
import type { ReadyInfo } from "./server";
import { MetalSeed, MetalState, readState } from "./state";

export type { MetalSeed, SeedProject, SeedBgpConfig, SeedFaults, MetalState } from "./state";
export type { LoggedDevice, RequestLogEntry } from "./request-log";
export type { ReadyInfo } from "./server";

export interface MetalEmulatorOptions {
  /** Folder for the emulator's files (state.json, requests.log, ready.json, tls/, server.log). Created if missing. */
  readonly dir: string;
  /** The API token the emulator accepts (given to Terraform as METAL_AUTH_TOKEN). */
  readonly token: string;
  /**
   * What the account holds at first start. Ignored when the state file already exists.
   * @default - none: the state file must exist
   */
  readonly seed?: MetalSeed;
  /**
   * The state file.
   * @default "<dir>/state.json"
   */
  readonly stateFile?: string;
  /**
   * Where the metadata service listens, `ADDR:PORT` or `[V6]:PORT`.
   * @default "127.0.0.1:0" (a free port)
   */
  readonly metadataListen?: string;
  /**
   * Run only the metadata service, reading the state file the full emulator writes.
   * @default false
   */
  readonly metadataOnly?: boolean;
  /**
   * A network namespace (`ip netns`) to run the emulator in, e.g. the rehearsal's metro,
   * so nodes reach the metadata service from their own namespaces.
   * @default - this process's namespace
   */
  readonly netns?: string;
  /**
   * How long to wait for the emulator to listen.
   * @default 30000
   */
  readonly startTimeoutMs?: number;
}

export interface MetalEmulatorHandle extends ReadyInfo {
  readonly stateFile: string;
  readonly logFile: string;
  /** The environment Terraform needs to reach the emulator and nothing else. */
  env(): Record<string, string>;
  /** The emulator's state as last written (projects, devices with addresses and user data, BGP sessions, IP blocks). */
  state(): MetalState;
  /** Every request the emulator answered, in order. */
  requests(): RequestLogEntry[];
  /**
   * What the emulator reported of each device it holds: its hostname and the bytes of
   * user data it holds, from the device's last create or update in the request log.
   */
  reportedDevices(): LoggedDevice[];
  /** SIGTERM, wait until the process is gone (SIGKILL after 5 s). Safe to call twice. */
  stop(): void;
}

const SERVER = path.join(__dirname, "server.ts");

/** Sleeps without a child process or busy loop (the caller may be synchronous). */
function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Whether the process runs; a zombie (exited, not yet reaped while this process is synchronous) does not. */
function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    // no /proc entry: gone (or no /proc: ask the kernel below)
    if (fs.existsSync("/proc/self/stat")) return false;
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The last logged report of each device `state` holds (deleted devices drop out), by hostname. */
export function reportedDevices(log: readonly RequestLogEntry[], state: MetalState): LoggedDevice[] {
  const last = new Map<string, LoggedDevice>();
  for (const entry of log) if (entry.device) last.set(entry.device.id, entry.device);
  return state.devices
    .map((d) => last.get(d.id))
    .filter((d): d is LoggedDevice => d !== undefined)
    .sort((a, b) => a.hostname.localeCompare(b.hostname));
}

export function startMetalEmulator(options: MetalEmulatorOptions): MetalEmulatorHandle {
  const dir = path.resolve(options.dir);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stateFile = path.resolve(options.stateFile ?? path.join(dir, "state.json"));
  const logFile = path.join(dir, options.metadataOnly ? "metadata-requests.log" : "requests.log");
  const readyFile = path.join(dir, options.metadataOnly ? "metadata-ready.json" : "ready.json");
  const serverLog = path.join(dir, options.metadataOnly ? "metadata-server.log" : "server.log");
  fs.rmSync(readyFile, { force: true });
  const args = ["-r", require.resolve("ts-node/register/transpile-only"), SERVER, "--state", stateFile, "--log", logFile, "--ready-file", readyFile];
  if (options.seed) {
    const seedFile = path.join(dir, "seed.json");
    fs.writeFileSync(seedFile, `${JSON.stringify(options.seed, null, 2)}\n`, { mode: 0o600 });
    args.push("--seed", seedFile);
  }
  if (options.metadataListen) args.push("--metadata-listen", options.metadataListen);
  if (options.metadataOnly) args.push("--metadata-only");
  else args.push("--tls-dir", path.join(dir, "tls"));
  const output = fs.openSync(serverLog, "a", 0o600);
  // The token goes by environment, not argv, so `ps` does not show it.
  const [command, argv] = options.netns ? ["ip", ["netns", "exec", options.netns, process.execPath, ...args]] : [process.execPath, args];
  const child = spawn(command, argv, {
    detached: true,
    stdio: ["ignore", output, output],
    env: { ...process.env, METAL_EMULATOR_TOKEN: options.token, TS_NODE_PROJECT: path.join(__dirname, "..", "..", "tsconfig.json") },
  });
  fs.closeSync(output);
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start the Metal emulator (${process.execPath} ${SERVER})`);

  const deadline = Date.now() + (options.startTimeoutMs ?? 30000);
  let ready: ReadyInfo | undefined;
  while (!ready) {
    if (fs.existsSync(readyFile)) {
      ready = JSON.parse(fs.readFileSync(readyFile, "utf8")) as ReadyInfo;
      break;
    }
    const why = !alive(pid) ? "exited" : Date.now() > deadline ? "did not get ready in time" : undefined;
    if (why) {
      if (alive(pid)) process.kill(pid, "SIGKILL");
      throw new Error(`the Metal emulator ${why}; its output (${serverLog}):\n${fs.readFileSync(serverLog, "utf8").slice(-4000)}`);
    }
    sleepMs(50);
  }

  let stopped = false;
  const info = ready;
  return {
    ...info,
    stateFile,
    logFile,
    env: () => {
      if (!info.proxyUrl || !info.caFile) throw new Error("a metadata-only emulator has no API to point Terraform at");
      return {
        HTTPS_PROXY: info.proxyUrl,
        https_proxy: info.proxyUrl,
        NO_PROXY: "",
        no_proxy: "",
        SSL_CERT_FILE: info.caFile,
        METAL_AUTH_TOKEN: options.token,
      };
    },
    state: () => readState(stateFile),
    requests: () => readRequestLog(logFile),
    reportedDevices: () => reportedDevices(readRequestLog(logFile), readState(stateFile)),
    stop: () => {
      if (stopped) return;
      stopped = true;
      if (!alive(info.pid)) return;
      process.kill(info.pid, "SIGTERM");
      const until = Date.now() + 5000;
      while (alive(info.pid) && Date.now() < until) sleepMs(50);
      if (alive(info.pid)) process.kill(info.pid, "SIGKILL");
      while (alive(info.pid)) sleepMs(20);
    },
  };
}
