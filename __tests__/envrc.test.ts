/**
 * direnv: .envrc loads the git-ignored .envrc.local, and .envrc.local.example lists
 * every variable an operator may set. Runs the real direnv (Debian package `direnv`,
 * installed by .ci/run) and skips those checks loudly without it.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { SETTINGS, loadSettings } from "../lib/settings";
import { CREDENTIALS, allFeaturesEnv, renderEnvrcLocalExample, stackVariables } from "../scripts/envrc-example";
import { synthesize } from "./support/synth";

const root = path.resolve(__dirname, "..");
const envrc = fs.readFileSync(path.join(root, ".envrc"), "utf8");
const example = fs.readFileSync(path.join(root, ".envrc.local.example"), "utf8");

/** `# export NAME=value` / `export NAME=value` lines of the example: name -> value as written. */
function exampleEntries(text: string): Map<string, string> {
  const entries = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /^#? ?export ([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (m) entries.set(m[1], m[2]);
  }
  return entries;
}

const direnvPath = spawnSync("sh", ["-c", "command -v direnv"], { encoding: "utf8" }).stdout.trim();
const describeWithDirenv = direnvPath ? describe : describe.skip;
if (!direnvPath) console.warn("SKIPPED direnv checks: `direnv` is not installed (apt-get install direnv; .ci/run installs it)");

/** Runs `env` inside `dir` through direnv, as an operator's shell would see it. */
function envThroughDirenv(dir: string): Record<string, string> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "direnv-home-"));
  const env = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: home,
    XDG_CONFIG_HOME: path.join(home, "config"),
    XDG_DATA_HOME: path.join(home, "data"),
    XDG_CACHE_HOME: path.join(home, "cache"),
  };
  const allow = spawnSync(direnvPath, ["allow", dir], { env, encoding: "utf8" });
  const result = spawnSync(direnvPath, ["exec", dir, "env", "-0"], { env, cwd: dir, encoding: "utf8" });
  fs.rmSync(home, { recursive: true, force: true });
  expect(allow.status).toBe(0);
  if (result.status !== 0) throw new Error(`direnv exec failed: ${result.stderr}`);
  return Object.fromEntries(
    result.stdout
      .split("\0")
      .filter((kv) => kv.includes("="))
      .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
  );
}

const checkouts: string[] = [];
afterAll(() => checkouts.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })));

function checkoutWith(local: string | undefined): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "envrc-test-"));
  checkouts.push(dir);
  fs.copyFileSync(path.join(root, ".envrc"), path.join(dir, ".envrc"));
  if (local !== undefined) fs.writeFileSync(path.join(dir, ".envrc.local"), local);
  return dir;
}

test(".envrc loads .envrc.local with direnv's own loader, and sets no secret or setting itself", () => {
  const code = envrc.split("\n").filter((l) => l.trim() !== "" && !l.trim().startsWith("#"));
  expect(code).toContainEqual(expect.stringMatching(/^(source_env_if_exists|dotenv_if_exists) \.envrc\.local\s*$/));
  const exported = code.flatMap((l) => /^export ([A-Z_][A-Z0-9_]*)=/.exec(l)?.[1] ?? []);
  for (const name of exported) {
    expect(SETTINGS.map((s) => s.name)).not.toContain(name);
    expect(name).not.toMatch(/TOKEN|PASSWORD|SECRET|^TF_VAR_/);
  }
});

