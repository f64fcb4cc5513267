/**
 * Runs a node's own systemd units the way systemd would start them on first boot:
 * the unit file and its drop-ins as Ignition wrote them into the node's root, their
 * `Environment=` and `EnvironmentFile=` lines, their `ConditionPathExists=`, and their
 * `ExecStart=` command with its `$VARIABLE`s, nothing else. The rehearsal decides only the order (the units' own After= order)
 * and how often a failed unit is retried.
 */
import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { RehearsalNode } from "./nodes";

export interface UnitFile {
  readonly name: string;
  readonly environment: Readonly<Record<string, string>>;
  /** ExecStart=, split into words; empty for a unit that only acts when it stops. */
  readonly execStart: readonly string[];
  /** Each ExecStartPre= in order: what systemd runs before ExecStart=, each of which must succeed. */
  readonly execStartPre: readonly (readonly string[])[];
  /** Each ExecStop= in order: what the unit runs when the node shuts down. */
  readonly execStop: readonly (readonly string[])[];
  /** ConditionPathExists= values, `!` kept. */
  readonly conditions: readonly string[];
  /** EnvironmentFile= paths in order; `optional` for systemd's `-` prefix. */
  readonly environmentFiles: readonly { readonly path: string; readonly optional: boolean }[];
  /** RestartPreventExitStatus= values: exit codes after which systemd does not restart the unit. */
  readonly restartPreventExitStatus: readonly number[];
}

/** Splits systemd's `KEY=value "KEY2=value 2"` assignment lists. */
function assignments(text: string): [string, string][] {
  const out: [string, string][] = [];
  for (const match of text.matchAll(/"([^"]*)"|(\S+)/g)) {
    const word = match[1] ?? match[2];
    const eq = word.indexOf("=");
    if (eq > 0) out.push([word.slice(0, eq), word.slice(eq + 1)]);
  }
  return out;
}

/** Reads `name` and its drop-ins from the node's root (later settings win, as in systemd). */
export function readUnit(root: string, name: string): UnitFile {
  const dir = path.join(root, "etc", "systemd", "system");
  const main = path.join(dir, name);
  if (!fs.existsSync(main)) throw new Error(`${name} is not in ${dir}: did Ignition write it?`);
  const dropinDir = `${main}.d`;
  const texts = [fs.readFileSync(main, "utf8")];
  if (fs.existsSync(dropinDir)) for (const f of fs.readdirSync(dropinDir).filter((f) => f.endsWith(".conf")).sort()) texts.push(fs.readFileSync(path.join(dropinDir, f), "utf8"));
  const environment: Record<string, string> = {};
  let execStart: string[] = [];
  const execStartPre: string[][] = [];
  const execStop: string[][] = [];
  const conditions: string[] = [];
  const environmentFiles: { path: string; optional: boolean }[] = [];
  const restartPreventExitStatus: number[] = [];
  for (const text of texts) {
    let section = "";
    for (const raw of text.split("\n")) {
      const line = raw.trim();
      if (line.startsWith("[")) section = line;
      if (line.startsWith("#") || !line.includes("=")) continue;
      const key = line.slice(0, line.indexOf("="));
      const value = line.slice(line.indexOf("=") + 1);
      if (section === "[Service]" && key === "Environment") for (const [k, v] of assignments(value)) environment[k] = v;
      if (section === "[Service]" && key === "ExecStart" && value !== "") execStart = value.split(/\s+/);
      if (section === "[Service]" && key === "ExecStartPre" && value !== "") execStartPre.push(value.split(/\s+/));
      if (section === "[Service]" && key === "ExecStop" && value !== "") execStop.push(value.split(/\s+/));
      if (section === "[Service]" && key === "EnvironmentFile") environmentFiles.push({ path: value.replace(/^-/, ""), optional: value.startsWith("-") });
      if (section === "[Unit]" && key === "ConditionPathExists") conditions.push(value);
      if (section === "[Service]" && key === "RestartPreventExitStatus") restartPreventExitStatus.push(...value.split(/\s+/).filter(Boolean).map(Number));
    }
  }
  if (execStart.length === 0 && execStop.length === 0) throw new Error(`${name} has no ExecStart= and no ExecStop=`);
  return { name, environment, execStart, execStartPre, execStop, conditions, environmentFiles, restartPreventExitStatus };
}

