/**
 * Synthesizes the app in-process, the way main.ts does, and returns the parsed
 * cdk.tf.json of every stack. Validations run (as `cdktf synth` runs them).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { App } from "cdktf";
import { addClusterStacks } from "../../constructs/cluster-stacks";
import { loadSettings } from "../../lib/settings";

export type TerraformJson = {
  resource?: Record<string, Record<string, Record<string, any>>>;
  data?: Record<string, Record<string, Record<string, any>>>;
  output?: Record<string, Record<string, any>>;
  variable?: Record<string, Record<string, any>>;
  provider?: Record<string, any[]>;
  terraform?: Record<string, any>;
  locals?: Record<string, any>;
};

export interface Synthesized {
  /** Stack name -> parsed cdk.tf.json. */
  readonly stacks: Record<string, TerraformJson>;
  /** Stack name -> the raw cdk.tf.json text. */
  readonly raw: Record<string, string>;
  readonly outdir: string;
}

/** Output folders of this test file's synths, removed after its last test. */
const outdirs: string[] = [];
// Registered when a test file first imports this module (top level, where jest allows hooks).
if (typeof afterAll === "function") {
  afterAll(() => {
    for (const dir of outdirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });
}

/** Synthesizes into a new temp folder (`v6fabric-test-synth-*`), which is removed after the test file's last test. */
export function synthesize(env: Record<string, string> = {}): Synthesized {
  const settings = loadSettings(env);
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), "v6fabric-test-synth-"));
  outdirs.push(outdir);
  const app = new App({ outdir, skipValidation: false });
  addClusterStacks(app, settings);
  app.synth();
  const stacks: Record<string, TerraformJson> = {};
  const raw: Record<string, string> = {};
  for (const name of fs.readdirSync(path.join(outdir, "stacks"))) {
    raw[name] = fs.readFileSync(path.join(outdir, "stacks", name, "cdk.tf.json"), "utf8");
    stacks[name] = JSON.parse(raw[name]);
  }
  return { stacks, raw, outdir };
}

/** All resources of `type` in a stack, as [logical id, body] pairs. */
export function resourcesOf(stack: TerraformJson, type: string): [string, Record<string, any>][] {
  return Object.entries(stack.resource?.[type] ?? {});
}

/** The single stack of a synthesis (without CONFIG_STACK_RUNNER_PREFIX the app has one cluster stack). */
export function onlyStack(s: Synthesized): TerraformJson {
  const names = Object.keys(s.stacks);
  if (names.length !== 1) throw new Error(`expected one stack, got ${names.join(", ")}`);
  return s.stacks[names[0]];
}
