import {
  METAL_MAX_PREFIXES,
  PrefixBudgetError,
  checkPrefixBudget,
  podBlocksNeeded,
  prefixBudget,
  prefixBudgetMarkdown,
} from "../lib/prefix-budget";
import { POD_BLOCK_PREFIX_LENGTH } from "../lib/calico";
import { SettingsError, loadSettings } from "../lib/settings";

describe("pod blocks needed for 110 pods", () => {
  // 2^(128-len) addresses per block, counted by hand.
  test.each([
    [116, 1], // 4096
    [120, 1], // 256
    [121, 1], // 128
    [122, 2], // 64
    [124, 7], // 16
    [128, 110], // 1
  ])("/%i: %i", (length, blocks) => {
    expect(podBlocksNeeded(length, 110)).toBe(blocks);
  });
});

describe("the per-node budget (Metal accepts 10 prefixes per server)", () => {
  test.each([
    // block, Local routes, total, fits
    [120, 0, 4, true],
    [120, 4, 8, true], // the default
    [120, 6, 10, true], // exactly the limit
    [120, 7, 11, false],
    [122, 4, 9, true], // two blocks for 110 pods + 1 spare
    [122, 6, 11, false],
    [128, 0, 113, false],
  ])("blocks /%i with %i Local routes: %i prefixes, fits=%s", (block, local, total, fits) => {
    const budget = prefixBudget({ blockPrefixLength: block, localServiceRoutes: local });
    expect(budget.total).toBe(total);
    expect(budget.fits).toBe(fits);
    expect(budget.rows.reduce((s, r) => s + r.count, 0)).toBe(total);
  });

  test("the chosen block size leaves room for 6 Local routes", () => {
    expect(METAL_MAX_PREFIXES).toBe(10);
    expect(POD_BLOCK_PREFIX_LENGTH).toBe(120);
    expect(prefixBudget({ blockPrefixLength: POD_BLOCK_PREFIX_LENGTH, localServiceRoutes: 0 }).maxLocalServiceRoutes).toBe(6);
  });

  test("over budget: the message names the setting, the value and the maximum", () => {
    expect(() => checkPrefixBudget({ blockPrefixLength: 120, localServiceRoutes: 7 })).toThrow(PrefixBudgetError);
    expect(() => checkPrefixBudget({ blockPrefixLength: 120, localServiceRoutes: 7 })).toThrow(
      /LOCAL_SERVICE_ROUTES=7 .*11 prefixes.*10.*at most 6/,
    );
  });

  test.each([[{ blockPrefixLength: 115 }], [{ blockPrefixLength: 120.5 }], [{ localServiceRoutes: -1 }]])("malformed input %j is refused", (bad) => {
    expect(() => prefixBudget({ blockPrefixLength: 120, localServiceRoutes: 0, ...bad })).toThrow(PrefixBudgetError);
  });

  test("the Markdown table lists every row and the total", () => {
    const table = prefixBudgetMarkdown(prefixBudget({ blockPrefixLength: 120, localServiceRoutes: 4 }));
    expect(table.split("\n")).toHaveLength(2 + 4 + 1);
    expect(table).toContain("| /120 | 2 |");
    expect(table).toContain("**8**");
  });
});

describe("LOCAL_SERVICE_ROUTES is enforced when settings load (synth time)", () => {
  test.each([
    ["0", 0],
    ["1", 1],
    ["2", 2],
    ["4", 4],
  ])("LOCAL_SERVICE_ROUTES=%p -> %i", (value, expected) => {
    expect(loadSettings({ LOCAL_SERVICE_ROUTES: value }).localServiceRoutes).toBe(expected);
  });

  test.each([
    ["7", /LOCAL_SERVICE_ROUTES=7 is not valid: .*11 prefixes.*at most 6/],
    ["100", /LOCAL_SERVICE_ROUTES=100 is not valid: .*at most 6/],
    // The Local pool is one CIDR: 6 fits the routers' limit but no pool has 6 addresses.
    ["6", /LOCAL_SERVICE_ROUTES=6 is not valid: .*one Calico pool, a CIDR, so use 0, 1, 2 or 4/],
    ["3", /LOCAL_SERVICE_ROUTES=3 is not valid: .*use 0, 1, 2 or 4/],
    ["-1", /LOCAL_SERVICE_ROUTES=-1 is not valid: must be a whole number/],
    ["four", /LOCAL_SERVICE_ROUTES=four is not valid: must be a whole number/],
    ["", /LOCAL_SERVICE_ROUTES= is not valid: the variable is set but empty; set a value, or unset it to use the default 4/],
  ])("LOCAL_SERVICE_ROUTES=%s is refused", (value, message) => {
    expect(() => loadSettings({ LOCAL_SERVICE_ROUTES: value })).toThrow(SettingsError);
    expect(() => loadSettings({ LOCAL_SERVICE_ROUTES: value })).toThrow(message);
  });

  test("METAL_BGP_MD5_ENABLED takes true or false", () => {
    expect(loadSettings({}).bgpMd5Enabled).toBe(false);
    expect(loadSettings({ METAL_BGP_MD5_ENABLED: "true" }).bgpMd5Enabled).toBe(true);
    expect(() => loadSettings({ METAL_BGP_MD5_ENABLED: "yes" })).toThrow(/METAL_BGP_MD5_ENABLED=yes is not valid: must be one of true, false/);
  });
});

test("docs/bgp-fabric.md shows the budget the code computes for the defaults", () => {
  const fs = require("node:fs") as typeof import("node:fs");
  const doc = fs.readFileSync(require("node:path").join(__dirname, "..", "docs", "bgp-fabric.md"), "utf8");
  const settings = loadSettings({});
  expect(doc).toContain(prefixBudgetMarkdown(prefixBudget({ blockPrefixLength: POD_BLOCK_PREFIX_LENGTH, localServiceRoutes: settings.localServiceRoutes })));
});
