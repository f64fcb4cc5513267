/**
 * Hand-made cdktf.out trees for tests of the tools that read synthesized output
 * (scripts/report.ts, scripts/synth-diff.ts), in a temporary directory the caller removes.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

/**
 * Writes `stacks` (name -> cdk.tf.json content) as the cdktf.out of a complete synth:
 * `stacks/<name>/cdk.tf.json`, and cdktf's manifest.json unless `manifest` is false (a
 * synth that stopped before its end). Returns the new directory.
 */
export function writeSynthesizedTree(stacks: Record<string, unknown>, options: { readonly manifest?: boolean } = {}): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "synthesized-tree-"));
  for (const [name, json] of Object.entries(stacks)) {
    fs.mkdirSync(path.join(dir, "stacks", name), { recursive: true });
    fs.writeFileSync(path.join(dir, "stacks", name, "cdk.tf.json"), JSON.stringify(json, null, 2));
  }
  if (options.manifest !== false) {
    const manifest = {
      version: "0.21.0",
      stacks: Object.fromEntries(
        Object.keys(stacks).map((name) => [name, { name, synthesizedStackPath: `stacks/${name}/cdk.tf.json`, workingDirectory: `stacks/${name}`, annotations: [] }]),
      ),
    };
    fs.writeFileSync(path.join(dir, "manifest.json"), JSON.stringify(manifest, null, 2));
  }
  return dir;
}
