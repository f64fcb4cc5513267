import * as fs from "node:fs";
import * as path from "node:path";
import { ProviderSchema, checkBody } from "./support/metal-schema";
import { referencePath } from "./support/reference";
import { synthesize } from "./support/synth";

const PROVIDER = "registry.terraform.io/equinix/metal";
const projectSchema: ProviderSchema = JSON.parse(
  fs.readFileSync(path.join(__dirname, "..", "providers", "equinix-metal-3.3.0.schema.json"), "utf8"),
).provider_schemas[PROVIDER];

const examples: [string, Record<string, string>][] = [
  ["the default example", {}],
  ["CONTROL_PLANE_COUNT=3 WORKER_COUNT=5", { CONTROL_PLANE_COUNT: "3", WORKER_COUNT: "5" }],
];

describe.each(examples)("metal_* objects in %s", (_label, env) => {
  const { stacks } = synthesize(env);

  test("use only attributes equinix/metal 3.3.0 defines and set every required one", () => {
    const problems: string[] = [];
    let checked = 0;
    for (const [stackName, stack] of Object.entries(stacks)) {
      for (const [kind, schemas, bodies] of [
        ["resource", projectSchema.resource_schemas, stack.resource ?? {}],
        ["data", projectSchema.data_source_schemas, stack.data ?? {}],
      ] as const) {
        for (const [type, byId] of Object.entries(bodies)) {
          if (!type.startsWith("metal_")) continue;
          const schema = schemas[type];
          for (const [id, body] of Object.entries(byId)) {
            checked++;
            if (!schema) problems.push(`${stackName} ${kind} ${type}.${id}: type not in the project's provider schema`);
            else problems.push(...checkBody(`${stackName} ${kind} ${type}.${id}`, schema.block, body));
          }
        }
      }
      for (const config of stack.provider?.metal ?? []) problems.push(...checkBody(`${stackName} provider metal`, projectSchema.provider.block, config));
    }
    expect(checked).toBeGreaterThan(0);
    expect(problems).toEqual([]);
  });
});

test("the schema check catches unknown, computed-only and missing attributes", () => {
  const device = projectSchema.resource_schemas.metal_device.block;
  expect(checkBody("d", device, { plan: "x", operating_system: "y", project_id: "z", hostnme: "typo" })).toEqual(["d: unknown attribute or block hostnme"]);
  expect(checkBody("d", device, { plan: "x", operating_system: "y", project_id: "z", access_public_ipv6: "::1" })).toEqual([
    "d: sets computed-only attribute access_public_ipv6",
  ]);
  expect(checkBody("d", device, { plan: "x", operating_system: "y" })).toEqual(["d: required attribute project_id is not set"]);
});

describe("the project's provider schema agrees with the shared reference (equinix/metal 3.3.0)", () => {
  const reference: ProviderSchema = JSON.parse(fs.readFileSync(referencePath("schemas", "metal", "equinix-metal-3.3.0.schema.json"), "utf8"))
    .provider_schemas[PROVIDER];

  test.each(Object.keys(projectSchema.resource_schemas))("resource %s", (type) => {
    expect(projectSchema.resource_schemas[type]).toEqual(reference.resource_schemas[type]);
  });

  test.each(Object.keys(projectSchema.data_source_schemas))("data source %s", (type) => {
    expect(projectSchema.data_source_schemas[type]).toEqual(reference.data_source_schemas[type]);
  });

  test("provider block: identical except auth_token, optional because METAL_AUTH_TOKEN is set (SDK DefaultFunc)", () => {
    const ours = structuredClone(projectSchema.provider.block) as any;
    const theirs = structuredClone(reference.provider.block) as any;
    expect(ours.attributes.auth_token).toMatchObject({ type: "string", optional: true });
    expect(ours.attributes.auth_token.required).toBeUndefined();
    expect(theirs.attributes.auth_token).toMatchObject({ type: "string", required: true });
    delete ours.attributes.auth_token;
    delete theirs.attributes.auth_token;
    expect(ours).toEqual(theirs);
  });
});
