/**
 * The Terraform rehearsal's cases (rehearsal-terraform.test.ts): one temp folder, one synth
 * per set of settings, and every emulator and background apply a case started, stopped by
 * close() whatever happened.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { RehearsalMetalOptions } from "../../rehearsal/metal";
import { StackRehearsal, readStack, synthesize } from "../../rehearsal/rehearse";
import { PlanJson, plannedActions } from "../../rehearsal/terraform";
import type { Applied } from "./terraform-rehearsal";

const PROJECT_DIR = path.resolve(__dirname, "..", "..");

/** Only what a deploy reads: the settings of each case, and TF_VAR_* (none here). */
export const BASE_ENV: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, CHECKPOINT_DISABLE: "1" };

/** The variants issue #22's acceptance names, with their node counts. */
export const VARIANTS: [string, Record<string, string>, number][] = [
  ["the default cluster", {}, 3],
  ["3 + 5", { CONTROL_PLANE_COUNT: "3", WORKER_COUNT: "5" }, 8],
  ["Terraform Cloud", { TF_CLOUD_ORGANIZATION: "acme", TF_WORKSPACE_PREFIX: "v6-" }, 3],
];

export const slug = (variant: string) => variant.replace(/\W+/g, "-");

/** What `npm run rehearse -- --keep DIR` printed, and the rehearsal it kept, opened again. */
export interface Rehearsed {
  readonly stdout: string;
  readonly applied: Applied;
}

export class TerraformCases {
  readonly work = fs.mkdtempSync(path.join(os.tmpdir(), "v6fabric-rehearsal-test-"));
  private readonly opened: StackRehearsal[] = [];
  private readonly running: (() => void)[] = [];
  private readonly synthesized = new Map<string, { outdir: string; stack: string }>();

  /** One synth per set of settings: the guards' rehearsals reuse the applied cases' (a synth costs seconds). */
  private synthOnce(name: string, settings: Record<string, string>): { outdir: string; stack: string } {
    const key = JSON.stringify(Object.entries(settings).sort());
    if (!this.synthesized.has(key)) {
      const outdir = path.join(this.work, name, "cdktf.out");
      const [stack] = synthesize({ ...BASE_ENV, ...settings }, outdir);
      this.synthesized.set(key, { outdir, stack });
    }
    return this.synthesized.get(key)!;
  }

  /** The stack `settings` synthesize to (once). */
  stackOf(name: string, settings: Record<string, string>): Record<string, unknown> {
    const { outdir, stack } = this.synthOnce(name, settings);
    return readStack(outdir, stack);
  }

  /** Synthesizes `settings` (once) and starts the stack's rehearsal (and its emulator) in its own folder; nothing applied yet. */
  rehearsalOf(name: string, settings: Record<string, string>, metal: RehearsalMetalOptions = {}): StackRehearsal {
    const { outdir, stack } = this.synthOnce(name, settings);
    const rehearsal = new StackRehearsal(stack, readStack(outdir, stack), path.join(this.work, name, "tf"), { ...BASE_ENV, ...settings }, undefined, metal);
    this.opened.push(rehearsal);
    return rehearsal;
  }

  /** Init, validate, plan and apply `settings` against a new emulator. */
  applyCase(name: string, settings: Record<string, string>, metal: RehearsalMetalOptions = {}): Applied {
    const started = Date.now();
    const rehearsal = this.rehearsalOf(name, settings, metal);
    rehearsal.init();
    rehearsal.validate();
    const { plan, text } = rehearsal.plan();
    const before = rehearsal.apiRequests();
    rehearsal.apply();
    const requests = rehearsal.apiRequests() - before;
    console.log(`rehearsal figure: ${name}, the Metal API emulator served ${requests} requests during apply`);
    return { rehearsal, outputs: rehearsal.outputs(), planText: text, created: plannedActions(plan), milliseconds: Date.now() - started, requests };
  }

  /** Starts the rehearsal's apply without waiting (StackRehearsal.startApply); close() stops it if it still runs. */
  startApply(rehearsal: StackRehearsal): Promise<string> {
    const apply = rehearsal.startApply();
    this.running.push(apply.stop);
    return apply.done;
  }

  /**
   * Runs the real `npm run rehearse -- --keep DIR` with `settings` (a child process, with
   * only the settings in its environment), then opens the kept working directory again
   * with a new emulator on the kept Metal state (with `metal`'s faults): the tests go on
   * from what the command applied, so it costs no apply of its own.
   */
  rehearseKept(name: string, settings: Record<string, string>, metal: RehearsalMetalOptions = {}): Rehearsed {
    const kept = path.join(this.work, name);
    // npm's update check would reach for a registry: off, like every other network use here.
    const result = spawnSync("npm", ["run", "--silent", "rehearse", "--", "--keep", kept], {
      cwd: PROJECT_DIR,
      env: { ...BASE_ENV, ...settings, npm_config_update_notifier: "false" },
      encoding: "utf8",
      timeout: 270_000,
    });
    if (result.status !== 0) throw new Error(`npm run rehearse failed (exit ${result.status}):\n${result.stdout}\n${result.stderr}`);
    expect(fs.readdirSync(path.join(kept, "stacks"))).toEqual(["v6fabric"]);
    const rehearsal = new StackRehearsal("v6fabric", readStack(path.join(kept, "cdktf.out"), "v6fabric"), path.join(kept, "stacks", "v6fabric"), { ...BASE_ENV, ...settings }, undefined, metal);
    this.opened.push(rehearsal);
    const served = /v6fabric: the Metal API emulator served (\d+) requests during apply/.exec(result.stdout);
    const done = /rehearse: done in ([\d.]+) s/.exec(result.stdout);
    const applied: Applied = {
      rehearsal,
      outputs: rehearsal.outputs(),
      // The plan the command applied, as Terraform shows it.
      planText: rehearsal.terraform.must(["show", "-no-color", "rehearsal.tfplan"]).stdout,
      created: plannedActions(rehearsal.terraform.json<PlanJson>(["show", "-json", "rehearsal.tfplan"])),
      milliseconds: Number(done?.[1] ?? NaN) * 1000,
      requests: Number(served?.[1] ?? NaN),
    };
    return { stdout: result.stdout, applied };
  }

  /** Stops every apply still running and every emulator, then removes the folder. */
  close(): void {
    this.running.forEach((stop) => stop());
    this.opened.forEach((r) => r.close());
    fs.rmSync(this.work, { recursive: true, force: true });
  }
}