describeWithDirenv("with the real direnv", () => {
  test("a checkout with .envrc.local gets its variables and the .envrc defaults", () => {
    const dir = checkoutWith("export WORKER_COUNT=7\nexport METAL_AUTH_TOKEN=test-not-a-token\n");
    const env = envThroughDirenv(dir);
    expect(env.WORKER_COUNT).toBe("7");
    expect(env.METAL_AUTH_TOKEN).toBe("test-not-a-token");
    expect(env.CHECKPOINT_DISABLE).toBe("1");
    expect(env.PATH.split(":")).toContain(path.join(fs.realpathSync(dir), "node_modules", ".bin"));
  });

  test("a checkout without .envrc.local loads cleanly", () => {
    const env = envThroughDirenv(checkoutWith(undefined));
    expect(env.CHECKPOINT_DISABLE).toBe("1");
    expect(env.WORKER_COUNT).toBeUndefined();
  });

  test("the example, copied to .envrc.local and fully uncommented, exports every setting with a value synth accepts", () => {
    const uncommented = example.replace(/^# export /gm, "export ");
    const env = envThroughDirenv(checkoutWith(uncommented));
    for (const s of SETTINGS) expect([s.name, env[s.name]]).toEqual([s.name, s.default]);
    for (const c of CREDENTIALS) expect(env).toHaveProperty(c.name);
    expect(() => loadSettings(env)).not.toThrow();
  });
});

describe(".envrc.local.example", () => {
  const entries = exampleEntries(example);

  test("lists every setting of lib/settings.ts with its default and a description line", () => {
    for (const s of SETTINGS) {
      expect([...entries.keys()]).toContain(s.name);
      const value = entries.get(s.name)!;
      expect(value === s.default || value === `'${s.default}'`).toBe(true);
      const lines = example.split("\n");
      const at = lines.findIndex((l) => l.startsWith(`# export ${s.name}=`));
      expect(lines[at - 1]).toMatch(/^# \S/);
    }
  });

  test("lists METAL_AUTH_TOKEN and every Terraform variable of the stacks as TF_VAR_<name>", () => {
    expect([...entries.keys()]).toContain("METAL_AUTH_TOKEN");
    for (const env of [{}, { CONTROL_PLANE_COUNT: "3", WORKER_COUNT: "5" }, allFeaturesEnv()]) {
      const synth = synthesize(env);
      for (const name of Object.values(synth.stacks).flatMap((s) => Object.keys(s.variable ?? {}))) {
        expect([...entries.keys()]).toContain(`TF_VAR_${name}`);
      }
    }
  });

  test("no value in it is a secret: every credential and Terraform variable is empty", () => {
    for (const [name, value] of entries) {
      if (name.startsWith("TF_VAR_") || CREDENTIALS.some((c) => c.name === name)) expect([name, value]).toEqual([name, "''"]);
    }
  });

  test("is what `npm run envrc-example` generates (regenerate it when settings or variables change)", () => {
    expect(example).toBe(renderEnvrcLocalExample(stackVariables()));
  });

  test("lists every variable the README and docs/operations.md document, unless .envrc sets it", () => {
    // Names in backticks that look like environment variables, as the docs write them
    // (`NAME`, `NAME=value`). Excluded: what the nodes read from Metal's metadata
    // (afterburn's COREOS_ variables) and what GitHub Actions sets.
    const documented = new Set<string>();
    for (const file of ["README.md", "docs/operations.md"]) {
      const p = path.join(root, file);
      if (!fs.existsSync(p)) continue;
      for (const m of fs.readFileSync(p, "utf8").matchAll(/`([A-Z][A-Z0-9]*(?:_[A-Za-z0-9]+)+)(?:=[^`]*)?`/g)) documented.add(m[1]);
    }
    // afterburn's attributes, CI's own, and Go's standard variables the rehearsal sets for its own Terraform.
    const notOperatorVariables = /^(COREOS_|GITHUB_|RUNNER_)|^(HTTPS_PROXY|SSL_CERT_FILE)$/;
    // The committed .envrc sets some for everyone (CHECKPOINT_DISABLE): those need no line in the example.
    const setByEnvrc = new Set([...fs.readFileSync(path.join(root, ".envrc"), "utf8").matchAll(/^export ([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]));
    const missing = [...documented].filter((n) => !notOperatorVariables.test(n) && !entries.has(n) && !setByEnvrc.has(n) && !/^TF_VAR_<|_$/.test(n));
    expect(missing).toEqual([]);
    expect(documented.size).toBeGreaterThan(5);
  });
});

test(".gitignore keeps secrets, state, plans and generated output out of git", () => {
  const paths = [".envrc.local", "cdktf.out/stacks/x/cdk.tf.json", ".gen/providers/metal/index.ts", "terraform.v6fabric.tfstate", "terraform.v6fabric.tfstate.backup", "x.tfplan", "plan.tfplan", "secrets.auto.tfvars"];
  const result = spawnSync("git", ["check-ignore", "--no-index", ...paths], { cwd: root, encoding: "utf8" });
  expect(result.stdout.trim().split("\n").sort()).toEqual([...paths].sort());
  const committed = spawnSync("git", ["check-ignore", "--no-index", ".envrc", ".envrc.local.example"], { cwd: root, encoding: "utf8" });
  expect(committed.stdout.trim()).toBe("");
});
