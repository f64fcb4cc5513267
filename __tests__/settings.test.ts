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
  [{ CONTROL_PLANE_COUNT: "abc" }, "CONTROL_PLANE_COUNT=abc is not valid: must be a whole number: 1, 3 or 5 (etcd needs an odd number of members)"],
  [{ CONTROL_PLANE_COUNT: "1.5" }, "CONTROL_PLANE_COUNT=1.5 is not valid: must be a whole number: 1, 3 or 5 (etcd needs an odd number of members)"],
  [{ CONTROL_PLANE_COUNT: "7" }, "CONTROL_PLANE_COUNT=7 is not valid: use 1, 3 or 5: the app supports at most 5 etcd members"],
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
  expect(loadSettings({ TF_CLOUD_ORGANIZATION: "acme", TF_CLOUD_HOSTNAME: "tfe.example.com" }).terraformCloud).toEqual({
    organization: "acme",
    workspacePrefix: "",
    hostname: "tfe.example.com",
  });
  // Set to what they mean when unset, they need no organization.
  expect(loadSettings({ TF_WORKSPACE_PREFIX: "", TF_CLOUD_HOSTNAME: "app.terraform.io" }).terraformCloud).toBeUndefined();
});

// A setting that only means something with another one names it.
test.each([
  [
    { TF_WORKSPACE_PREFIX: "v6-" },
    "TF_WORKSPACE_PREFIX=v6- is not valid: it names Terraform Cloud workspaces and needs TF_CLOUD_ORGANIZATION, which is not set; set TF_CLOUD_ORGANIZATION to keep state in Terraform Cloud, or unset TF_WORKSPACE_PREFIX to keep it local",
  ],
  [
    { TF_CLOUD_HOSTNAME: "tfe.example.com" },
    "TF_CLOUD_HOSTNAME=tfe.example.com is not valid: it selects a Terraform Enterprise host and needs TF_CLOUD_ORGANIZATION, which is not set; set TF_CLOUD_ORGANIZATION to keep state there, or unset TF_CLOUD_HOSTNAME to keep it local",
  ],
  [{ TF_CLOUD_ORGANIZATION: "", TF_WORKSPACE_PREFIX: "v6-" }, "TF_WORKSPACE_PREFIX=v6- is not valid: it names Terraform Cloud workspaces and needs TF_CLOUD_ORGANIZATION, which is not set"],
  // A bad organization is reported as such, not as missing.
  [{ TF_CLOUD_ORGANIZATION: "acme corp", TF_WORKSPACE_PREFIX: "v6-" }, "TF_CLOUD_ORGANIZATION=acme corp is not valid: must be a Terraform Cloud organization name"],
])("%j: the other Terraform Cloud settings need a valid TF_CLOUD_ORGANIZATION", (env, message) => {
  const problems = settingsProblems(env);
  expect(problems).toHaveLength(1);
  expect(problems[0]).toContain(message);
});

