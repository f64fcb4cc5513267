import * as fs from "node:fs";
import * as path from "node:path";
import { planAddresses } from "../lib/address-plan";
import { SETTINGS } from "../lib/settings";
import { withSettingsTable } from "../lib/settings-doc";

const readme = fs.readFileSync(path.join(__dirname, "..", "README.md"), "utf8");

test("the README settings table is current (run `npm run docs` after changing lib/settings.ts)", () => {
  expect(withSettingsTable(readme)).toBe(readme);
  for (const s of SETTINGS) expect(readme).toContain(`| \`${s.name}\` |`);
});

test("the README address plan table matches the plan for the default block", () => {
  const plan = planAddresses(SETTINGS.find((s) => s.name === "CLUSTER_IPV6_BLOCK")!.default);
  for (const range of [plan.block, plan.nodeRange, plan.podCidr, plan.serviceCidr, plan.externalCidr]) {
    expect(readme).toContain(`\`${range}\``);
  }
  expect(readme).toContain(`\`${plan.kubernetesServiceIp}\``);
  expect(readme).toContain(`\`${plan.clusterDnsIp}\``);
});

test("the README gives the two set-up commands", () => {
  expect(readme).toContain("npm ci && npm run synth");
  expect(readme).toContain("npm test");
});
