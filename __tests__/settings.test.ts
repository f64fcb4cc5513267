import { SETTINGS, loadSettings } from "../lib/settings";
import { settingsProblems } from "./support/settings";


test("every setting has a default that synthesizes", () => {
  const s = loadSettings({});
  expect(s.controlPlaneCount).toBe(1);
  expect(s.workerCount).toBe(2);
  expect(String(s.addressPlan.block)).toMatch(/^2001:db8:/); // documentation range
  expect(s.kubernetesVersion).toMatch(/^1\.36\.\d+$/);
  expect(s.terraformCloud).toBeUndefined();
  expect(SETTINGS.map((x) => x.name)).toEqual(expect.arrayContaining([
    "CLUSTER_NAME", "METAL_PROJECT_ID", "METAL_METRO", "CLUSTER_IPV6_BLOCK", "CONTROL_PLANE_COUNT",
    "WORKER_COUNT", "NODE_PLAN", "KUBERNETES_VERSION",
  ]));
  expect(SETTINGS.map((x) => x.name)).not.toContain("METAL_AUTH_TOKEN");
});

// Each bad value must be named together with the setting and what would be valid.
test.each([
  [{ WORKER_COUNT: "-1" }, "WORKER_COUNT=-1 is not valid: must be a whole number from 0 to 100"],
  [{ WORKER_COUNT: "abc" }, "WORKER_COUNT=abc is not valid: must be a whole number from 0 to 100"],
  [{ WORKER_COUNT: "101" }, "WORKER_COUNT=101 is not valid: must be a whole number from 0 to 100"],
  [{ CONTROL_PLANE_COUNT: "2" }, "CONTROL_PLANE_COUNT=2 is not valid: etcd needs an odd number of members: use 1, 3 or 5"],
  [{ CLUSTER_IPV6_BLOCK: "10.0.0.0/8" }, 'CLUSTER_IPV6_BLOCK=10.0.0.0/8 is not valid: "10.0.0.0/8" is not an IPv6 prefix'],
  [{ CLUSTER_IPV6_BLOCK: "2001:db8::/120" }, "CLUSTER_IPV6_BLOCK=2001:db8::/120 is not valid: \"2001:db8::/120\" is a /120: the plan needs a block from /32 to /60"],
  [{ CLUSTER_IPV6_BLOCK: "2001:db8:0:ab80::/48" }, "CLUSTER_IPV6_BLOCK=2001:db8:0:ab80::/48 is not valid: \"2001:db8:0:ab80::/48\" has host bits set: the /48 that contains it is 2001:db8::/48"],
  [{ CLUSTER_NAME: "Bad_Name!" }, "CLUSTER_NAME=Bad_Name! is not valid: must be a lower-case RFC 1123 label"],
  [{ CLUSTER_NAME: "a".repeat(41) }, `CLUSTER_NAME=${"a".repeat(41)} is not valid: must be a lower-case RFC 1123 label`],
  [{ METAL_PROJECT_ID: "my-project" }, "METAL_PROJECT_ID=my-project is not valid: must be a project UUID"],
  [{ METAL_METRO: "Dallas" }, "METAL_METRO=Dallas is not valid: must be a two-letter lower-case metro code"],
  [{ KUBERNETES_VERSION: "1.29.0" }, "KUBERNETES_VERSION=1.29.0 is not valid: no pinned binary hashes for it; pinned versions: 1.36"],
  [{ METAL_BGP_ASN: "65530" }, "METAL_BGP_ASN=65530 is not valid: 65530 is the Metal routers' own ASN"],
  [{ METAL_BGP_ASN: "13335" }, "METAL_BGP_ASN=13335 is not valid: local BGP uses a private ASN"],
  [{ FLATCAR_CHANNEL: "edge" }, "FLATCAR_CHANNEL=edge is not valid: must be one of stable, beta, alpha, lts"],
  [{ TF_CLOUD_ORGANIZATION: "acme corp" }, "TF_CLOUD_ORGANIZATION=acme corp is not valid"],
])("%j is rejected", (env, message) => {
  const problems = settingsProblems(env);
  expect(problems).toHaveLength(1);
  expect(problems[0]).toContain(message);
});

test("all problems are reported at once", () => {
  expect(settingsProblems({ WORKER_COUNT: "abc", CONTROL_PLANE_COUNT: "2", CLUSTER_NAME: "X" })).toHaveLength(3);
});

test("Terraform Cloud settings turn on only with an organization", () => {
  const s = loadSettings({ TF_CLOUD_ORGANIZATION: "acme", TF_WORKSPACE_PREFIX: "v6-" });
  expect(s.terraformCloud).toEqual({ organization: "acme", workspacePrefix: "v6-", hostname: "app.terraform.io" });
  expect(loadSettings({ TF_WORKSPACE_PREFIX: "v6-" }).terraformCloud).toBeUndefined();
});