describe("empty values", () => {
  test.each([
    [{ CLUSTER_IPV6_BLOCK: "" }, "CLUSTER_IPV6_BLOCK= is not valid: the variable is set but empty; set a value, or unset it to use the default 2001:db8:0:ab00::/56"],
    [{ WORKER_COUNT: "  " }, "WORKER_COUNT= is not valid: the variable is set but empty; set a value, or unset it to use the default 2"],
    [{ METAL_PROJECT_ID: "" }, "METAL_PROJECT_ID= is not valid: the variable is set but empty; set a value, or unset it to use the default 00000000-0000-0000-0000-000000000000"],
    [{ TF_CLOUD_HOSTNAME: "" }, "TF_CLOUD_HOSTNAME= is not valid: the variable is set but empty; set a value, or unset it to use the default app.terraform.io"],
    [{ API_ALLOWED_INTERNET_WIDE: "" }, "API_ALLOWED_INTERNET_WIDE= is not valid: the variable is set but empty; set a value, or unset it to use the default false"],
  ])("%j is an error, not the default", (env, message) => {
    expect(settingsProblems(env)).toEqual([message]);
  });

  test("are an error for every setting whose default is not empty", () => {
    for (const s of SETTINGS.filter((x) => x.default !== "")) {
      expect(settingsProblems({ [s.name]: "" })).toEqual([expect.stringMatching(new RegExp(`^${s.name}= is not valid: the variable is set but empty`))]);
    }
  });

  test("mean the default only for the lists, the Terraform Cloud names and the optional paths and runner, and their descriptions say so", () => {
    const emptyIsDefault = ["METAL_PROJECT_SSH_KEY_IDS", "API_ALLOWED_PREFIXES", "ADMIN_ALLOWED_PREFIXES", "TF_CLOUD_ORGANIZATION", "TF_WORKSPACE_PREFIX", "MATCHBOX_INVENTORY", "CONFIG_STACK_RUNNER_PREFIX"];
    expect(SETTINGS.filter((s) => s.emptyMeansDefault).map((s) => s.name)).toEqual(emptyIsDefault);
    for (const s of SETTINGS) {
      expect([s.name, s.emptyMeansDefault === true]).toEqual([s.name, s.default === ""]);
      expect([s.name, s.description.includes("Empty or unset:")]).toEqual([s.name, s.emptyMeansDefault === true]);
    }
    const env = Object.fromEntries(emptyIsDefault.map((name) => [name, ""]));
    expect(loadSettings(env)).toEqual(loadSettings({}));
  });
});

describe("source prefixes that open a port to the whole Internet need an acknowledgement", () => {
  test.each([
    [
      { API_ALLOWED_PREFIXES: "::/0" },
      "API_ALLOWED_PREFIXES=::/0 is not valid: ::/0 opens the Kubernetes API server to the whole Internet or a large part of it (a prefix shorter than /16 is far wider than any one organization's network). If that is what you want, acknowledge it with API_ALLOWED_INTERNET_WIDE=true; otherwise list only your own prefixes, e.g. 2001:db8:1234::/48",
    ],
    [
      { ADMIN_ALLOWED_PREFIXES: "2001:db8:aa::/48, 2000::/3,::/0" },
      "ADMIN_ALLOWED_PREFIXES=2001:db8:aa::/48, 2000::/3,::/0 is not valid: 2000::/3 and ::/0 open SSH (port 22) on every node to the whole Internet or a large part of it (a prefix shorter than /16 is far wider than any one organization's network). If that is what you want, acknowledge it with ADMIN_ALLOWED_INTERNET_WIDE=true; otherwise list only your own prefixes, e.g. 2001:db8:1234::/48",
    ],
    [{ API_ALLOWED_PREFIXES: "2000::/15" }, "API_ALLOWED_PREFIXES=2000::/15 is not valid: 2000::/15 opens the Kubernetes API server to the whole Internet or a large part of it"],
    // One list's acknowledgement does not cover the other.
    [{ ADMIN_ALLOWED_PREFIXES: "::/0", API_ALLOWED_INTERNET_WIDE: "true" }, "ADMIN_ALLOWED_PREFIXES=::/0 is not valid: ::/0 opens SSH (port 22) on every node"],
    [{ API_ALLOWED_PREFIXES: "::/0", API_ALLOWED_INTERNET_WIDE: "false" }, "acknowledge it with API_ALLOWED_INTERNET_WIDE=true"],
  ])("%j is rejected", (env, message) => {
    const problems = settingsProblems(env);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(message);
  });

  test("with the acknowledgement they are taken as given; /16 and longer need none", () => {
    const s = loadSettings({ API_ALLOWED_PREFIXES: "::/0", API_ALLOWED_INTERNET_WIDE: "true", ADMIN_ALLOWED_PREFIXES: "2000::/3", ADMIN_ALLOWED_INTERNET_WIDE: "true" });
    expect(s.apiAllowedPrefixes.map(String)).toEqual(["::/0"]);
    expect(s.adminAllowedPrefixes.map(String)).toEqual(["2000::/3"]);
    expect(loadSettings({ API_ALLOWED_PREFIXES: "2001::/16", ADMIN_ALLOWED_PREFIXES: "2001:db8::/32" }).apiAllowedPrefixes.map(String)).toEqual(["2001::/16"]);
    expect(loadSettings({ API_ALLOWED_INTERNET_WIDE: "true" }).apiAllowedPrefixes).toEqual([]);
  });

  test("the acknowledgement is true or false", () => {
    expect(settingsProblems({ API_ALLOWED_INTERNET_WIDE: "yes" })).toEqual(["API_ALLOWED_INTERNET_WIDE=yes is not valid: must be one of true, false"]);
  });
});

