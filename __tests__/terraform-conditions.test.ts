/**
 * The lifecycle conditions that stop a plan or apply with a clear message, evaluated
 * by the real Terraform: `terraform console` needs no provider, so each condition is
 * run against stand-ins for `self` (a config of locals) that must pass or fail.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { terraformBinary } from "../rehearsal/tools";
import { onlyStack, synthesize } from "./support/synth";
import { TAYGA_PACKAGE_URL_LOCAL } from "../constructs/nat64-package-source";
import { PLACEHOLDER_TAYGA_PACKAGE_URL } from "../lib/settings";

const terraform = terraformBinary();
const hasTerraform = fs.existsSync(terraform);
if (!hasTerraform) console.warn(`SKIPPED terraform-conditions: the pinned terraform is not built (${terraform}); run \`npm run tools -- terraform\` (.ci/run does)`);
const describeWithTerraform = hasTerraform ? describe : describe.skip;

/** Evaluates `expressions` (Terraform syntax, `self` as `local.self`) with `self` bound to `value` and the stack's `locals`. */
function evaluate(self: unknown, expressions: string[], locals: Record<string, unknown> = {}): string[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tf-conditions-"));
  fs.writeFileSync(path.join(dir, "main.tf.json"), JSON.stringify({ locals: { ...locals, self } }));
  const result = spawnSync(terraform, ["console"], {
    cwd: dir,
    // The console prints only the value of the last line it reads: ask for one list.
    input: `jsonencode([${expressions.join(", ")}])\n`,
    encoding: "utf8",
    env: { ...process.env, TF_CLI_CONFIG_FILE: "/dev/null", CHECKPOINT_DISABLE: "1", TF_IN_AUTOMATION: "1" },
    timeout: 60_000,
  });
  fs.rmSync(dir, { recursive: true, force: true });
  if (result.status !== 0) throw new Error(`terraform console failed: ${result.stderr}`);
  return (JSON.parse(JSON.parse(result.stdout.trim())) as boolean[]).map(String);
}

/** The postconditions (or preconditions) of every object of `type` (resource or data), as console expressions. */
function conditionsOf(block: Record<string, Record<string, any>> | undefined, type: string, kind: "postcondition" | "precondition" = "postcondition"): string[] {
  return Object.values(block?.[type] ?? {}).flatMap((body: any) =>
    (body.lifecycle?.[kind] ?? []).map((c: { condition: string }) => {
      const m = /^\$\{([\s\S]*)\}$/.exec(c.condition);
      if (!m) throw new Error(`condition is not one interpolation: ${c.condition}`);
      return m[1].replace(/\bself\./g, "local.self.");
    }),
  );
}

const stack = onlyStack(synthesize({}));

describeWithTerraform("plan-time and apply-time conditions, evaluated by terraform", () => {
  test("a device outside the node range (zone 0) fails the apply; inside passes", () => {
    const conditions = conditionsOf(stack.resource, "metal_device");
    expect(conditions.length).toBe(3); // one per device of the default example
    const verdict = (address: string) => evaluate({ access_public_ipv6: address }, conditions);
    expect(verdict("2001:db8:0:ab00::3")).toEqual(["true", "true", "true"]);
    expect(verdict("2001:db8:0:ab0f:ffff::1")).toEqual(["true", "true", "true"]); // last /64 of zone 0
    expect(verdict("2001:db8:0:ab10::3")).toEqual(["false", "false", "false"]); // the pod range
    expect(verdict("2604:1380:4641:c900::3")).toEqual(["false", "false", "false"]); // another project
  });

  test("CLUSTER_IPV6_BLOCK must be the project's precreated block, however Metal writes it", () => {
    const conditions = conditionsOf(stack.data, "metal_precreated_ip_block");
    expect(conditions).toHaveLength(1);
    const verdict = (cidr: number, cidrNotation: string) => evaluate({ cidr, cidr_notation: cidrNotation }, conditions)[0];
    expect(verdict(56, "2001:db8:0:ab00::/56")).toBe("true");
    expect(verdict(56, "2001:0db8:0000:ab00:0000:0000:0000:0000/56")).toBe("true");
    expect(verdict(56, "2604:1380:4641:c900::/56")).toBe("false");
    expect(verdict(48, "2001:db8::/48")).toBe("false");
  });

  test("the project's BGP config must be local, enabled, with METAL_BGP_ASN, no password, and room for the budget", () => {
    const conditions = conditionsOf(stack.data, "metal_project");
    expect(conditions.length).toBeGreaterThan(0);
    const good = { deployment_type: "local", status: "enabled", asn: 65000, md5: "", max_prefix: 10 };
    const verdict = (bgp: object[]) => evaluate({ bgp_config: bgp }, conditions);
    expect(verdict([good]).every((v) => v === "true")).toBe(true);
    expect(verdict([{ ...good, max_prefix: 0 }]).every((v) => v === "true")).toBe(true); // not reported
    for (const bad of [[], [{ ...good, asn: 65001 }], [{ ...good, deployment_type: "global" }], [{ ...good, md5: "secret" }], [{ ...good, max_prefix: 4 }]]) {
      expect(verdict(bad)).toContain("false");
    }
  });

  test("NAT64_TAYGA_PACKAGE_URL on a name reserved for documentation or tests stops the plan before any device is created", () => {
    const conditions = conditionsOf(stack.resource, "metal_device", "precondition");
    expect(conditions).toHaveLength(3); // one per device of the default example
    expect(stack.locals?.[TAYGA_PACKAGE_URL_LOCAL]).toBe(PLACEHOLDER_TAYGA_PACKAGE_URL);
    const messages = Object.values(stack.resource!.metal_device).map((d: any) => d.lifecycle.precondition[0].error_message);
    for (const m of messages) expect(m).toContain(`NAT64_TAYGA_PACKAGE_URL=${PLACEHOLDER_TAYGA_PACKAGE_URL} is not a place a node can download from: debian-mirror.example is a name reserved`);
    const file = "debian/pool/main/t/tayga/tayga_0.9.2-8_amd64.deb";
    const verdict = (url: string) => evaluate({}, conditions, { [TAYGA_PACKAGE_URL_LOCAL]: url });
    for (const placeholder of [
      PLACEHOLDER_TAYGA_PACKAGE_URL,
      `https://debian-mirror.example./${file}`,
      `https://mirror.example.org:8443/${file}`,
      `https://example.com/${file}`,
      `https://deb.mirror.invalid/${file}`,
      `https://localhost/${file}`,
      `https://tayga.rehearsal.test/${file}`,
    ]) {
      expect({ placeholder, verdict: verdict(placeholder) }).toEqual({ placeholder, verdict: ["false", "false", "false"] });
    }
    for (const real of [
      `https://debian-mirror.corp.internal/${file}`,
      `https://myexample.org/${file}`, // not example.org
      `https://example.org.mirror.corp.internal/${file}`,
      `https://[2001:db8::80]/${file}`,
      `https://mirror.corp.internal/tayga_0.9.2-8_amd64.deb?from=example.test`,
    ]) {
      expect({ real, verdict: verdict(real) }).toEqual({ real, verdict: ["true", "true", "true"] });
    }
  });
});
