/**
 * `npm run rehearse`: what `cdktf deploy` would do, with the real Terraform and the
 * real providers, on this machine, before a real deploy (docs/rehearsal.md).
 *
 *   synth -> terraform init (local mirror) -> validate -> plan -> apply -> outputs
 *         -> a second plan (must change nothing) -> destroy
 *
 * Settings come from the environment exactly as for a deploy. The equinix/metal provider
 * applies the Metal objects against the Metal API emulator (rehearsal/metal.ts), seeded
 * with the project the settings describe; a Terraform Cloud backend is swapped for a
 * local state file, and the summary says so.
 *
 *   npm run rehearse [-- --keep DIR]    keep the working directory (state, plans) in DIR, skip destroy
 *   NODE_TARGET=matchbox npm run rehearse  the same against the real Matchbox server instead
 *                                        (rehearsal/matchbox-rehearsal.ts)
 *   npm run rehearse -- --control-plane  then form the cluster with the real kubeadm, kubelet,
 *                                        containerd, etcd and API server in namespaces
 *                                        (rehearsal/cluster.ts; root); with NODE_TARGET=matchbox
 *                                        each node boots from what Matchbox serves its MAC
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { seconds, table } from "./format";
import { MANAGED_PROJECT_ADDRESS } from "../constructs/metal-project-bgp";
import { loadSettings } from "../lib/settings";
import { TAYGA } from "../lib/versions";
import { APPLIED_USER_DATA_BUDGET_BYTES } from "../lib/user-data-size";
import { MetalApi, RehearsalDevice, RehearsalMetalOptions, largestPerRole, projectSeed, rehearsalDevices, reportedUserData, startRehearsalMetal } from "./metal";
import { RehearsalRoot, rehearsalRoot } from "./root-module";
import { isConfigStack } from "./config-stack";
import { PlanJson, Terraform, TerraformError, plannedActions } from "./terraform";
import { buildMissing } from "./tools";

const PROJECT_DIR = path.resolve(__dirname, "..");

/**
 * The tayga package's URL when the operator has not set NAT64_TAYGA_PACKAGE_URL: a mirror
 * of the rehearsal's own, on a private-use name (.internal), so the plan's check of the
 * placeholder passes; the rehearsal's nodes get the package from its local copy, checked
 * against the pinned hash. A deploy still needs the operator's mirror (docs/nat64.md).
 */
export const REHEARSAL_TAYGA_PACKAGE_URL = `https://tayga-mirror.rehearsal.internal/debian/${TAYGA.poolPath}`;

/** The environment the rehearsal synthesizes with: the operator's, and its own tayga mirror if none is set. */
export function rehearsalEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return env.NAT64_TAYGA_PACKAGE_URL ? env : { ...env, NAT64_TAYGA_PACKAGE_URL: REHEARSAL_TAYGA_PACKAGE_URL };
}

/** Runs the app (main.ts) with `env` into `outdir`, as `cdktf synth` does; returns the stack names. */
export function synthesize(env: NodeJS.ProcessEnv, outdir: string): string[] {
  fs.mkdirSync(path.dirname(outdir), { recursive: true });
  const result = spawnSync(process.execPath, ["-r", "ts-node/register/transpile-only", "main.ts"], {
    cwd: PROJECT_DIR,
    env: { ...rehearsalEnv(env), CDKTF_OUTDIR: outdir, CHECKPOINT_DISABLE: "1" },
    encoding: "utf8",
  });
  if (result.status !== 0) throw new Error(`synth failed:\n${(result.stderr || result.stdout).trim()}`);
  const manifest = JSON.parse(fs.readFileSync(path.join(outdir, "manifest.json"), "utf8")) as { stacks: Record<string, { synthesizedStackPath: string }> };
  return Object.keys(manifest.stacks);
}

export function readStack(outdir: string, stack: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(outdir, "stacks", stack, "cdk.tf.json"), "utf8"));
}

