/**
 * Running the boot scripts as shipped (decoded from a rendered config) with bash, on
 * fake metadata and fake commands. Paths come from environment variables the scripts
 * document, so nothing here touches the machine.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { NODE_PATHS, renderNodeIgnition } from "../../ignition";
import { SAMPLE_BOOT_VALUES } from "../../lib/boot-values";
import { fixtureInput } from "./ignition-fixtures";
import { fileText, IgnConfig, tempDir } from "./ignition";

/** The init fixture's config, as Ignition reads it. */
export const initConfig = JSON.parse(JSON.stringify(renderNodeIgnition(fixtureInput("init")))) as IgnConfig;
/** The worker fixture's config. */
export const workerConfig = JSON.parse(JSON.stringify(renderNodeIgnition(fixtureInput("worker")))) as IgnConfig;

/** Writes the shipped script `name` (of `from`, by default the init fixture's config) to a temp dir and returns its path. */
export function script(name: string, from: IgnConfig = initConfig): string {
  const dir = tempDir("script");
  const p = path.join(dir, name);
  fs.writeFileSync(p, fileText(from, `${NODE_PATHS.scriptDir}/${name}`), { mode: 0o755 });
  return p;
}

export function run(scriptPath: string, env: Record<string, string>, args: string[] = [], timeout = 30_000) {
  // A runaway script (say, a function calling itself) fails the test instead of holding the machine.
  const result = spawnSync("bash", [scriptPath, ...args], { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env }, encoding: "utf8", timeout });
  return { status: result.status, out: `${result.stdout}${result.stderr}` };
}

/** A fake command that logs its arguments to `log` and then runs `body`. */
export function fakeCommand(dir: string, name: string, log: string, body = ""): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, `#!/bin/bash\necho "${name} $*" >> "${log}"\n${body}\n`, { mode: 0o755 });
  return p;
}

export function metadataEnv(dir: string, lines: string[]): string {
  const p = path.join(dir, "flatcar");
  fs.writeFileSync(p, lines.join("\n") + "\n");
  return p;
}

export const METADATA = [
  "COREOS_PACKET_HOSTNAME=v6fabric-cp-1",
  `COREOS_PACKET_IPV6_PUBLIC_0=${SAMPLE_BOOT_VALUES.nodeIpv6}`,
  "COREOS_PACKET_IPV6_PUBLIC_GATEWAY_0=2001:db8:0:ab00::2",
  `COREOS_PACKET_IPV4_PRIVATE_0=${SAMPLE_BOOT_VALUES.nodePrivateIpv4}`,
];
