/**
 * The documented commands: `npm run synth` runs the app directly (no type-check, no
 * CLI start-up) and must write exactly what `cdktf synth`, and so `cdktf deploy`,
 * writes; and no documented command calls home. A preloaded trap
 * (support/network-trap.js) records every DNS lookup and connection a node process
 * makes to a non-loopback host.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { terraformBinary } from "../rehearsal/tools";

const ROOT = path.resolve(__dirname, "..");
const TRAP = path.join(__dirname, "support", "network-trap.js");
const CDKTF = path.join(ROOT, "node_modules", ".bin", "cdktf");

let work: string;
beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "v6fabric-synth-commands-"));
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** A clean environment: PATH (with the pinned terraform first, which the cdktf CLI asks for its version), HOME, the trap. */
function env(extra: Record<string, string>, trapLog: string): NodeJS.ProcessEnv {
  const terraformDir = path.dirname(terraformBinary());
  return {
    PATH: `${terraformDir}:${process.env.PATH}`,
    HOME: process.env.HOME,
    TF_CLI_CONFIG_FILE: "/dev/null",
    NODE_OPTIONS: `--require ${TRAP}`,
    NETWORK_TRAP_LOG: trapLog,
    ...extra,
  };
}

function run(file: string, args: string[], extra: Record<string, string>, name: string) {
  const trapLog = path.join(work, `${name}.network`);
  fs.writeFileSync(trapLog, "");
  const result = spawnSync(file, args, { cwd: ROOT, env: env(extra, trapLog), encoding: "utf8", timeout: 180_000 });
  return { ...result, network: fs.readFileSync(trapLog, "utf8") };
}

test("`npm run synth` writes byte for byte what `cdktf synth` writes, and neither calls home", () => {
  const direct = path.join(work, "direct");
  const viaCli = path.join(work, "cli");
  const npm = run("npm", ["run", "--silent", "synth"], { CDKTF_OUTDIR: direct, CONTROL_PLANE_COUNT: "3" }, "npm-synth");
  expect(npm.stderr).toBe("");
  expect(npm.status).toBe(0);
  const cli = run(CDKTF, ["synth", "--output", viaCli], { CHECKPOINT_DISABLE: "1", DISABLE_VERSION_CHECK: "true", CONTROL_PLANE_COUNT: "3" }, "cdktf-synth");
  expect(cli.status).toBe(0);
  const stack = (dir: string) => fs.readFileSync(path.join(dir, "stacks", "v6fabric", "cdk.tf.json"), "utf8");
  expect(stack(direct)).toBe(stack(viaCli));
  // The settings reached the app: a third control plane.
  expect(Object.values(JSON.parse(stack(direct)).resource.metal_device).map((d: any) => d.hostname)).toContain("v6fabric-cp-3");
  expect(npm.network).toBe("");
  expect(cli.network).toBe("");
}, 240_000);

test("the trap sees a call home: the cdktf CLI without CHECKPOINT_DISABLE asks HashiCorp's checkpoint service", () => {
  const result = run(CDKTF, ["synth", "--output", path.join(work, "phoning")], {}, "cdktf-phoning");
  expect(result.network).toContain("checkpoint-api.hashicorp.com");
}, 240_000);

test("npm run report and npm run synth-diff call nobody", () => {
  const out = path.join(work, "direct");
  if (!fs.existsSync(path.join(out, "manifest.json"))) {
    expect(run("npm", ["run", "--silent", "synth"], { CDKTF_OUTDIR: out }, "npm-synth-2").status).toBe(0);
  }
  const report = run("npm", ["run", "--silent", "report", "--", out, "--out", path.join(work, "report.md")], {}, "report");
  expect(report.status).toBe(0);
  expect(report.network).toBe("");
  const diff = run("npm", ["run", "--silent", "synth-diff", "--", out, out], {}, "synth-diff");
  expect(diff.status).toBe(0);
  expect(diff.network).toBe("");
}, 240_000);

test("every script that runs the cdktf CLI turns its checkpoint and version check off; .envrc does for a bare `cdktf`", () => {
  const scripts = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")).scripts as Record<string, string>;
  const cdktfScripts = Object.entries(scripts).filter(([, command]) => /\bcdktf\s/.test(command));
  expect(cdktfScripts.map(([name]) => name).sort()).toEqual(["deploy", "destroy", "diff"]);
  for (const [, command] of cdktfScripts) {
    expect(command).toMatch(/^CHECKPOINT_DISABLE=1 DISABLE_VERSION_CHECK=true cdktf /);
  }
  expect(scripts.synth).not.toMatch(/\bcdktf\b/);
  const envrc = fs.readFileSync(path.join(ROOT, ".envrc"), "utf8");
  expect(envrc).toMatch(/^export CHECKPOINT_DISABLE=1\b/m);
  expect(envrc).toMatch(/^export DISABLE_VERSION_CHECK=true\b/m);
});