export interface StepTiming {
  readonly step: string;
  readonly milliseconds: number;
}

/**
 * One stack's rehearsal in its own working directory, against its own Metal API emulator
 * (state and request log in the same directory); each step is a real Terraform command.
 * `close()` stops the emulator.
 */
export class StackRehearsal {
  readonly terraform: Terraform;
  readonly metal: MetalApi;
  readonly timings: StepTiming[] = [];
  root: RehearsalRoot;

  constructor(
    readonly stack: string,
    synthesized: Record<string, unknown>,
    readonly dir: string,
    /** The settings and secrets of this rehearsal, as for a deploy. */
    readonly env: NodeJS.ProcessEnv = process.env,
    private readonly progress: (line: string) => void = () => undefined,
    metalOptions: RehearsalMetalOptions = {},
  ) {
    fs.mkdirSync(dir, { recursive: true });
    this.root = this.write(synthesized);
    this.metal = startRehearsalMetal(path.join(dir, "metal"), projectSeed(loadSettings(env), env, metalOptions));
    try {
      this.terraform = new Terraform(dir, env, this.metal.env());
    } catch (err) {
      this.metal.stop();
      throw err;
    }
  }

  /** How many API requests the emulator has answered so far (the proxy's tunnels and metadata reads not counted). */
  apiRequests(): number {
    return this.metal.requests().filter((r) => r.listener === "api").length;
  }

  /** The devices Metal holds for this stack, as the cluster rehearsal boots them. */
  devices(): RehearsalDevice[] {
    return rehearsalDevices(this.metal.state());
  }

  /** Stops the emulator (its state file stays in the working directory). Safe to call twice. */
  close(): void {
    this.metal.stop();
  }

  /** Replaces the root module with a new synth of the same stack (e.g. more workers). */
  write(synthesized: Record<string, unknown>): RehearsalRoot {
    this.root = rehearsalRoot(synthesized, "terraform.tfstate");
    fs.writeFileSync(path.join(this.dir, "main.tf.json"), `${JSON.stringify(this.root.root, null, 2)}\n`);
    return this.root;
  }

  private step<T>(name: string, run: () => T): T {
    this.progress(`  ${this.stack}: ${name} ...`);
    const started = Date.now();
    const value = run();
    const milliseconds = Date.now() - started;
    this.timings.push({ step: name, milliseconds });
    this.progress(`  ${this.stack}: ${name} done in ${seconds(milliseconds)}`);
    return value;
  }

  init(): void {
    this.step("init", () => this.terraform.must(["init", "-input=false", "-no-color"]));
  }

  validate(): void {
    this.step("validate", () => this.terraform.must(["validate", "-no-color"]));
  }

  /** Plans into `file`; returns the plan as JSON and Terraform's human-readable output. */
  plan(file = "rehearsal.tfplan"): { plan: PlanJson; text: string } {
    return this.step(`plan (${file})`, () => {
      const text = this.terraform.must(["plan", "-input=false", "-no-color", `-out=${file}`]).stdout;
      return { plan: this.terraform.json<PlanJson>(["show", "-json", file]), text };
    });
  }

  apply(file = "rehearsal.tfplan"): string {
    return this.step("apply", () => this.terraform.must(["apply", "-input=false", "-no-color", file]).stdout);
  }

  /** apply() without waiting for it (Terraform.start); `stop` ends it early. */
  startApply(file = "rehearsal.tfplan"): { done: Promise<string>; stop: () => void } {
    const args = ["apply", "-input=false", "-no-color", file];
    const started = Date.now();
    const running = this.terraform.start(args);
    const done = running.result.then((result) => {
      this.timings.push({ step: "apply", milliseconds: Date.now() - started });
      if (result.status !== 0) throw new TerraformError(args, result);
      return result.stdout;
    });
    return { done, stop: running.stop };
  }

