/**
 * rehearsal/root-module.ts on hand-written stacks: the stack is applied as synthesized,
 * Metal objects and all; only a remote backend becomes a local state file, and says so.
 */
import { rehearsalRoot } from "../rehearsal/root-module";

const stack = {
  terraform: { required_providers: { metal: { source: "equinix/metal" } }, cloud: { organization: "acme", workspaces: { name: "v6-c" } } },
  provider: { metal: [{}] },
  resource: { metal_device: { a: { hostname: "c-cp-1", user_data: '{"k":"${tls_private_key.k.public_key_pem}"}' } } },
  import: [{ to: "metal_project.project", id: "p" }],
};

test("a Terraform Cloud stack keeps every object and gets a local state file instead of its workspace", () => {
  const r = rehearsalRoot(stack, "terraform.tfstate");
  expect(r.replacedBackend).toBe("Terraform Cloud (organization acme)");
  expect(r.root.terraform).toEqual({ required_providers: { metal: { source: "equinix/metal" } }, backend: { local: { path: "terraform.tfstate" } } });
  expect(r.root.resource).toEqual(stack.resource);
  expect(r.root.import).toEqual(stack.import);
  expect(stack.terraform.cloud).toBeDefined(); // the input is not changed
});

test("an s3 backend is named; a local one is kept as a local one and not reported", () => {
  expect(rehearsalRoot({ terraform: { backend: { s3: { bucket: "b" } } } }, "s").replacedBackend).toBe("s3");
  const local = rehearsalRoot({ terraform: { backend: { local: { path: "elsewhere" } } } }, "terraform.tfstate");
  expect(local.replacedBackend).toBeUndefined();
  expect(local.root.terraform.backend).toEqual({ local: { path: "terraform.tfstate" } });
});
