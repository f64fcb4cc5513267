/**
 * `npm run bench-synth`: how long a synth takes, the way it ran before and the way it
 * runs now, side by side in one run on this machine.
 *
 *   before: `cdktf synth` (`cdktn synth` on CDK Terrain: the CLI starts, runs
 *           `terraform version`, then the app)
 *           with the app type-checked by ts-node at every synth
 *   now:    `npm run synth`: the app alone, transpiled without type-checking
 *           (`npm test` and `npm run build` type-check; synth need not)
 *
 * For the default cluster and for 5 control planes + 100 workers; each variant runs
 * RUNS times, the best time is printed (the others only show the noise).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { table } from "../rehearsal/format";

const PROJECT = path.resolve(__dirname, "..");
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

interface Variant {
  readonly name: string;
  command(outdir: string): { file: string; args: string[] };
}

// Whichever CLI is installed: cdktf-cli's `cdktf`, or `cdktn` after the switch to CDK
// Terrain (README, "cdktf's status"); both take the same synth arguments.
const CLI_NAMES = ["cdktf", "cdktn"];
function installedCli(): { name: string; file: string } {
  for (const name of CLI_NAMES) {
    const file = path.join(PROJECT, "node_modules", ".bin", name);
    if (fs.existsSync(file)) return { name, file };
  }
  throw new Error(`bench-synth: neither ${CLI_NAMES.join(" nor ")} is in node_modules/.bin: install the dependencies (npm ci)`);
}
const cli = installedCli();
const VARIANTS: readonly Variant[] = [
  {
    name: `before: ${cli.name} synth, type-checking app`,
    command: (outdir) => ({ file: cli.file, args: ["synth", "--app", "npx ts-node --prefer-ts-exts main.ts", "--output", outdir] }),
  },
  {
    name: "now: npm run synth",
    command: () => ({ file: process.execPath, args: ["-r", "ts-node/register/transpile-only", "main.ts"] }),
  },
];

const CLUSTERS: readonly { name: string; env: Record<string, string> }[] = [
  { name: "default (1 + 2 nodes)", env: {} },
  { name: "5 + 100 nodes", env: { CONTROL_PLANE_COUNT: "5", WORKER_COUNT: "100" } },
];

function time(variant: Variant, env: Record<string, string>, outdir: string): number {
  const { file, args } = variant.command(outdir);
  const started = process.hrtime.bigint();
  const result = spawnSync(file, args, {
    cwd: PROJECT,
    env: { ...process.env, ...env, CHECKPOINT_DISABLE: "1", CDKTF_OUTDIR: outdir, TF_CLI_CONFIG_FILE: "/dev/null" },
    encoding: "utf8",
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (result.status !== 0) throw new Error(`${variant.name} failed:\n${result.stderr || result.stdout}`);
  if (!fs.existsSync(path.join(outdir, "manifest.json"))) throw new Error(`${variant.name} wrote no manifest.json to ${outdir}`);
  return seconds;
}

function main(): void {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "v6fabric-bench-synth-"));
  const rows: string[][] = [["cluster", ...VARIANTS.map((v) => v.name)]];
  try {
    for (const cluster of CLUSTERS) {
      const cells = VARIANTS.map((variant, i) => {
        const times = Array.from({ length: RUNS }, (_, run) => time(variant, cluster.env, path.join(work, `${i}-${run}-${cluster.env.WORKER_COUNT ?? "d"}`)));
        return `${Math.min(...times).toFixed(2)} s (runs: ${times.map((t) => t.toFixed(2)).join(", ")})`;
      });
      rows.push([cluster.name, ...cells]);
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  process.stdout.write(`${table(rows)}\n`);
  process.stdout.write(`(${os.cpus().length} cores, ${RUNS} runs each, best shown first)\n`);
}

main();
