/**
 * Synthesizes the app once per named set of settings, each into OUTDIR/<name>, as
 * `npm run synth` would with those settings, and records which library did it in
 * OUTDIR/library.json. scripts/cdk-terrain.ts runs it on cdktf and on CDK Terrain.
 *
 *   ts-node -T scripts/synth-variants.ts OUTDIR '{"name": {"SETTING": "value"}, ...}'
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { App } from "cdktf";
import { addClusterStacks } from "../constructs/cluster-stacks";
import { loadSettings } from "../lib/settings";

function main(): void {
  const [outdir, variantsJson] = process.argv.slice(2);
  if (!outdir || !variantsJson) throw new Error("usage: synth-variants.ts OUTDIR VARIANTS_JSON");
  const variants = JSON.parse(variantsJson) as Record<string, Record<string, string>>;
  fs.mkdirSync(outdir, { recursive: true });
  for (const [name, env] of Object.entries(variants)) {
    const settings = loadSettings(env);
    // Validations on, as `cdktf synth` runs them.
    const app = new App({ outdir: path.join(outdir, name), skipValidation: false });
    addClusterStacks(app, settings);
    app.synth();
  }
  // `cdktf` is an npm alias on the fork: its package.json says which library ran.
  const { name, version } = require("cdktf/package.json") as { name: string; version: string };
  fs.writeFileSync(path.join(outdir, "library.json"), JSON.stringify({ name, version }));
}

main();