  /** Every output with its value, sensitive ones included (terraform output -json). */
  outputs(): Record<string, { value: unknown; sensitive: boolean }> {
    return this.terraform.json(["output", "-json"]);
  }

  /** `plan -detailed-exitcode`: 0 = no changes, 2 = changes. */
  changesPlanned(): boolean {
    return this.step("second plan", () => {
      const result = this.terraform.run(["plan", "-input=false", "-no-color", "-detailed-exitcode"]);
      if (result.status !== 0 && result.status !== 2) throw new Error(`terraform plan failed:\n${result.stderr}`);
      return result.status === 2;
    });
  }

  /**
   * Destroys what the apply created. An adopted project (METAL_MANAGE_PROJECT_BGP) is
   * `prevent_destroy` and stays in Metal: as docs/bgp-fabric.md tells the operator, it
   * leaves the state first, and the stack is synthesized again without adopting it (with
   * the import block still there, destroy would import it again and stop).
   */
  destroy(): void {
    this.step("destroy", () => {
      if (this.stateResources().includes(MANAGED_PROJECT_ADDRESS)) {
        this.terraform.must(["state", "rm", "-no-color", MANAGED_PROJECT_ADDRESS]);
        const outdir = path.join(this.dir, "cdktf.out-unmanaged");
        synthesize({ ...this.env, METAL_MANAGE_PROJECT_BGP: "false" }, outdir);
        this.write(readStack(outdir, this.stack));
      }
      this.terraform.must(["destroy", "-auto-approve", "-input=false", "-no-color"]);
    });
  }

  /** Resource addresses in the state (terraform state list). */
  stateResources(): string[] {
    const result = this.terraform.run(["state", "list"]);
    return result.status === 0 ? result.stdout.split("\n").filter(Boolean) : [];
  }
}

/**
 * Each device with its address and the size of its user data as the emulator reports it
 * (its request log), then each role's largest against the applied budget (issue #22).
 */
function userDataNotes(r: StackRehearsal): string[] {
  const reported = new Map(reportedUserData(r.metal, loadSettings(r.env).clusterName).map((d) => [d.hostname, d]));
  const lines = r.devices().map((d) => `${d.hostname} ${d.publicIpv6.address}/${d.publicIpv6.cidr}, user data ${reported.get(d.hostname)?.bytes ?? "unreported"} bytes`);
  const largest = largestPerRole([...reported.values()]);
  if (largest.size === 0) return lines;
  const within = [...largest.values()].every((bytes) => bytes <= APPLIED_USER_DATA_BUDGET_BYTES);
  const roles = [...largest].map(([role, bytes]) => `${role} ${bytes} bytes (${(bytes / 1024).toFixed(1)} KiB)`).join(", ");
  const verdict = within ? "within" : "OVER (large user data slows provisioning: docs/flatcar-boot.md)";
  return [...lines, `largest user data per role: ${roles}; the budget is ${APPLIED_USER_DATA_BUDGET_BYTES} bytes each: ${verdict}`];
}

function describeCreated(plan: PlanJson): string {
  return Object.entries(plannedActions(plan))
    .map(([type, actions]) => `${Object.values(actions).reduce((a, b) => a + b, 0)} ${type}`)
    .join(", ");
}