describe("Flatcar channel and Kubernetes release must agree on containerd", () => {
  test("FLATCAR_CHANNEL=lts with Kubernetes 1.36 is refused, naming both settings and the reason", () => {
    expect(settingsProblems({ FLATCAR_CHANNEL: "lts" })).toEqual([
      "FLATCAR_CHANNEL=lts is not valid with KUBERNETES_VERSION=1.36.3: Flatcar lts ships containerd 1.x, and Kubernetes 1.35 was the last release to support it; use FLATCAR_CHANNEL=stable, beta or alpha (containerd 2)",
    ]);
  });
  test.each(["stable", "beta", "alpha"])("FLATCAR_CHANNEL=%s (containerd 2) is fine with 1.36", (channel) => {
    expect(settingsProblems({ FLATCAR_CHANNEL: channel })).toEqual([]);
  });
});

const POOL = "pool/main/t/tayga/tayga_0.9.2-8_amd64.deb";

test("NAT64_TAYGA_PACKAGE_URL: any https URL of the pinned file name, in WHATWG form; the default is a placeholder", () => {
  expect(loadSettings({}).taygaPackageUrl).toBe(`https://debian-mirror.example/debian/${POOL}`);
  expect(loadSettings({ NAT64_TAYGA_PACKAGE_URL: `https://mirror.corp.internal/debian/${POOL}` }).taygaPackageUrl).toBe(`https://mirror.corp.internal/debian/${POOL}`);
  // Upper-case scheme and host are the same URL; the plan-time check reads the lower-case form.
  expect(loadSettings({ NAT64_TAYGA_PACKAGE_URL: `HTTPS://Mirror.Corp.Internal:8443/${POOL}` }).taygaPackageUrl).toBe(`https://mirror.corp.internal:8443/${POOL}`);
  // A signed URL (an object store's) keeps its query; an IPv6 literal host is fine.
  expect(loadSettings({ NAT64_TAYGA_PACKAGE_URL: "https://[2001:db8::80]/tayga_0.9.2-8_amd64.deb?X-Sig=ab%2Fcd&e=1" }).taygaPackageUrl).toBe("https://[2001:db8::80]/tayga_0.9.2-8_amd64.deb?X-Sig=ab%2Fcd&e=1");
});

test("NAT64 and DNS64 are on by default, with today's IPv6 resolvers", () => {
  const s = loadSettings({});
  expect(s.nat64Enabled).toBe(true);
  expect(s.dnsUpstreamResolvers).toEqual(["2001:4860:4860::8888", "2606:4700:4700::1111", "2001:4860:4860::8844"]);
  expect(loadSettings({ NAT64_ENABLED: "false" }).nat64Enabled).toBe(false);
  // Written in any valid form, used in the canonical one (RFC 5952).
  expect(loadSettings({ DNS_UPSTREAM_RESOLVERS: " 2001:DB8:0:0::53 , 2001:db8:1::53" }).dnsUpstreamResolvers).toEqual(["2001:db8::53", "2001:db8:1::53"]);
});

