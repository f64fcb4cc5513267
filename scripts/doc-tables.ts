/**
 * Tables in README.md that are computed from the code, between marker comments, so
 * they cannot go stale: `npm run docs` rewrites them and a test fails when they differ.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { App } from "cdktf";
import { ClusterStack } from "../constructs/cluster-stack";
import { POD_BLOCK_PREFIX_LENGTH } from "../lib/calico";
import { prefixBudget, prefixBudgetMarkdown } from "../lib/prefix-budget";
import { renderSettingsTable } from "../lib/settings-doc";
import { loadSettings } from "../lib/settings";
import { USER_DATA_BUDGET_BYTES, userDataSize } from "../lib/user-data-size";

export interface DocTable {
  readonly name: string;
  render(): string;
}

/** The examples whose user data sizes the README reports. */
export const SIZE_EXAMPLES: readonly [string, Record<string, string>][] = [
  ["default (1 control plane, 2 workers)", {}],
  ["`CONTROL_PLANE_COUNT=3 WORKER_COUNT=5`", { CONTROL_PLANE_COUNT: "3", WORKER_COUNT: "5" }],
];

/** Boot role of a device, from the hostname the naming scheme gives it. */
function bootRole(hostname: string): string {
  if (/-cp-1$/.test(hostname)) return "init (first control plane)";
  return /-cp-\d+$/.test(hostname) ? "control-plane join" : "worker join";
}

export function renderUserDataSizeTable(): string {
  const rows: string[] = [];
  for (const [label, env] of SIZE_EXAMPLES) {
    const settings = loadSettings(env);
    const outdir = fs.mkdtempSync(path.join(os.tmpdir(), "v6fabric-doc-sizes-"));
    let stack: any;
    try {
      const app = new App({ outdir });
      new ClusterStack(app, settings.clusterName, settings);
      app.synth();
      stack = JSON.parse(fs.readFileSync(path.join(outdir, "stacks", settings.clusterName, "cdk.tf.json"), "utf8"));
    } finally {
      fs.rmSync(outdir, { recursive: true, force: true });
    }
    const seen = new Set<string>();
    for (const device of Object.values<any>(stack.resource.metal_device)) {
      const role = bootRole(device.hostname);
      if (seen.has(role)) continue;
      seen.add(role);
      const size = userDataSize(device.user_data);
      const share = Math.round((100 * size.appliedBytes) / USER_DATA_BUDGET_BYTES);
      rows.push(`| ${label} | ${role} | ${size.synthesizedBytes} | ${size.appliedBytes} | ${share} % |`);
    }
  }
  return [
    `| Example | Role | Synthesized bytes | Applied bytes (est.) | Of the ${USER_DATA_BUDGET_BYTES / 1024} KiB budget |`,
    "|---|---|---|---|---|",
    ...rows,
  ].join("\n");
}

/** The prefix budget with the default settings (lib/prefix-budget.ts owns the numbers). */
export function renderPrefixBudgetTable(): string {
  const settings = loadSettings({});
  return prefixBudgetMarkdown(prefixBudget({ blockPrefixLength: POD_BLOCK_PREFIX_LENGTH, localServiceRoutes: settings.localServiceRoutes }));
}

export const DOC_TABLES: readonly DocTable[] = [
  { name: "settings-table", render: renderSettingsTable },
  { name: "user-data-sizes", render: renderUserDataSizeTable },
  { name: "prefix-budget", render: renderPrefixBudgetTable },
];

/** `markdown` with every generated table replaced by its current rendering. */
export function withDocTables(markdown: string): string {
  let out = markdown;
  for (const table of DOC_TABLES) {
    const begin = new RegExp(`<!-- ${table.name}:begin[^>]*-->`).exec(out);
    const endMarker = `<!-- ${table.name}:end -->`;
    const end = out.indexOf(endMarker);
    if (!begin || end < begin.index) throw new Error(`README.md has no ${table.name} markers`);
    const head = out.slice(0, begin.index + begin[0].length);
    out = `${head}\n${table.render()}\n${out.slice(end)}`;
  }
  return out;
}
