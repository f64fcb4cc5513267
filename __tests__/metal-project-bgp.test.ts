/**
 * METAL_MANAGE_PROJECT_BGP: the app adopts the existing project with an import block and
 * sets its local BGP config; the default only checks it. Read back from the synthesized
 * Terraform JSON, checked against the provider schema, and the lifecycle conditions and
 * the import/prevent_destroy semantics run by the real terraform where it is installed.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ProviderSchema, checkBody } from "./support/metal-schema";
import { settingsProblems } from "./support/settings";
import { TerraformJson, onlyStack, synthesize } from "./support/synth";
import { loadSettings } from "../lib/settings";
import { terraformBinary } from "../rehearsal/tools";

const PROVIDER = "registry.terraform.io/equinix/metal";
const metalSchema: ProviderSchema = JSON.parse(
  fs.readFileSync(path.join(__dirname, "..", "providers", "equinix-metal-3.3.0.schema.json"), "utf8"),
).provider_schemas[PROVIDER];

const PROJECT_ID = "6f1f2c1e-8d3b-4b8e-9a55-3b8f0c7f6a10";
const SAMPLE_PASSWORD = "sample-bgp-secret-7Qx9";
const PASSWORD_VARIABLE = "metal_bgp_md5_password";

type Stack = TerraformJson & { import?: { to: string; id: string; provider?: string }[] };

/** Synthesizes with `env`, with a BGP password in the process environment that must never show up. */
function synth(env: Record<string, string>): { stack: Stack; raw: string } {
  process.env[`TF_VAR_${PASSWORD_VARIABLE}`] = SAMPLE_PASSWORD;
  try {
    const s = synthesize({ METAL_PROJECT_ID: PROJECT_ID, ...env });
    return { stack: onlyStack(s) as Stack, raw: Object.values(s.raw).join("\n") };
  } finally {
    delete process.env[`TF_VAR_${PASSWORD_VARIABLE}`];
  }
}

const unmanaged = synth({});
const managed = synth({ METAL_MANAGE_PROJECT_BGP: "true", WORKER_COUNT: "3" });
const managedMd5 = synth({ METAL_MANAGE_PROJECT_BGP: "true", METAL_BGP_MD5_ENABLED: "true", METAL_BGP_ASN: "64600" });

function projectsOf(stack: Stack): [string, Record<string, any>][] {
  return Object.entries(stack.resource?.metal_project ?? {});
}

function onlyDataProject(stack: Stack): [string, Record<string, any>] {
  const found = Object.entries(stack.data?.metal_project ?? {});
  expect(found).toHaveLength(1);
  return found[0];
}

/** The condition's expression, without the `${ }` around it. */
function expressionOf(condition: string): string {
  const m = /^\$\{([\s\S]*)\}$/.exec(condition);
  if (!m) throw new Error(`condition is not one interpolation: ${condition}`);
  return m[1];
}

describe("settings", () => {
  test("METAL_MANAGE_PROJECT_BGP is false unless set to true", () => {
    expect(loadSettings({}).manageProjectBgp).toBe(false);
    expect(loadSettings({ METAL_MANAGE_PROJECT_BGP: "false" }).manageProjectBgp).toBe(false);
    expect(loadSettings({ METAL_MANAGE_PROJECT_BGP: "true" }).manageProjectBgp).toBe(true);
  });

  test.each(["yes", "TRUE", "1", "on"])("METAL_MANAGE_PROJECT_BGP=%s is refused with what is valid", (value) => {
    const problems = settingsProblems({ METAL_MANAGE_PROJECT_BGP: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`^METAL_MANAGE_PROJECT_BGP=${value} is not valid: must be one of true, false`));
  });
});

