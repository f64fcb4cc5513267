/**
 * Terraform Cloud remote runs: plan and apply happen on Terraform Cloud's workers
 * against the synthesized JSON, so nothing in it may need a tool or file that exists
 * only where `cdktf synth` ran (docs/operations.md). And with TF_CLOUD_ORGANIZATION
 * every stack main.ts creates gets its own workspace.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { allFeaturesEnv } from "../scripts/envrc-example";
import { Json, templateExpressions } from "../scripts/synthesized";
import { TerraformJson, synthesize } from "./support/synth";

const root = path.resolve(__dirname, "..");

/** Terraform functions and references that read the machine running Terraform. */
const LOCAL_FILE_FUNCTIONS = /\b(file|templatefile|fileexists|fileset|filebase64|filemd5|filesha1|filesha256|filesha512|filebase64sha256|filebase64sha512|abspath)\s*\(/;
const LOCAL_PATHS = /\bpath\.(module|root|cwd)\b/;
/** Resource and data types that act on the machine running Terraform (null_resource is caught by its provisioners). */
const LOCAL_TYPES = ["local_file", "local_sensitive_file", "external"];
/** Provider arguments that point at files on the operator's machine. */
const LOCAL_PROVIDER_ARGS = /^(config_path|config_paths|config_context.*|.*_file|.*_path)$/;

/** Every string in a JSON value, with the path that leads to it. */
function strings(value: Json, at = ""): [string, string][] {
  if (typeof value === "string") return [[at, value]];
  if (Array.isArray(value)) return value.flatMap((v, i) => strings(v, `${at}[${i}]`));
  if (value && typeof value === "object") return Object.entries(value).flatMap(([k, v]) => strings(v, `${at}.${k}`));
  return [];
}

function problems(stack: TerraformJson): string[] {
  const found: string[] = [];
  for (const [kind, blocks] of [["resource", stack.resource], ["data", stack.data]] as const) {
    for (const [type, byName] of Object.entries(blocks ?? {})) {
      if (LOCAL_TYPES.includes(type)) found.push(`${kind} ${type}`);
      for (const [name, body] of Object.entries(byName)) {
        if ("provisioner" in body) found.push(`${type}.${name} has provisioners ${JSON.stringify(Object.keys(body.provisioner))}`);
        if ("connection" in body) found.push(`${type}.${name} has an ssh/winrm connection`);
      }
    }
  }
  for (const [name, configs] of Object.entries(stack.provider ?? {})) {
    for (const config of configs) for (const key of Object.keys(config)) if (LOCAL_PROVIDER_ARGS.test(key)) found.push(`provider ${name} reads a local file through ${key}`);
  }
  for (const [name, module] of Object.entries((stack as Record<string, any>).module ?? {})) {
    if (/^\.\.?\//.test(String((module as any).source))) found.push(`module ${name} has a local source ${(module as any).source}`);
  }
  for (const [at, text] of strings(stack as unknown as Json)) {
    for (const expression of templateExpressions(text)) {
      if (LOCAL_FILE_FUNCTIONS.test(expression)) found.push(`${at}: \${${expression.slice(0, 80)}} reads a local file`);
      if (LOCAL_PATHS.test(expression)) found.push(`${at}: \${${expression.slice(0, 80)}} depends on a local path`);
    }
  }
  for (const [name, p] of Object.entries((stack.terraform?.required_providers ?? {}) as Record<string, any>)) {
    if (!/^(registry\.terraform\.io\/)?[a-z0-9-]+\/[a-z0-9-]+$/.test(p.source)) found.push(`provider ${name} source ${p.source} is not a registry address`);
    if (!/^\d+\.\d+\.\d+$/.test(String(p.version))) found.push(`provider ${name} version ${p.version} is not pinned`);
  }
  return found;
}

describe.each([
  ["the default example", {}],
  ["CONTROL_PLANE_COUNT=3 WORKER_COUNT=5", { CONTROL_PLANE_COUNT: "3", WORKER_COUNT: "5" }],
  ["every optional feature on", allFeaturesEnv()],
  ["Terraform Cloud", { TF_CLOUD_ORGANIZATION: "acme", TF_WORKSPACE_PREFIX: "v6-" }],
  ["the configuration stack", { CONFIG_STACK_RUNNER_PREFIX: "2001:db8:99:1::/64", API_ALLOWED_PREFIXES: "2001:db8:99::/48", TF_CLOUD_ORGANIZATION: "acme" }],
])("synth of %s runs remotely", (_label, env) => {
  const synth = synthesize(env);

  test("no provisioner, local-only resource, local file function, local path or kubeconfig file", () => {
    for (const [name, stack] of Object.entries(synth.stacks)) expect([name, problems(stack)]).toEqual([name, []]);
  });
});

test("a first-boot wait asked for explicitly with Terraform Cloud is the one provisioner, and only in the cluster stack", () => {
  // Its runner must reach the API and have curl: a local or agent execution mode (docs/operations.md, "Order").
  const synth = synthesize({ CONFIG_STACK_RUNNER_PREFIX: "2001:db8:99:1::/64", API_ALLOWED_PREFIXES: "2001:db8:99::/48", TF_CLOUD_ORGANIZATION: "acme", CONFIG_STACK_WAIT_MINUTES: "30" });
  expect(Object.entries(synth.stacks).map(([name, stack]) => [name, problems(stack)])).toEqual([
    ["v6fabric", [expect.stringMatching(/^terraform_data\.first-boot-wait_addons_\w+ has provisioners/)]],
    ["v6fabric-config", []],
  ]);
});

test("the scan finds what it is meant to find", () => {
  const bad = {
    resource: {
      null_resource: { x: { provisioner: { "local-exec": [{ command: "kubectl apply -f x" }] } } },
      local_file: { kubeconfig: { filename: "kubeconfig", content: "x" } },
      metal_device: { d: { user_data: "${templatefile(\"${path.module}/ign.json\", {})}", hostname: "$${file(x)}" } },
    },
    data: { external: { e: { program: ["./x.sh"] } } },
    provider: { kubernetes: [{ config_path: "~/.kube/config" }] },
    terraform: { required_providers: { metal: { source: "equinix/metal", version: ">= 3" } } },
  } as unknown as TerraformJson;
  const found = problems(bad).join("\n");
  expect(found).toContain("null_resource.x has provisioners");
  expect(found).toContain("resource local_file");
  expect(found).toContain("data external");
  expect(found).toContain("reads a local file");
  expect(found).toContain("depends on a local path");
  expect(found).toContain("provider kubernetes reads a local file through config_path");
  expect(found).toContain("version >= 3 is not pinned");
  // An escaped `$${file(x)}` is literal text on the node, not a Terraform call.
  expect(found).not.toContain(".hostname");
});

/** Runs main.ts the way `cdktf synth` does and returns stack name -> cdk.tf.json. */
function synthMain(env: Record<string, string>): Record<string, TerraformJson> {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), "tfc-main-"));
  const result = spawnSync(process.execPath, [require.resolve("ts-node/dist/bin.js"), "--transpile-only", "main.ts"], {
    cwd: root,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", CDKTF_OUTDIR: outdir, ...env },
    encoding: "utf8",
    timeout: 120_000,
  });
  expect(result.stderr).toBe("");
  expect(result.status).toBe(0);
  const stacks: Record<string, TerraformJson> = {};
  for (const name of fs.readdirSync(path.join(outdir, "stacks"))) {
    stacks[name] = JSON.parse(fs.readFileSync(path.join(outdir, "stacks", name, "cdk.tf.json"), "utf8"));
  }
  fs.rmSync(outdir, { recursive: true, force: true });
  return stacks;
}