/** The whole rehearsal for every stack the app synthesizes; returns the exit status. */
export function rehearse(env: NodeJS.ProcessEnv, keepDir?: string): number {
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const started = Date.now();
  buildMissing(["terraform"]);
  const work = keepDir ? path.resolve(keepDir) : fs.mkdtempSync(path.join(os.tmpdir(), "v6fabric-rehearsal-"));
  fs.mkdirSync(work, { recursive: true });
  const rows: string[][] = [["stack", "created", "plan", "apply", "second plan", "destroy"]];
  const notes = new Set<string>();
  try {
    say("rehearse: synthesizing with the settings of this environment ...");
    if (!env.NAT64_TAYGA_PACKAGE_URL) notes.add(`NAT64_TAYGA_PACKAGE_URL is unset: the rehearsal used its own mirror (${REHEARSAL_TAYGA_PACKAGE_URL}); a deploy stops at plan until you set yours (docs/nat64.md)`);
    const outdir = path.join(work, "cdktf.out");
    const stacks = synthesize(env, outdir);
    for (const stack of stacks) {
      if (isConfigStack(readStack(outdir, stack))) {
        // It writes to the cluster's API server, which this rehearsal has none of (Metal only).
        notes.add(`${stack}: the configuration stack is not rehearsed here: it needs a running cluster's API server (rehearsal/config-stack.ts; __tests__/rehearsal-config-stack.test.ts runs it against a bare one)`);
        continue;
      }
      const r = new StackRehearsal(stack, readStack(outdir, stack), path.join(work, "stacks", stack), env, say);
      try {
        if (r.root.replacedBackend) notes.add(`${stack}: backend ${r.root.replacedBackend} replaced by a local state file for the rehearsal`);
        r.init();
        r.validate();
        const { plan } = r.plan();
        const before = r.apiRequests();
        r.apply();
        const served = r.apiRequests() - before;
        const outputs = r.outputs();
        const leftovers = Object.entries(outputs).filter(([, o]) => JSON.stringify(o.value).includes("${"));
        if (leftovers.length > 0) throw new Error(`outputs still hold Terraform templates: ${leftovers.map(([k]) => k).join(", ")}`);
        for (const line of userDataNotes(r)) notes.add(`${stack}: ${line}`);
        notes.add(`${stack}: the Metal API emulator served ${served} requests during apply`);
        const changes = r.changesPlanned();
        if (!keepDir) r.destroy();
        const remaining = keepDir ? [] : r.stateResources();
        const t = (name: string) => seconds(r.timings.find((x) => x.step.startsWith(name))?.milliseconds ?? 0);
        rows.push([stack, describeCreated(plan), t("plan"), t("apply"), changes ? "CHANGES (bad)" : "no changes", keepDir ? "kept" : remaining.length ? `${remaining.length} left (bad)` : t("destroy")]);
        if (changes || remaining.length) {
          say(table(rows));
          return 1;
        }
      } finally {
        r.close();
        if (keepDir) notes.add(`${stack}: the Metal API emulator's state and request log are in ${path.join(r.dir, "metal")}`);
      }
    }
  } finally {
    if (!keepDir) fs.rmSync(work, { recursive: true, force: true });
  }
  say("");
  say(table(rows));
  for (const n of notes) say(`note: ${n}`);
  say(`rehearse: done in ${seconds(Date.now() - started)}${keepDir ? `; working directory kept in ${work}` : ""}`);
  return 0;
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const keepAt = args.indexOf("--keep");
  const keepDir = keepAt >= 0 ? args[keepAt + 1] : undefined;
  if (keepAt >= 0 && !keepDir) {
    console.error("rehearse: --keep needs a directory");
    process.exit(2);
  }
  const run = async (): Promise<number> => {
    if (!args.includes("--control-plane")) {
      if (process.env.NODE_TARGET?.trim() !== "matchbox") return rehearse(process.env, keepDir);
      const { rehearseMatchbox } = await import("./matchbox-rehearsal");
      return rehearseMatchbox(process.env, keepDir);
    }
    const { nodeSupport } = await import("./nodes");
    const support = nodeSupport();
    if (!support.ok) throw new Error(`the control-plane rehearsal cannot run here: ${support.why}`);
    buildMissing(process.env.NODE_TARGET?.trim() === "matchbox" ? ["terraform", "kubernetes", "matchbox"] : ["terraform", "kubernetes"]);
    const { rehearseControlPlane } = await import("./cluster");
    return rehearseControlPlane(process.env);
  };
  run().then(
    (status) => process.exit(status),
    (err) => {
      console.error(`rehearse: ${(err as Error).message}`);
      process.exit(1);
    },
  );
}