/** Reads `KEY=value` lines as systemd's EnvironmentFile= does (one pair of quotes stripped). */
export function parseEnvironmentFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";") || !line.includes("=")) continue;
    const key = line.slice(0, line.indexOf("=")).trim();
    const value = line.slice(line.indexOf("=") + 1).trim();
    out[key] = /^(["']).*\1$/.test(value) ? value.slice(1, -1) : value;
  }
  return out;
}

/**
 * The unit's environment as systemd builds it when the unit starts: Environment=,
 * then each EnvironmentFile= read at that moment from the node (a missing optional
 * one is skipped). Throws for a missing required file, as systemd refuses to start.
 */
export function unitEnvironment(node: RehearsalNode, unit: UnitFile): Record<string, string> {
  const env: Record<string, string> = { ...unit.environment };
  for (const file of unit.environmentFiles) {
    const host = node.hostPath(file.path);
    if (!fs.existsSync(host)) {
      if (file.optional) continue;
      throw new Error(`${unit.name}: EnvironmentFile=${file.path} is missing`);
    }
    Object.assign(env, parseEnvironmentFile(fs.readFileSync(host, "utf8")));
  }
  return env;
}

/**
 * ExecStart= with systemd's variable expansion: a word that is exactly `$NAME` becomes
 * the value's words (none when unset or empty); `${NAME}` inside a word is replaced as is.
 */
export function expandExecStart(execStart: readonly string[], env: Readonly<Record<string, string>>): string[] {
  return execStart.flatMap((word) => {
    const whole = /^\$([A-Za-z_][A-Za-z0-9_]*)$/.exec(word);
    if (whole) return (env[whole[1]] ?? "").split(/\s+/).filter(Boolean);
    return [word.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => env[name] ?? "")];
  });
}

export interface UnitRun {
  readonly unit: string;
  readonly attempt: number;
  readonly status: number;
  readonly output: string;
  readonly skipped?: string;
  readonly milliseconds: number;
}

/** Whether the unit's conditions hold in the node (paths as the node sees them). */
export function conditionsHold(node: RehearsalNode, unit: UnitFile): string | undefined {
  for (const condition of unit.conditions) {
    const negate = condition.startsWith("!");
    const p = negate ? condition.slice(1) : condition;
    const exists = node.exec(["test", "-e", p]).status === 0;
    if (exists === negate) return `ConditionPathExists=${condition} is false`;
  }
  return undefined;
}

/** Starts the unit's ExecStart in the node with the unit's environment; resolves when it exits. */
export function runUnitOnce(
  node: RehearsalNode,
  unit: UnitFile,
  extraEnv: Record<string, string>,
  logFile: string,
  attempt: number,
  onOutput?: (text: string) => void,
): Promise<UnitRun> {
  const skipped = conditionsHold(node, unit);
  if (skipped) return Promise.resolve({ unit: unit.name, attempt, status: 0, output: "", skipped, milliseconds: 0 });
  if (unit.execStart.length === 0) throw new Error(`${unit.name} has no ExecStart=: it acts only when it stops (stopUnit)`);
  return runCommand(node, unit, unit.execStart, extraEnv, logFile, attempt, onOutput);
}

/**
 * What systemd does when the unit stops at shutdown: each ExecStop= in order, in the
 * node with the unit's environment; stops at the first that fails.
 */
export async function stopUnit(node: RehearsalNode, name: string, options: { logFile: string; extraEnv?: Record<string, string> }): Promise<UnitRun[]> {
  const unit = readUnit(node.root, name);
  const runs: UnitRun[] = [];
  for (const argv of unit.execStop) {
    const run = await runCommand(node, unit, argv, options.extraEnv ?? {}, options.logFile, runs.length + 1);
    runs.push(run);
    if (run.status !== 0) break;
  }
  return runs;
}

