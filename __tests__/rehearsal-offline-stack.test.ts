/**
 * rehearsal/offline-stack.ts on hand-written stacks: what the rehearsal leaves out is
 * said, device addresses are the ones Metal would give, and a Metal reference it does
 * not know stops it instead of being dropped.
 */
import { deviceIpv6, rehearsalRoot } from "../rehearsal/offline-stack";

function stack(extra: Record<string, unknown> = {}) {
  return {
    terraform: {
      required_providers: { metal: { source: "equinix/metal" }, tls: { source: "hashicorp/tls" } },
      cloud: { organization: "acme", workspaces: { name: "v6-c" } },
    },
    provider: { metal: [{}], tls: [{}] },
    resource: {
      metal_device: {
        a: { hostname: "c-cp-1", tags: ["k8s-role-control-plane"], user_data: '{"k":"${tls_private_key.k.public_key_pem}"}' },
        b: { hostname: "c-worker-01", tags: [], user_data: '{"api":"${base64encode(join("\\n", [metal_device.a.access_public_ipv6, ""]))}"}' },
      },
      metal_bgp_session: { s: { device_id: "${metal_device.a.id}" } },
      tls_private_key: { k: { algorithm: "ECDSA", depends_on: ["metal_device.a", "tls_private_key.other"] } },
    },
    data: { metal_project: { p: { project_id: "x" } } },
    output: {
      fabric_summary: { value: { addressPlan: { block: "2001:db8:0:ab00::/56" } } },
      urls: { value: ["https://[${metal_device.a.access_public_ipv6}]:443", "https://[${metal_device.b.access_public_ipv6}]:443"] },
    },
    ...extra,
  };
}

test("Metal's /127s: gateway on the even address, the device on the odd one, in the block's first /64", () => {
  expect(deviceIpv6("2001:db8:0:ab00::/56", 0)).toEqual({ gateway: "2001:db8:0:ab00::", address: "2001:db8:0:ab00::1" });
  expect(deviceIpv6("2001:db8:0:ab00::/56", 7)).toEqual({ gateway: "2001:db8:0:ab00::e", address: "2001:db8:0:ab00::f" });
  expect(deviceIpv6("2001:db8:0:ab00::/56", 200)).toEqual({ gateway: "2001:db8:0:ab00::190", address: "2001:db8:0:ab00::191" });
});

test("devices become sensitive user-data outputs; Metal objects and the cloud backend are left out and listed", () => {
  const r = rehearsalRoot(stack(), "terraform.tfstate");
  expect(r.leftOut).toEqual(["2 metal_device", "1 metal_bgp_session", "1 data.metal_project"]);
  expect(r.replacedBackend).toBe("Terraform Cloud (organization acme)");
  expect(r.root.terraform).toEqual({ required_providers: { tls: { source: "hashicorp/tls" } }, backend: { local: { path: "terraform.tfstate" } } });
  expect(r.root.provider).toEqual({ tls: [{}] });
  expect(r.root.data).toBeUndefined();
  expect(Object.keys(r.root.resource)).toEqual(["tls_private_key"]);
  expect(r.root.resource.tls_private_key.k.depends_on).toEqual(["tls_private_key.other"]);
  expect(r.root.output["rehearsal_user_data_c-cp-1"]).toEqual({
    description: "user_data of metal_device.a as Terraform renders it for the device",
    value: '{"k":"${tls_private_key.k.public_key_pem}"}',
    sensitive: true,
  });
  expect(r.root.output.urls.value).toEqual(["https://[2001:db8:0:ab00::1]:443", "https://[2001:db8:0:ab00::3]:443"]);
  // Inside a larger expression, a device's address becomes a string literal Terraform evaluates.
  expect(r.root.output["rehearsal_user_data_c-worker-01"].value).toBe('{"api":"${base64encode(join("\\n", ["2001:db8:0:ab00::1", ""]))}"}');
  expect(r.devices.map((d) => [d.hostname, d.publicIpv6, d.publicIpv6Gateway])).toEqual([
    ["c-cp-1", "2001:db8:0:ab00::1", "2001:db8:0:ab00::"],
    ["c-worker-01", "2001:db8:0:ab00::3", "2001:db8:0:ab00::2"],
  ]);
});

test("a reference to a Metal attribute the rehearsal cannot stand for stops it, naming where", () => {
  const bad = stack();
  (bad.output as Record<string, unknown>).ids = { value: "${metal_device.a.id}" };
  expect(() => rehearsalRoot(bad, "s")).toThrow("output.ids.value: ${metal_device.a.id} names a Metal object the rehearsal does not apply");
  const mixed = stack();
  (mixed.output as Record<string, unknown>).both = { value: '${join(",", [metal_device.a.access_public_ipv6, metal_device.a.id])}' };
  expect(() => rehearsalRoot(mixed, "s")).toThrow("output.both.value");
  const badData = stack();
  (badData.resource.tls_private_key.k as Record<string, unknown>).ecdsa_curve = "${data.metal_project.p.bgp_config[0].asn}";
  expect(() => rehearsalRoot(badData, "s")).toThrow("resource.tls_private_key.k.ecdsa_curve");
});

test("a stack without the fabric summary is refused", () => {
  expect(() => rehearsalRoot({ terraform: {} }, "s")).toThrow("no fabric_summary output");
});

describe("declaredDifferences (the add-on read-back of the control-plane rehearsal)", () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { declaredDifferences } = require("../rehearsal/control-plane") as typeof import("../rehearsal/control-plane");
  test("defaults the server adds are fine; a changed or missing declared value is reported with its path", () => {
    expect(declaredDifferences({ spec: { a: 1, l: [{ x: "y" }] } }, { spec: { a: 1, b: 2, l: [{ x: "y", z: 0 }] } })).toEqual([]);
    expect(declaredDifferences({ spec: { a: 1 } }, { spec: { a: 2 } })).toEqual([".spec.a: declared 1, live 2"]);
    expect(declaredDifferences({ spec: { l: [1, 2] } }, { spec: { l: [1] } })).toEqual([".spec.l: declared [1,2], live [1]"]);
    expect(declaredDifferences({ spec: { a: "x" } }, { spec: {} })).toEqual([".spec.a: declared \"x\", live undefined"]);
  });
  test("an empty list or string the server omits is not a difference, an empty object still must exist", () => {
    expect(declaredDifferences({ a: [], b: "" }, {})).toEqual([]);
    expect(declaredDifferences({ a: {} }, {})).toEqual([".a: declared an object, live undefined"]);
  });
});
