/**
 * Tables in README.md that are computed from the code, between marker comments, so
 * they cannot go stale: `npm run docs` rewrites them and a test fails when they differ.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { App } from "cdktf";
import { addClusterStacks } from "../constructs/cluster-stacks";
import { POD_BLOCK_PREFIX_LENGTH } from "../lib/calico";
import { prefixBudget, prefixBudgetMarkdown } from "../lib/prefix-budget";
import { renderSettingsTable } from "../lib/settings-doc";
import { loadSettings } from "../lib/settings";
import { USER_DATA_BUDGET_BYTES, ZLIB_SIZE_TOLERANCE_BYTES, formatKiB, userDataSize } from "../lib/user-data-size";

export interface DocTable {
  readonly name: string;
  render(): string;
  /**
   * True when the table in the README still says what `fresh` says, although the text
   * differs (sizes that move with the zlib build). The README then keeps its text.
   * @default - the texts are equal
   */
  sameAs?(current: string, fresh: string): boolean;
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
      addClusterStacks(app, settings);
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
      rows.push(`| ${label} | ${role} | ${formatKiB(size.synthesizedBytes)} | ${formatKiB(size.appliedBytes)} | ${share} % |`);
    }
  }
  return [
    `| Example | Role | Synthesized | Applied (est.) | Of the ${USER_DATA_BUDGET_BYTES / 1024} KiB budget |`,
    "|---|---|---|---|---|",
    ...rows,
  ].join("\n");
}

/** The numbers of a size table, row by row: the two sizes in KiB, then the budget share in %. */
export function sizeTableNumbers(table: string): { label: string; kib: number[]; share: number }[] {
  return table
    .split("\n")
    .filter((line) => / KiB \|/.test(line))
    .map((line) => {
      const cells = line.split("|").slice(1, -1).map((c) => c.trim());
      return { label: `${cells[0]} | ${cells[1]}`, kib: cells.slice(2, 4).map((c) => Number(c.replace(/ KiB$/, ""))), share: Number(cells[4].replace(/ %$/, "")) };
    });
}

/**
 * The size table still holds when it has the same rows and each size is within
 * ZLIB_SIZE_TOLERANCE_BYTES (plus the 0.1 KiB of rounding) of the fresh one: another
 * zlib build compresses the gzip'd boot config a little differently, and the README must not
 * change with it (lib/user-data-size.ts).
 */
export function sizeTablesAgree(current: string, fresh: string): boolean {
  const a = sizeTableNumbers(current);
  const b = sizeTableNumbers(fresh);
  const kibTolerance = ZLIB_SIZE_TOLERANCE_BYTES / 1024 + 0.1;
  const shareTolerance = Math.ceil((100 * ZLIB_SIZE_TOLERANCE_BYTES) / USER_DATA_BUDGET_BYTES) + 1;
  return (
    current.split("\n")[0] === fresh.split("\n")[0] &&
    a.length > 0 &&
    a.length === b.length &&
    a.every(
      (row, i) =>
        row.label === b[i].label &&
        row.kib.every((kib, j) => Math.abs(kib - b[i].kib[j]) <= kibTolerance) &&
        Math.abs(row.share - b[i].share) <= shareTolerance,
    )
  );
}

/** The prefix budget with the default settings (lib/prefix-budget.ts owns the numbers). */
export function renderPrefixBudgetTable(): string {
  const settings = loadSettings({});
  return prefixBudgetMarkdown(prefixBudget({ blockPrefixLength: POD_BLOCK_PREFIX_LENGTH, localServiceRoutes: settings.localServiceRoutes }));
}

export const DOC_TABLES: readonly DocTable[] = [
  { name: "settings-table", render: renderSettingsTable },
  { name: "user-data-sizes", render: renderUserDataSizeTable, sameAs: sizeTablesAgree },
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
    const current = out.slice(begin.index + begin[0].length, end).replace(/^\n/, "").replace(/\n$/, "");
    const fresh = table.render();
    out = `${head}\n${table.sameAs?.(current, fresh) ? current : fresh}\n${out.slice(end)}`;
  }
  return out;
}
