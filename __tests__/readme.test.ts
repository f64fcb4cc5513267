import * as fs from "node:fs";
import * as path from "node:path";
import { planAddresses } from "../lib/address-plan";
import { SETTINGS } from "../lib/settings";
import { USER_DATA_BUDGET_BYTES } from "../lib/user-data-size";
import { DOC_TABLES, sizeTablesAgree, withDocTables } from "../scripts/doc-tables";
import { switchToCdkTerrain } from "../scripts/cdk-terrain";

const readme = fs.readFileSync(path.join(__dirname, "..", "README.md"), "utf8");

test("the README's computed tables are current (run `npm run docs` after changing settings, rendering or the budget)", () => {
  expect(withDocTables(readme)).toBe(readme);
  for (const s of SETTINGS) expect(readme).toContain(`| \`${s.name}\` |`);
});

test("withDocTables replaces what is between the markers, and only that", () => {
  const stale = readme.replace(/\| `WORKER_COUNT` \|[^\n]*/, "| `WORKER_COUNT` | stale |");
  expect(stale).not.toBe(readme);
  expect(withDocTables(stale)).toBe(readme);
  expect(DOC_TABLES.map((t) => t.name)).toEqual(["settings-table", "user-data-sizes", "prefix-budget"]);
});

test("the README reports user data size per role, every one within the budget", () => {
  const rows = [...readme.matchAll(/^\| [^|]+ \| (init|control-plane join|worker join)[^|]* \| (\d+\.\d) KiB \| (\d+\.\d) KiB \| (\d+) % \|/gm)];
  expect(rows.map((r) => r[1]).sort()).toEqual(["control-plane join", "init", "init", "worker join", "worker join"]);
  for (const r of rows) expect(Number(r[3]) * 1024).toBeLessThan(USER_DATA_BUDGET_BYTES);
});

test("the size table does not change with the zlib build: sizes agree within the tolerance, rows must match", () => {
  const table = [
    "| Example | Role | Synthesized | Applied (est.) | Of the 32 KiB budget |",
    "|---|---|---|---|---|",
    "| default | init (first control plane) | 23.7 KiB | 29.2 KiB | 91 % |",
    "| default | worker join | 12.8 KiB | 13.6 KiB | 43 % |",
  ].join("\n");
  // Another zlib: a few hundred bytes either way.
  expect(sizeTablesAgree(table, table.replace("29.2 KiB | 91 %", "29.6 KiB | 92 %").replace("12.8 KiB", "12.5 KiB"))).toBe(true);
  // A real change: 2 KiB more, a row gone, a row renamed.
  expect(sizeTablesAgree(table, table.replace("29.2 KiB | 91 %", "31.2 KiB | 98 %"))).toBe(false);
  expect(sizeTablesAgree(table, table.split("\n").slice(0, 3).join("\n"))).toBe(false);
  expect(sizeTablesAgree(table, table.replace("worker join", "control-plane join"))).toBe(false);
  // withDocTables keeps the README's table when it agrees, and rewrites it when it does not.
  const nudged = readme.replace(/(\| init \(first control plane\) \| )(\d+\.\d)( KiB)/, (_m, a, kib, b) => `${a}${(Number(kib) + 0.3).toFixed(1)}${b}`);
  expect(nudged).not.toBe(readme);
  expect(withDocTables(nudged)).toBe(nudged);
  const stale = readme.replace(/(\| init \(first control plane\) \| )(\d+\.\d)( KiB)/, (_m, a, kib, b) => `${a}${(Number(kib) + 3).toFixed(1)}${b}`);
  const rewritten = withDocTables(stale);
  const sizeTable = (markdown: string) => /<!-- user-data-sizes:begin[^>]*-->\n([\s\S]*?)\n<!-- user-data-sizes:end -->/.exec(markdown)![1];
  expect(sizeTable(rewritten)).not.toBe(sizeTable(stale));
  expect(sizeTablesAgree(sizeTable(rewritten), sizeTable(readme))).toBe(true); // the README's own table is current
  expect(withDocTables(rewritten)).toBe(rewritten);
});

test("the README address plan table matches the plan for the default block", () => {
  const plan = planAddresses(SETTINGS.find((s) => s.name === "CLUSTER_IPV6_BLOCK")!.default);
  for (const range of [plan.block, plan.nodeRange, plan.podCidr, plan.serviceCidr, plan.externalCidr]) {
    expect(readme).toContain(`\`${range}\``);
  }
  expect(readme).toContain(`\`${plan.kubernetesServiceIp}\``);
  expect(readme).toContain(`\`${plan.clusterDnsIp}\``);
});

test("the README gives the two set-up commands and links every design document", () => {
  expect(readme).toContain("npm ci && npm run synth");
  expect(readme).toContain("npm test");
  for (const doc of fs.readdirSync(path.join(__dirname, "..", "docs"))) expect(readme).toContain(`docs/${doc}`);
});

test("the README's switch to CDK Terrain is, row for row, the package.json that the comparison test installs", () => {
  const section = readme.slice(readme.indexOf("## cdktf's status and CDK Terrain"), readme.indexOf("## Verification"));
  const rows = [...section.matchAll(/^\| `(\w+)\.([^`]+)` \| (.+) \| (.+) \|$/gm)];
  expect(rows.length).toBeGreaterThanOrEqual(10);
  const cell = (text: string): unknown => (text === "(none)" ? undefined : JSON.parse(/^`(.*)`$/.exec(text)![1]));
  const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "package.json"), "utf8"));
  const switched = structuredClone(pkg);
  for (const [, field, key, before, after] of rows) {
    // The "cdktf (default)" column is what package.json has now.
    expect([field, key, pkg[field]?.[key]]).toEqual([field, key, cell(before)]);
    switched[field] ??= {};
    if (cell(after) === undefined) delete switched[field][key];
    else switched[field][key] = cell(after);
  }
  expect(switched).toEqual(switchToCdkTerrain(pkg));
});
