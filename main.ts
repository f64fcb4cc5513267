/**
 * The cdktf app: settings from the environment -> address plan -> stacks.
 * See README.md for every setting and what `npm run synth` writes.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { App, Manifest } from "cdktf";
import type { ClusterSettings } from "./lib/settings";

/**
 * Removes what the last synth wrote to `outdir`: cdktf's manifest.json (written last;
 * `npm run report` and `synth-diff` refuse a tree without it), each stack's cdk.tf.json
 * and the report made from them. Terraform's files in the stack directories stay: the
 * local backend keeps the state there.
 */
function removePreviousSynth(outdir: string): void {
  const stacksDir = path.join(outdir, Manifest.stacksFolder);
  const stacks = fs.existsSync(stacksDir) ? fs.readdirSync(stacksDir).map((name) => path.join(stacksDir, name, "cdk.tf.json")) : [];
  for (const file of [path.join(outdir, Manifest.fileName), path.join(outdir, "report.md"), ...stacks]) fs.rmSync(file, { force: true });
}

async function main(): Promise<void> {
  const app = new App();
  // First, so that a synth that fails leaves no output a report could take for current:
  // bad settings, a failed validation, or a compile error in the modules loaded below
  // (ts-node compiles each module when it is first loaded).
  removePreviousSynth(app.outdir);
  const { SettingsError, loadSettings } = await import("./lib/settings");
  const { addClusterStacks } = await import("./constructs/cluster-stacks");
  let settings: ClusterSettings;
  try {
    settings = loadSettings(process.env);
  } catch (err) {
    if (!(err instanceof SettingsError)) throw err;
    // A settings mistake is the user's to fix: say what and how, without a stack trace.
    console.error(`${err.message}\nNothing was synthesized. Settings are documented in README.md.`);
    process.exit(1);
  }
  addClusterStacks(app, settings);
  app.synth();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
