/**
 * Runs the pinned Terraform (rehearsal/tools.ts) in one working directory, offline:
 * providers come only from the local filesystem mirror, named in a CLI config that
 * TF_CLI_CONFIG_FILE points at, and nothing calls home.
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { providerMirrorDir, terraformBinary } from "./tools";

export interface TerraformResult {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly milliseconds: number;
}

/**
 * A CLI config that installs every provider from the mirror and nothing from a
 * registry: a provider missing from the mirror fails `init` instead of being fetched.
 */
export function mirrorCliConfig(mirror = providerMirrorDir()): string {
  return [
    "provider_installation {",
    "  filesystem_mirror {",
    `    path    = ${JSON.stringify(mirror)}`,
    '    include = ["registry.terraform.io/*/*"]',
    "  }",
    "}",
    "disable_checkpoint = true",
    "",
  ].join("\n");
}

/**
 * Variables of the caller's environment that must not steer the rehearsal's Terraform:
 * its own CLI and cloud settings, and the operator's Metal token and proxies (the
 * rehearsal reaches only its emulator, with a token of its own).
 */
const DROPPED = /^(TF_CLI_CONFIG_FILE|TF_WORKSPACE|TF_DATA_DIR|TF_PLUGIN_CACHE_DIR|TF_LOG.*|TF_CLOUD_.*|TF_TOKEN_.*|METAL_AUTH_TOKEN|PACKET_AUTH_TOKEN|(HTTPS?|ALL|NO)_PROXY|(https?|all|no)_proxy|SSL_CERT_(FILE|DIR))$/;

export class Terraform {
  readonly env: NodeJS.ProcessEnv;

  /**
   * `dir` holds the root module; the CLI config is written beside it. `metalEnv` is how
   * the provider reaches the Metal API emulator (proxy, CA, token).
   */
  constructor(
    readonly dir: string,
    baseEnv: NodeJS.ProcessEnv = process.env,
    metalEnv: Readonly<Record<string, string>> = {},
    /** A command Terraform runs under, e.g. `ip netns exec <ns>` to run where a runner would. */
    readonly runUnder: readonly string[] = [],
  ) {
    const cliConfig = path.join(dir, ".terraformrc.rehearsal");
    fs.writeFileSync(cliConfig, mirrorCliConfig());
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(baseEnv)) if (!DROPPED.test(k)) env[k] = v;
    // TF_VAR_* stay: settings and secrets reach the rehearsal exactly as a deploy.
    this.env = { ...env, ...metalEnv, TF_CLI_CONFIG_FILE: cliConfig, CHECKPOINT_DISABLE: "1", TF_IN_AUTOMATION: "1", TF_INPUT: "0" };
  }

  run(args: readonly string[]): TerraformResult {
    const started = Date.now();
    const [command, ...prefix] = [...this.runUnder, terraformBinary()];
    const result = spawnSync(command, [...prefix, ...args], { cwd: this.dir, env: this.env, encoding: "utf8", maxBuffer: 512 * 1024 * 1024 });
    return { status: result.status ?? -1, stdout: result.stdout ?? "", stderr: result.stderr ?? "", milliseconds: Date.now() - started };
  }

  /**
   * Like run(), without waiting: several rehearsals' applies can wait on their emulators
   * at once. Output goes to files in the working directory, not pipes: a caller busy in
   * spawnSync meanwhile could not drain a pipe, and Terraform would stall on it.
   */
  start(args: readonly string[]): RunningTerraform {
    const started = Date.now();
    const files = [path.join(this.dir, ".terraform-run.stdout"), path.join(this.dir, ".terraform-run.stderr")];
    const fds = files.map((f) => fs.openSync(f, "w", 0o600));
    const [command, ...prefix] = [...this.runUnder, terraformBinary()];
    const child = spawn(command, [...prefix, ...args], { cwd: this.dir, env: this.env, stdio: ["ignore", fds[0], fds[1]] });
    fds.forEach((fd) => fs.closeSync(fd));
    const result = new Promise<TerraformResult>((resolve) => {
      const finish = (status: number) => {
        const [stdout, stderr] = files.map((f) => fs.readFileSync(f, "utf8"));
        files.forEach((f) => fs.rmSync(f, { force: true }));
        resolve({ status, stdout, stderr, milliseconds: Date.now() - started });
      };
      child.on("error", (error) => {
        fs.appendFileSync(files[1], `${error.message}\n`);
        finish(-1);
      });
      child.on("exit", (code) => finish(code ?? -1));
    });
    return { result, stop: () => child.exitCode === null && child.signalCode === null && child.kill("SIGTERM") };
  }

  /** Like run(), but a non-zero exit throws with Terraform's own message. */
  must(args: readonly string[]): TerraformResult {
    const result = this.run(args);
    if (result.status !== 0) throw new TerraformError(args, result);
    return result;
  }

  json<T>(args: readonly string[]): T {
    return JSON.parse(this.must(args).stdout) as T;
  }
}

/** A Terraform command started with start(). */
export interface RunningTerraform {
  /** Settles when the command ends, with its status and output. */
  readonly result: Promise<TerraformResult>;
  /** SIGTERM to Terraform if it still runs (Terraform then stops its providers). */
  readonly stop: () => void;
}

export class TerraformError extends Error {
  constructor(
    readonly args: readonly string[],
    readonly result: TerraformResult,
  ) {
    super(`terraform ${args.join(" ")} failed (exit ${result.status}):\n${(result.stderr || result.stdout).trim()}`);
    this.name = "TerraformError";
  }
}

/** `terraform show -json <plan>` as far as the rehearsal reads it. */
export interface PlanJson {
  readonly resource_changes?: readonly { address: string; type: string; change: { actions: readonly string[] } }[];
  readonly output_changes?: Readonly<Record<string, { actions: readonly string[] }>>;
}

/** Counts of planned actions per resource type, e.g. { "tls_private_key": { create: 5 } }. */
export function plannedActions(plan: PlanJson): Record<string, Record<string, number>> {
  const counts: Record<string, Record<string, number>> = {};
  for (const rc of plan.resource_changes ?? []) {
    const action = rc.change.actions.join("+");
    if (action === "no-op" || action === "read") continue;
    const byType = (counts[rc.type] ??= {});
    byType[action] = (byType[action] ?? 0) + 1;
  }
  return counts;
}