test("main.ts with TF_CLOUD_ORGANIZATION=acme TF_WORKSPACE_PREFIX=v6-: every stack has its own workspace; without: local state", () => {
  const cloud = synthMain({ TF_CLOUD_ORGANIZATION: "acme", TF_WORKSPACE_PREFIX: "v6-" });
  const names = Object.keys(cloud);
  expect(names.length).toBeGreaterThan(0);
  for (const [name, stack] of Object.entries(cloud)) {
    expect(stack.terraform?.backend).toBeUndefined();
    expect(stack.terraform?.cloud).toEqual({ hostname: "app.terraform.io", organization: "acme", workspaces: { name: `v6-${name}` } });
    // No credential in the cloud block: the CLI finds TF_TOKEN_app_terraform_io or `terraform login`'s file.
    expect(Object.keys(stack.terraform!.cloud)).not.toContain("token");
  }
  const workspaces = Object.values(cloud).map((s) => s.terraform!.cloud.workspaces.name);
  expect(new Set(workspaces).size).toBe(names.length);

  const local = synthMain({});
  for (const [name, stack] of Object.entries(local)) {
    expect(stack.terraform?.cloud).toBeUndefined();
    expect(stack.terraform?.backend).toEqual({ local: { path: `terraform.${name}.tfstate` } });
  }
});