describe("default (METAL_MANAGE_PROJECT_BGP unset): the plan only checks the project", () => {
  const { stack } = unmanaged;

  test("no metal_project resource, no import block, no Terraform version floor, sessions depend on nothing", () => {
    expect(projectsOf(stack)).toEqual([]);
    expect(stack.import).toBeUndefined();
    expect(stack.terraform?.required_version).toBeUndefined();
    const sessions = Object.values(stack.resource?.metal_bgp_session ?? {});
    expect(sessions).toHaveLength(3);
    for (const s of sessions) expect(s.depends_on).toBeUndefined();
  });

  test("the data source requires local BGP already enabled with METAL_BGP_ASN", () => {
    const [, data] = onlyDataProject(stack);
    expect(data.project_id).toBe(PROJECT_ID);
    const first = data.lifecycle.postcondition[0];
    expect(first.condition).toContain('self.bgp_config[0].status, "") == "enabled"');
    expect(first.error_message).toContain("METAL_MANAGE_PROJECT_BGP=true");
  });
});

describe("METAL_MANAGE_PROJECT_BGP=true: the existing project is adopted and its local BGP set", () => {
  test("exactly one metal_project, imported from METAL_PROJECT_ID by an import block (Terraform >= 1.5)", () => {
    for (const { stack } of [managed, managedMd5]) {
      const projects = projectsOf(stack);
      expect(projects).toHaveLength(1);
      const [id] = projects[0];
      expect(stack.import).toEqual([{ to: `metal_project.${id}`, id: PROJECT_ID }]);
      expect(stack.terraform?.required_version).toBe(">= 1.5.0");
    }
  });

  test("bgp_config: local, METAL_BGP_ASN, and no md5 unless METAL_BGP_MD5_ENABLED", () => {
    const [, plain] = projectsOf(managed.stack)[0];
    expect(plain.bgp_config).toEqual({ deployment_type: "local", asn: 65000 });
    const [, withPassword] = projectsOf(managedMd5.stack)[0];
    expect(withPassword.bgp_config).toEqual({ deployment_type: "local", asn: 64600, md5: `\${var.${PASSWORD_VARIABLE}}` });
  });

  test("the password is a reference to a sensitive variable; its value is nowhere in the output", () => {
    expect(managedMd5.stack.variable?.[PASSWORD_VARIABLE]).toMatchObject({ sensitive: true, type: "string" });
    expect(managedMd5.raw).not.toContain(SAMPLE_PASSWORD);
    expect(managed.stack.variable?.[PASSWORD_VARIABLE]).toBeUndefined();
  });

  test("the project's name is its own (read from the data source), so adoption never renames it", () => {
    for (const { stack } of [managed, managedMd5]) {
      const [dataId] = onlyDataProject(stack);
      const [, project] = projectsOf(stack)[0];
      expect(project.name).toBe(`\${data.metal_project.${dataId}.name}`);
    }
  });

  test("prevent_destroy, and the owner's attributes are left alone (each one a real attribute)", () => {
    const attributes = metalSchema.resource_schemas.metal_project.block.attributes!;
    const [, project] = projectsOf(managed.stack)[0];
    expect(project.lifecycle.prevent_destroy).toBe(true);
    const ignored: string[] = project.lifecycle.ignore_changes;
    // organization_id is ForceNew in the provider: a diff there would replace (delete) the project.
    expect(ignored).toEqual(expect.arrayContaining(["organization_id", "payment_method_id", "backend_transfer"]));
    for (const name of ignored) expect(Object.keys(attributes)).toContain(name);
    expect(ignored).not.toContain("bgp_config");
  });

  test("every device's BGP session waits for the project's BGP config", () => {
    for (const { stack } of [managed, managedMd5]) {
      const [id] = projectsOf(stack)[0];
      const devices = Object.keys(stack.resource?.metal_device ?? {});
      const sessions = Object.values(stack.resource?.metal_bgp_session ?? {});
      expect(sessions).toHaveLength(devices.length);
      for (const s of sessions) expect(s.depends_on).toEqual([`metal_project.${id}`]);
    }
    expect(Object.keys(managed.stack.resource?.metal_device ?? {})).toHaveLength(4); // 1 control plane + WORKER_COUNT=3
  });

  test("every metal_* object matches the equinix/metal 3.3.0 schema", () => {
    for (const { stack } of [managed, managedMd5]) {
      const problems: string[] = [];
      let checked = 0;
      for (const [kind, schemas, bodies] of [
        ["resource", metalSchema.resource_schemas, stack.resource ?? {}],
        ["data", metalSchema.data_source_schemas, stack.data ?? {}],
      ] as const) {
        for (const [type, byId] of Object.entries(bodies)) {
          if (!type.startsWith("metal_")) continue;
          for (const [id, body] of Object.entries(byId)) {
            checked++;
            const schema = schemas[type];
            if (!schema) problems.push(`${kind} ${type}.${id}: type not in the provider schema`);
            else problems.push(...checkBody(`${kind} ${type}.${id}`, schema.block, body));
          }
        }
      }
      expect(stack.resource?.metal_project).toBeDefined();
      expect(checked).toBeGreaterThan(3);
      expect(problems).toEqual([]);
    }
  });
});

