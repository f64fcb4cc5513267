import { onlyStack, resourcesOf, synthesize } from "./support/synth";

const RFC1123_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

describe.each([
  ["the default example", {}, 1, 2],
  ["CONTROL_PLANE_COUNT=3 WORKER_COUNT=5", { CONTROL_PLANE_COUNT: "3", WORKER_COUNT: "5" }, 3, 5],
  ["CONTROL_PLANE_COUNT=5 WORKER_COUNT=0", { CONTROL_PLANE_COUNT: "5", WORKER_COUNT: "0" }, 5, 0],
])("synth of %s", (_label, env, controlPlanes, workers) => {
  const synth = synthesize(env);
  const stack = onlyStack(synth);
  const devices = resourcesOf(stack, "metal_device");
  const sessions = resourcesOf(stack, "metal_bgp_session");

  test("one metal_device per node, Flatcar, in the metro, with the plan", () => {
    expect(devices).toHaveLength(controlPlanes + workers);
    for (const [, d] of devices) {
      expect(d.operating_system).toBe("flatcar_stable");
      expect(d.metro).toBe("da");
      expect(d.plan).toBe("c3.small.x86");
      expect(d.billing_cycle).toBe("hourly");
      expect(typeof d.user_data).toBe("string");
      expect(d.lifecycle.ignore_changes).toEqual(["user_data"]);
    }
  });

  test("hostnames are RFC 1123, unique, and say the role", () => {
    const hostnames = devices.map(([, d]) => d.hostname as string);
    expect(new Set(hostnames).size).toBe(hostnames.length);
    for (const h of hostnames) expect(h).toMatch(RFC1123_LABEL);
    expect(hostnames.filter((h) => /-cp-\d+$/.test(h))).toHaveLength(controlPlanes);
    expect(hostnames.filter((h) => /-worker-\d+$/.test(h))).toHaveLength(workers);
    for (const [, d] of devices) expect(d.tags).toContain(`k8s-role-${/-cp-/.test(d.hostname) ? "control-plane" : "worker"}`);
  });

  test("one IPv6 BGP session per device, pointing at it", () => {
    expect(sessions).toHaveLength(devices.length);
    const deviceRefs = devices.map(([id]) => `\${metal_device.${id}.id}`).sort();
    expect(sessions.map(([, s]) => s.device_id).sort()).toEqual(deviceRefs);
    for (const [, s] of sessions) expect(s.address_family).toBe("ipv6");
  });

  test("the plan checks CLUSTER_IPV6_BLOCK against the project's real block", () => {
    const blocks = Object.values(stack.data?.metal_precreated_ip_block ?? {});
    expect(blocks).toHaveLength(1);
    const [block] = blocks;
    expect(block).toMatchObject({ address_family: 6, public: true, metro: "da" });
    const [condition] = block.lifecycle.postcondition;
    // The default CLUSTER_IPV6_BLOCK, 2001:db8:0:ab00::/56.
    expect(condition.condition).toContain("self.cidr == 56");
    expect(condition.condition).toContain('cidrhost(self.cidr_notation, 0) == "2001:db8:0:ab00::"');
    expect(condition.error_message).toContain("CLUSTER_IPV6_BLOCK=2001:db8:0:ab00::/56");
  });
});

test("node names and resource IDs are stable: raising WORKER_COUNT only adds", () => {
  const small = onlyStack(synthesize({ WORKER_COUNT: "2" }));
  const large = onlyStack(synthesize({ WORKER_COUNT: "4" }));
  const ids = (s: typeof small) => Object.keys(s.resource?.metal_device ?? {});
  expect(ids(large)).toEqual(expect.arrayContaining(ids(small)));
  expect(ids(large).length - ids(small).length).toBe(2);
  for (const id of ids(small)) expect(large.resource!.metal_device[id]).toEqual(small.resource!.metal_device[id]);
});

test("synthesizing twice gives byte-identical output", () => {
  const env = { CONTROL_PLANE_COUNT: "3", WORKER_COUNT: "5" };
  expect(synthesize(env).raw).toEqual(synthesize(env).raw);
});

test("the local backend path is relative, so the output does not depend on the checkout", () => {
  const stack = onlyStack(synthesize());
  expect(stack.terraform?.backend).toEqual({ local: { path: "terraform.v6fabric.tfstate" } });
});

test("with TF_CLOUD_ORGANIZATION every stack gets its own Terraform Cloud workspace", () => {
  const synth = synthesize({ TF_CLOUD_ORGANIZATION: "acme", TF_WORKSPACE_PREFIX: "v6-" });
  for (const [name, stack] of Object.entries(synth.stacks)) {
    expect(stack.terraform?.backend).toBeUndefined();
    expect(stack.terraform?.cloud).toEqual({ hostname: "app.terraform.io", organization: "acme", workspaces: { name: `v6-${name}` } });
  }
});
