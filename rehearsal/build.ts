/**
 * What every cached build shares (tools.ts runs them; calico-tools.ts adds Calico's):
 * the cache folder, a build's shape, and how a build runs programs.
 */
import { spawnSync } from "node:child_process";
import * as os from "node:os";
import * as path from "node:path";

/** Where builds are cached: V6FABRIC_TOOLS_CACHE, else ~/.cache/v6fabric-tools. */
export function toolsCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.V6FABRIC_TOOLS_CACHE) return path.resolve(env.V6FABRIC_TOOLS_CACHE);
  const cacheHome = env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache");
  return path.join(cacheHome, "v6fabric-tools");
}

export type ToolGroup = "terraform" | "kubernetes" | "coredns" | "calico" | "actionlint" | "matchbox";

/** One cached build: a folder named <name>-<version> holding its outputs and a stamp. */
export interface Build {
  readonly name: string;
  readonly version: string;
  readonly outputs: readonly string[];
  /** Why it cannot be built on this machine (a pinned source or a program is absent), if it cannot. */
  unavailable?(): string | undefined;
  /** Groups builds so a caller can ask only for what it runs. */
  readonly group: ToolGroup;
  /** Other groups that need this build too. */
  readonly alsoIn?: readonly ToolGroup[];
  build(work: string): void;
}

export function goEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  // Static binaries: they run inside node namespaces with their own mount tables.
  return { ...process.env, CGO_ENABLED: "0", GOFLAGS: "-buildvcs=false -trimpath", ...extra };
}

export function run(command: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
  const result = spawnSync(command, args, { cwd: options.cwd, env: options.env ?? process.env, encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
  if (result.status !== 0) {
    const output = `${result.stdout ?? ""}${result.stderr ?? ""}`.trim().split("\n").slice(-30).join("\n");
    throw new Error(`${command} ${args.join(" ")} failed (exit ${result.status ?? result.signal}):\n${output}`);
  }
  return result.stdout;
}

export function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** Whether `program` is on PATH (for a build's `unavailable`). */
export function onPath(program: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${program}`], { encoding: "utf8" }).status === 0;
}