// ---------------------------------------------------------------------------------
// The real terraform: conditions evaluated against stand-ins, import and prevent_destroy
// exercised on a builtin terraform_data stand-in (no provider download needed).

const terraformPath = terraformBinary();
const hasTerraform = fs.existsSync(terraformPath);
if (!hasTerraform) console.warn(`SKIPPED metal-project-bgp terraform checks: the pinned terraform is not built (${terraformPath}); run \`npm run tools -- terraform\` (.ci/run does)`);
const describeWithTerraform = hasTerraform ? describe : describe.skip;
const TF_ENV = { ...process.env, TF_CLI_CONFIG_FILE: "/dev/null", CHECKPOINT_DISABLE: "1", TF_IN_AUTOMATION: "1" };

function terraform(dir: string, args: string[], input?: string) {
  return spawnSync(terraformPath, args, { cwd: dir, input, encoding: "utf8", env: TF_ENV, timeout: 120_000 });
}

/** Evaluates each condition with `self` = `value` and the password variable = `password`. */
function verdicts(conditions: { condition: string }[], self: unknown, password = ""): boolean[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tf-project-bgp-"));
  try {
    fs.writeFileSync(path.join(dir, "main.tf.json"), JSON.stringify({ locals: { self, password } }));
    const expressions = conditions.map((c) =>
      expressionOf(c.condition)
        .replace(/\bself\./g, "local.self.")
        .replace(new RegExp(`\\bvar\\.${PASSWORD_VARIABLE}\\b`, "g"), "local.password"),
    );
    const result = terraform(dir, ["console"], `jsonencode([${expressions.join(", ")}])\n`);
    if (result.status !== 0) throw new Error(`terraform console failed: ${result.stderr}`);
    return JSON.parse(JSON.parse(result.stdout.trim())) as boolean[];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describeWithTerraform("conditions, evaluated by terraform", () => {
  const enabled = { deployment_type: "local", status: "enabled", asn: 65000, md5: "", max_prefix: 10 };

  test("managed, before the first deploy: a project without BGP passes the plan (the resource enables it)", () => {
    const [, data] = onlyDataProject(managed.stack);
    expect(verdicts(data.lifecycle.postcondition, { bgp_config: [] })).toEqual([true, true, true]);
    // The same project fails the default mode's check, which is why managed mode replaces it.
    const [, unmanagedData] = onlyDataProject(unmanaged.stack);
    expect(verdicts(unmanagedData.lifecycle.postcondition, { bgp_config: [] })).toContain(false);
  });

  test("managed: an existing config must be the one declared (ASN, type, password), with room for the budget", () => {
    const [, data] = onlyDataProject(managed.stack);
    const conditions = data.lifecycle.postcondition;
    expect(verdicts(conditions, { bgp_config: [enabled] })).toEqual([true, true, true]);
    for (const bad of [{ asn: 65001 }, { deployment_type: "global" }, { md5: "other" }, { max_prefix: 4 }]) {
      expect(verdicts(conditions, { bgp_config: [{ ...enabled, ...bad }] })).toContain(false);
    }
    const [, dataMd5] = onlyDataProject(managedMd5.stack);
    const withAsn = { ...enabled, asn: 64600 };
    expect(verdicts(dataMd5.lifecycle.postcondition, { bgp_config: [] }, SAMPLE_PASSWORD)).toEqual([true, true, true]);
    expect(verdicts(dataMd5.lifecycle.postcondition, { bgp_config: [{ ...withAsn, md5: SAMPLE_PASSWORD }] }, SAMPLE_PASSWORD)).toEqual([true, true, true]);
    expect(verdicts(dataMd5.lifecycle.postcondition, { bgp_config: [{ ...withAsn, md5: "another" }] }, SAMPLE_PASSWORD)).toContain(false);
    expect(verdicts(dataMd5.lifecycle.postcondition, { bgp_config: [withAsn] }, SAMPLE_PASSWORD)).toContain(false);
  });

  test("managed, after apply: the project's BGP must be enabled and max_prefix fit the budget", () => {
    const [, project] = projectsOf(managed.stack)[0];
    const conditions = project.lifecycle.postcondition;
    expect(verdicts(conditions, { bgp_config: [enabled] }).every(Boolean)).toBe(true);
    expect(verdicts(conditions, { bgp_config: [{ ...enabled, max_prefix: 0 }] }).every(Boolean)).toBe(true); // not reported
    expect(verdicts(conditions, { bgp_config: [{ ...enabled, status: "requested" }] })).toContain(false);
    expect(verdicts(conditions, { bgp_config: [{ ...enabled, max_prefix: 7 }] })).toContain(false); // 8 needed
  });

  test("managed, at plan time: the config about to be created has null status and max_prefix (equinix/metal 3.3.0), which passes", () => {
    const [, project] = projectsOf(managed.stack)[0];
    const planned = { deployment_type: "local", asn: 65000, md5: null, status: null, max_prefix: null };
    expect(verdicts(project.lifecycle.postcondition, { bgp_config: [planned] })).toEqual([true, true]);
  });
});

describeWithTerraform("the synthesized import block and prevent_destroy, run by terraform on a stand-in", () => {
  // The same `import` entry and lifecycle, with metal_project swapped for the builtin
  // terraform_data (which supports import), so the real terraform plans and applies them.
  const [id, project] = projectsOf(managed.stack)[0];
  const config = {
    import: managed.stack.import!.map((i) => ({ ...i, to: i.to.replace(/^metal_project\./, "terraform_data.") })),
    resource: { terraform_data: { [id]: { lifecycle: { prevent_destroy: project.lifecycle.prevent_destroy } } } },
  };
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "tf-project-import-"));
    fs.writeFileSync(path.join(dir, "main.tf.json"), JSON.stringify(config));
    const init = terraform(dir, ["init", "-input=false", "-no-color"]);
    if (init.status !== 0) throw new Error(`terraform init failed: ${init.stderr}`);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test("the first deploy imports the project; a second one changes nothing", () => {
    const apply = terraform(dir, ["apply", "-auto-approve", "-input=false", "-no-color"]);
    expect(apply.stderr).toBe("");
    expect(apply.stdout).toContain("1 imported, 0 added, 0 changed, 0 destroyed");
    const state = terraform(dir, ["state", "show", "-no-color", `terraform_data.${id}`]);
    expect(state.stdout).toContain(`"${PROJECT_ID}"`);
    expect(terraform(dir, ["plan", "-detailed-exitcode", "-input=false", "-no-color"]).status).toBe(0);
  });

  test("destroy stops on prevent_destroy; after `terraform state rm` (docs/bgp-fabric.md) it no longer touches the project", () => {
    const destroy = terraform(dir, ["plan", "-destroy", "-input=false", "-no-color"]);
    expect(destroy.status).toBe(1);
    expect(destroy.stderr).toContain("prevent_destroy");
    expect(terraform(dir, ["state", "rm", "-no-color", `terraform_data.${id}`]).status).toBe(0);
    // Now the resource can leave the configuration (METAL_MANAGE_PROJECT_BGP=false) with nothing to destroy.
    fs.writeFileSync(path.join(dir, "main.tf.json"), JSON.stringify({}));
    const plan = terraform(dir, ["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    expect(plan.status).toBe(0);
  });
});
