/**
 * Variables that look like misspelled settings stop synth with "did you mean", and the
 * variables of other tools that share a shell with the settings never do.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { NOT_SETTINGS, SETTINGS, SETTING_PREFIXES, SettingsError, findMisspelledSettings, loadSettings } from "../lib/settings";
import { settingsProblems } from "./support/settings";

const TAIL = "Rename or unset the variable; if another tool reads it, add it to NOT_SETTINGS in lib/settings.ts.";

describe("a variable close to a setting's name", () => {
  test.each([
    ["WORKERS_COUNT", "WORKER_COUNT"],
    ["METAL_METR0", "METAL_METRO"],
    ["worker_count", "WORKER_COUNT"],
    ["TF_CLOUD_ORGANISATION", "TF_CLOUD_ORGANIZATION"],
    ["KUBERNETES_VERISON", "KUBERNETES_VERSION"],
    ["CONTROL_PLANES_COUNT", "CONTROL_PLANE_COUNT"],
    ["API_ALLOWED_PREFIX", "API_ALLOWED_PREFIXES"],
    ["NODE_PLANS", "NODE_PLAN"],
  ])("%s=5 stops synth: did you mean %s?", (name, meant) => {
    expect(settingsProblems({ [name]: "5" })).toEqual([`${name} is not a setting: did you mean ${meant}? ${TAIL}`]);
  });

  test("WORKERS_COUNT=5, the message in full", () => {
    expect(settingsProblems({ WORKERS_COUNT: "5" })).toEqual([
      "WORKERS_COUNT is not a setting: did you mean WORKER_COUNT? Rename or unset the variable; if another tool reads it, add it to NOT_SETTINGS in lib/settings.ts.",
    ]);
  });
});

describe("an unknown variable with a setting's prefix", () => {
  test.each([
    [
      "CLUSTER_IPV6_PREFIX",
      "CLUSTER_IPV6_PREFIX is not a setting, though it starts like the CLUSTER_ settings (CLUSTER_NAME, CLUSTER_IPV6_BLOCK, CLUSTER_DOMAIN): did you mean CLUSTER_IPV6_BLOCK?",
    ],
    ["TF_CLOUD_ORG", "TF_CLOUD_ORG is not a setting, though it starts like the TF_CLOUD_ settings (TF_CLOUD_ORGANIZATION, TF_CLOUD_HOSTNAME): did you mean TF_CLOUD_ORGANIZATION?"],
    [
      "METAL_ASN",
      "METAL_ASN is not a setting, though it starts like the METAL_ settings (METAL_PROJECT_ID, METAL_METRO, METAL_BILLING_CYCLE, METAL_BGP_ASN, METAL_BGP_MD5_ENABLED, METAL_MANAGE_PROJECT_BGP, METAL_PROJECT_SSH_KEY_IDS): did you mean METAL_BGP_ASN?",
    ],
    ["FLATCAR_VERSION", "FLATCAR_VERSION is not a setting, though it starts like the FLATCAR_ settings (FLATCAR_CHANNEL): did you mean FLATCAR_CHANNEL?"],
    ["WORKER_PLAN", "WORKER_PLAN is not a setting, though it starts like the WORKER_ settings (WORKER_COUNT): did you mean WORKER_COUNT?"],
  ])("%s stops synth", (name, message) => {
    expect(settingsProblems({ [name]: "x" })).toEqual([`${message} ${TAIL}`]);
  });

  test("a misspelled METAL_AUTH_TOKEN is named with the right name, and its value never shows", () => {
    const secret = "sekrit-0123456789abcdef";
    const problems = settingsProblems({ METAL_AUTH_TOKEM: secret });
    expect(problems).toEqual([expect.stringContaining("METAL_AUTH_TOKEM is not a setting, though it starts like the METAL_ settings")]);
    expect(problems[0]).toContain("did you mean METAL_AUTH_TOKEN?");
    expect(problems[0]).not.toContain(secret);
  });
});

test("values of unknown variables never appear in a message, whatever else is wrong", () => {
  const secrets = { METAL_AUTH_TOKN: "secret-a-1f2e3d", WORKERS_COUNT: "secret-b-4c5b6a", METAL_API_KEY: "secret-c-7d8e9f", tf_workspace_prefix: "secret-d-0a1b2c" };
  let thrown: unknown;
  try {
    loadSettings({ ...secrets, WORKER_COUNT: "abc" });
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(SettingsError);
  const error = thrown as SettingsError;
  expect(error.problems).toHaveLength(5);
  expect(error.problems).toContain("WORKER_COUNT=abc is not valid: must be a whole number from 0 to 100");
  for (const name of Object.keys(secrets)) expect(error.message).toContain(`${name} is not a setting`);
  for (const value of Object.values(secrets)) expect(error.message).not.toContain(value);
});

test("typos are reported together with bad values, all at once", () => {
  expect(settingsProblems({ WORKERS_COUNT: "5", METAL_METR0: "am", CONTROL_PLANE_COUNT: "abc", CLUSTER_IPV6_BLOCK: "" })).toEqual([
    `METAL_METR0 is not a setting: did you mean METAL_METRO? ${TAIL}`,
    `WORKERS_COUNT is not a setting: did you mean WORKER_COUNT? ${TAIL}`,
    "CLUSTER_IPV6_BLOCK= is not valid: the variable is set but empty; set a value, or unset it to use the default 2001:db8:0:ab00::/56",
    "CONTROL_PLANE_COUNT=abc is not valid: must be a whole number: 1, 3 or 5 (etcd needs an odd number of members)",
  ]);
});

describe("other tools' variables never trip the check", () => {
  // What a developer's shell, direnv, npm, cdktf, Terraform, a CI runner or a pod holds.
  const shell: Record<string, string> = {
    METAL_AUTH_TOKEN: "secret",
    METAL_ORGANIZATION_ID: "x",
    METAL_CONFIG: "x",
    PACKET_AUTH_TOKEN: "secret",
    TF_VAR_x: "1",
    TF_VAR_metal_bgp_md5_password: "secret",
    TF_VAR_kubeadm_bootstrap_token: "secret",
    TF_TOKEN_app_terraform_io: "secret",
    TF_TOKEN_tfe_example_com: "secret",
    TF_CLI_CONFIG_FILE: "/dev/null",
    TF_CLI_ARGS: "-no-color",
    TF_CLI_ARGS_plan: "-parallelism=2",
    TF_LOG: "debug",
    TF_LOG_PATH: "/tmp/tf.log",
    TF_LOG_PROVIDER: "trace",
    TF_IN_AUTOMATION: "1",
    TF_INPUT: "0",
    TF_DATA_DIR: ".terraform",
    TF_WORKSPACE: "default",
    TF_CLOUD_PROJECT: "fabric",
    TF_PLUGIN_CACHE_DIR: "/tmp/plugins",
    TF_REGISTRY_CLIENT_TIMEOUT: "15",
    TF_STATE_PERSIST_INTERVAL: "30",
    CDKTF_LOG_LEVEL: "debug",
    CDKTF_OUTDIR: "cdktf.out",
    CDKTF_CONTEXT_JSON: "{}",
    CDKTF_DISABLE_PLUGIN_CACHE_ENV: "1",
    JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION: "1",
    CHECKPOINT_DISABLE: "1",
    KUBECONFIG: "/home/me/.kube/config",
    KUBERNETES_SERVICE_HOST: "10.96.0.1",
    KUBERNETES_SERVICE_PORT: "443",
    KUBERNETES_SERVICE_PORT_HTTPS: "443",
    KUBERNETES_PORT: "tcp://10.96.0.1:443",
    KUBERNETES_PORT_443_TCP_ADDR: "10.96.0.1",
    PATH: "/usr/bin:/bin",
    HOME: "/home/me",
    USER: "me",
    SHELL: "/bin/bash",
    PWD: "/work",
    LANG: "C.UTF-8",
    TERM: "xterm",
    NODE_OPTIONS: "--max-old-space-size=4096",
    NODE_PATH: "/usr/lib/node_modules",
    NODE_ENV: "production",
    NODE_VERSION: "20.19.0",
    NODE_EXTRA_CA_CERTS: "/etc/ssl/ca.pem",
    YARN_VERSION: "1.22.22",
    npm_config_cache: "/home/me/.npm",
    npm_lifecycle_event: "synth",
    npm_package_name: "ipv6-metal-fabric",
    INIT_CWD: "/work",
    CI: "true",
    GITHUB_ACTIONS: "true",
    GITHUB_WORKSPACE: "/work",
    RUNNER_TEMP: "/tmp",
    DIRENV_DIR: "-/work",
    XDG_CONFIG_HOME: "/home/me/.config",
    HTTP_PROXY: "http://proxy:3128",
    NO_PROXY: "localhost",
    SSH_AUTH_SOCK: "/tmp/ssh-agent",
    JEST_WORKER_ID: "1",
    NODE_NAME: "jenkins-agent-1",
  };

  test.each(Object.keys(shell))("%s", (name) => {
    expect(findMisspelledSettings({ [name]: shell[name] })).toEqual([]);
  });

  test("all of them together, next to real settings", () => {
    expect(settingsProblems({ ...shell, WORKER_COUNT: "3", TF_CLOUD_ORGANIZATION: "acme" })).toEqual([]);
  });
});

describe("the lists behind the check", () => {
  test("every setting but NODE_PLAN and NODE_TARGET starts with a setting prefix, and every prefix starts a setting", () => {
    const names = SETTINGS.map((s) => s.name);
    expect(names.filter((n) => !SETTING_PREFIXES.some((p) => n.startsWith(p)))).toEqual(["NODE_PLAN", "NODE_TARGET"]);
    for (const prefix of SETTING_PREFIXES) expect([prefix, names.some((n) => n.startsWith(prefix))]).toEqual([prefix, true]);
  });

  test("NOT_SETTINGS names no setting and says who reads each entry", () => {
    for (const entry of NOT_SETTINGS) {
      const pattern = entry.name.endsWith("*") ? entry.name.slice(0, -1) : undefined;
      for (const s of SETTINGS) expect([entry.name, pattern ? s.name.startsWith(pattern) : s.name === entry.name]).toEqual([entry.name, false]);
      expect(entry.readBy).not.toBe("");
    }
  });

  test("a setting is never taken for a typo of another", () => {
    expect(findMisspelledSettings(Object.fromEntries(SETTINGS.map((s) => [s.name, s.default])))).toEqual([]);
  });
});

test("main.ts stops on a typo in the real environment, without the value of any variable", () => {
  const outdir = path.join(os.tmpdir(), `settings-typos-test-${process.pid}`);
  const result = spawnSync(process.execPath, [require.resolve("ts-node/dist/bin.js"), "--transpile-only", "main.ts"], {
    cwd: path.resolve(__dirname, ".."),
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", CDKTF_OUTDIR: outdir, WORKERS_COUNT: "5", METAL_AUTH_TOKEN: "not-a-real-token-5f4e3d", TF_VAR_x: "1" },
    encoding: "utf8",
    timeout: 120_000,
  });
  fs.rmSync(outdir, { recursive: true, force: true });
  expect(result.status).toBe(1);
  expect(result.stderr).toContain(`WORKERS_COUNT is not a setting: did you mean WORKER_COUNT? ${TAIL}`);
  expect(result.stderr).not.toContain("METAL_AUTH_TOKEN");
  expect(result.stderr + result.stdout).not.toContain("not-a-real-token-5f4e3d");
  expect(result.stderr).not.toMatch(/^\s+at /m);
});