test.each([
  [{ NAT64_ENABLED: "yes" }, "NAT64_ENABLED=yes is not valid: must be one of true, false (false turns NAT64 and DNS64 off"],
  [{ DNS_UPSTREAM_RESOLVERS: "8.8.8.8" }, "DNS_UPSTREAM_RESOLVERS=8.8.8.8 is not valid: 8.8.8.8 is not an IPv6 address (IPv4 resolvers are unreachable from IPv6-only pods)"],
  [{ DNS_UPSTREAM_RESOLVERS: "64:ff9b::808:808" }, "DNS_UPSTREAM_RESOLVERS=64:ff9b::808:808 is not valid: 64:ff9b::808:808 is a NAT64 address"],
  [{ DNS_UPSTREAM_RESOLVERS: "fe80::1" }, "DNS_UPSTREAM_RESOLVERS=fe80::1 is not valid: fe80::1 is not a global unicast address (2000::/3)"],
  [{ DNS_UPSTREAM_RESOLVERS: "2001:db8::/64" }, "DNS_UPSTREAM_RESOLVERS=2001:db8::/64 is not valid: 2001:db8::/64 is not an IPv6 address"],
  [{ DNS_UPSTREAM_RESOLVERS: "2001:db8::1,2001:db8::2,2001:db8::3,2001:db8::4" }, "is not valid: give 1 to 3 addresses (resolv.conf uses at most 3)"],
  [{ DNS_UPSTREAM_RESOLVERS: "," }, "DNS_UPSTREAM_RESOLVERS=, is not valid: give 1 to 3 addresses"],
  [{ DNS_UPSTREAM_RESOLVERS: "" }, "DNS_UPSTREAM_RESOLVERS= is not valid: the variable is set but empty"],
  [{ NAT64_TAYGA_PACKAGE_URL: "" }, "NAT64_TAYGA_PACKAGE_URL= is not valid: the variable is set but empty; set a value, or unset it to use the default https://debian-mirror.example/"],
  [{ NAT64_TAYGA_PACKAGE_URL: `http://mirror.corp.internal/debian/${POOL}` }, `NAT64_TAYGA_PACKAGE_URL=http://mirror.corp.internal/debian/${POOL} is not valid: http is not https; give the https URL of Debian's tayga_0.9.2-8_amd64.deb on a mirror you trust, e.g. https://<mirror>/debian/${POOL}`],
  [{ NAT64_TAYGA_PACKAGE_URL: "mirror.corp.internal/debian" }, "NAT64_TAYGA_PACKAGE_URL=mirror.corp.internal/debian is not valid: it is not a URL; give the https URL of Debian's tayga_0.9.2-8_amd64.deb"],
  [{ NAT64_TAYGA_PACKAGE_URL: "https://mirror.corp.internal/debian/" }, 'NAT64_TAYGA_PACKAGE_URL=https://mirror.corp.internal/debian/ is not valid: its path ends with "", not Debian\'s file name of the pinned package, tayga_0.9.2-8_amd64.deb (lib/versions.ts; Ignition accepts only that file)'],
  [{ NAT64_TAYGA_PACKAGE_URL: "https://mirror.corp.internal/debian/pool/main/t/tayga/tayga_0.9.3-1_amd64.deb" }, 'its path ends with "tayga_0.9.3-1_amd64.deb", not Debian\'s file name of the pinned package, tayga_0.9.2-8_amd64.deb'],
  [{ NAT64_TAYGA_PACKAGE_URL: `https://me:secret@mirror.corp.internal/debian/${POOL}` }, "is not valid: it holds a user name or password, which would be readable on every node (user data is served by Metal's metadata service)"],
  [{ NAT64_TAYGA_PACKAGE_URL: `https://mirror.corp.internal/\${x}/${POOL}` }, "is not valid: a URL holds only the characters of RFC 3986 (no spaces, double quotes, $, {, } or backslashes; percent-encode them)"],
  [{ NAT64_TAYGA_PACKAGE_URL: `https://mirror.corp.internal/my debian/${POOL}` }, "is not valid: a URL holds only the characters of RFC 3986"],
])("%j is rejected", (env, message) => {
  const problems = settingsProblems(env);
  expect(problems).toHaveLength(1);
  expect(problems[0]).toContain(message);
});