function runCommand(
  node: RehearsalNode,
  unit: UnitFile,
  argv: readonly string[],
  extraEnv: Record<string, string>,
  logFile: string,
  attempt: number,
  onOutput?: (text: string) => void,
): Promise<UnitRun> {
  const started = Date.now();
  const env = { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", ...unit.environment, ...extraEnv };
  const [cmd, ...args] = [...node.enterArgs(), ...argv];
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const take = (d: Buffer) => {
      output += d;
      onOutput?.(String(d));
    };
    child.stdout.on("data", take);
    child.stderr.on("data", take);
    child.on("close", (code, signal) => {
      fs.appendFileSync(logFile, `----- ${unit.name} attempt ${attempt}: exit ${code ?? signal}\n${output}\n`);
      resolve({ unit: unit.name, attempt, status: code ?? -1, output, milliseconds: Date.now() - started });
    });
  });
}

/** Runs the unit until it succeeds (Restart=on-failure), at most `attempts` times. */
export async function runUnit(
  node: RehearsalNode,
  name: string,
  options: {
    extraEnv?: Record<string, string>;
    attempts?: number;
    retryDelayMs?: number;
    logFile: string;
    beforeRetry?: (attempt: number) => Promise<void> | void;
    /** Called with the unit's output as it comes (a fault test stops the unit at a printed step). */
    onOutput?: (text: string, attempt: number) => void;
  },
): Promise<UnitRun[]> {
  const unit = readUnit(node.root, name);
  const runs: UnitRun[] = [];
  for (let attempt = 1; attempt <= (options.attempts ?? 1); attempt++) {
    if (attempt > 1) await options.beforeRetry?.(attempt);
    const onOutput = options.onOutput;
    const run = await runUnitOnce(node, unit, options.extraEnv ?? {}, options.logFile, attempt, onOutput && ((text) => onOutput(text, attempt)));
    runs.push(run);
    if (run.status === 0 || (unit.restartPreventExitStatus ?? []).includes(run.status ?? -1)) break;
    await new Promise((r) => setTimeout(r, options.retryDelayMs ?? 2000));
  }
  return runs;
}

/**
 * Starts a long-running unit (`Type=notify`, e.g. v6fabric-api-path.service) the way
 * systemd would: its ExecStart in the node with the unit's environment, output to
 * `logFile`, killed with the node. systemd waits for the program's READY=1; the
 * rehearsal gives it no notify socket and waits for the line the program prints
 * alongside (`ready`) instead. Rejects when the program exits or `timeoutMs` passes first.
 */
export async function startUnit(node: RehearsalNode, name: string, options: { logFile: string; ready: RegExp; timeoutMs?: number }): Promise<ChildProcess> {
  const unit = readUnit(node.root, name);
  const env = { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", ...unitEnvironment(node, unit) };
  const child = node.start(expandExecStart(unit.execStart, env), options.logFile, env);
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  for (;;) {
    const log = fs.existsSync(options.logFile) ? fs.readFileSync(options.logFile, "utf8") : "";
    if (options.ready.test(log)) return child;
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${name} on ${node.hostname} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${log}`);
    if (Date.now() > deadline) throw new Error(`${name} on ${node.hostname} was not ready within ${options.timeoutMs ?? 30_000} ms:\n${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Starts a long-running unit of `Type=simple` (e.g. v6fabric-nat64.service) the way
 * systemd would: each ExecStartPre= in order, in the node with the unit's environment
 * (the first that fails fails the start), then ExecStart=, output to `logFile`, killed
 * with the node. systemd counts a simple unit started once its program runs; this
 * resolves when the program is still running `settleMs` later, and rejects otherwise.
 */
export async function startSimpleUnit(node: RehearsalNode, name: string, options: { logFile: string; settleMs?: number }): Promise<ChildProcess> {
  const unit = readUnit(node.root, name);
  const env = { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", ...unitEnvironment(node, unit) };
  for (const [i, argv] of unit.execStartPre.entries()) {
    const run = await runCommand(node, unit, expandExecStart(argv, env), {}, options.logFile, i + 1);
    if (run.status !== 0) throw new Error(`${name} on ${node.hostname}: ExecStartPre=${argv.join(" ")} failed (${run.status}):\n${run.output}`);
  }
  const child = node.start(expandExecStart(unit.execStart, env), options.logFile, env);
  await new Promise((r) => setTimeout(r, options.settleMs ?? 1000));
  if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${name} on ${node.hostname} exited (${child.exitCode ?? child.signalCode}) right after it started; see ${options.logFile}`);
  return child;
}
