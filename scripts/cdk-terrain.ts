/**
 * The app on CDK Terrain, cdktf's maintained fork (README "cdktf's status and CDK
 * Terrain"): the app's package.json with the README's switch applied, installed once
 * into a cache outside the repository keyed by what it is made from, and a synth of the
 * app's sources on it. __tests__/cdk-terrain.test.ts compares that synth with cdktf's.
 *
 *   npm run cdk-terrain     install when missing (prints the install time), else say cached
 */
import { spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { toolsCacheDir } from "../rehearsal/tools";
import { seconds } from "../rehearsal/format";

/** cdktn, cdktn-cli and @cdktn/provider-generator release together. */
export const CDK_TERRAIN_VERSION = "0.24.0";
/**
 * cdktn 0.24 wants constructs >=10.6.0 <10.8.0; @cdktn/provider-generator pins 10.6.0,
 * so the app takes that one and a single copy is installed.
 */
export const CDK_TERRAIN_CONSTRUCTS = "10.6.0";

/** cdktn-cli 0.24.0's engines.node: its bundled HTTP client calls Node 22 APIs. */
export const CDK_TERRAIN_CLI_NODE = ">=22.19.0";

const root = path.resolve(__dirname, "..");

type PackageJson = {
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  overrides?: Record<string, unknown>;
  [key: string]: unknown;
};

/**
 * The README's switch, as package.json changes: the fork installed under the name
 * `cdktf` (so no import changes), its generator and CLI in place of cdktf's, and the
 * CLI's name in the scripts. The prebuilt @cdktf/provider-* bindings (tls, kubernetes,
 * null) stay: there is no CDK Terrain build of them, and their code only calls
 * `require("cdktf")`, which is now the fork; an override per package lets its peer
 * range (cdktf ^0.21.0) accept the aliased fork. jsii and
 * jsii-pacmak go: cdktf's generator needed them beside it, CDK Terrain's generator has
 * them as its own dependencies, and cdktn-cli wants jsii ~5.9 (npm installs it as a peer).
 * cdktn-cli needs Node 22.19 (its engines field); the library itself runs on Node 20.
 */
/** The prebuilt provider bindings among the dependencies, in package.json's order. */
function prebuiltBindings(pkg: PackageJson): string[] {
  return Object.keys(pkg.dependencies).filter((name) => name.startsWith("@cdktf/provider-"));
}

export function switchToCdkTerrain(pkg: PackageJson): PackageJson {
  const { "@cdktf/provider-generator": _generator, "cdktf-cli": _cli, jsii: _jsii, "jsii-pacmak": _pacmak, ...devDependencies } = pkg.devDependencies;
  if (!_generator || !_cli) throw new Error("package.json: expected @cdktf/provider-generator and cdktf-cli in devDependencies");
  const scripts = Object.fromEntries(Object.entries(pkg.scripts).map(([name, command]) => [name, command.replace(/\bcdktf (diff|deploy|destroy)\b/g, "cdktn $1")]));
  return {
    ...pkg,
    engines: { ...(pkg.engines as object), node: CDK_TERRAIN_CLI_NODE },
    scripts,
    dependencies: { ...pkg.dependencies, cdktf: `npm:cdktn@${CDK_TERRAIN_VERSION}`, constructs: CDK_TERRAIN_CONSTRUCTS },
    devDependencies: { ...devDependencies, "@cdktn/provider-generator": CDK_TERRAIN_VERSION, "cdktn-cli": CDK_TERRAIN_VERSION },
    overrides: { ...pkg.overrides, ...Object.fromEntries(prebuiltBindings(pkg).map((name) => [name, { cdktf: "$cdktf" }])) },
  };
}

/** What the install is made from besides package.json: the bindings' generator input. */
const INSTALL_FILES = ["cdktf.json", "scripts/generate-metal-bindings.js", "providers/equinix-metal-3.3.0.schema.json", "providers/poseidon-matchbox-0.5.4.schema.json"];
/** The app's sources a synth needs. */
const APP_FOLDERS = ["lib", "constructs", "ignition"];
const APP_FILES = ["main.ts", "cdktf.json", "tsconfig.json", "scripts/synth-variants.ts"];
const STAMP = ".installed";

export interface CdkTerrainInstall {
  /** Holds package.json, node_modules and .gen/ (the metal bindings from CDK Terrain's generator). */
  readonly dir: string;
  /** Set when this call installed it: the cold install time in ms. */
  readonly installedInMs?: number;
}

/** The install's folder: the versions in its name, a digest of everything it is made from. */
export function cdkTerrainDir(env: NodeJS.ProcessEnv = process.env): string {
  const pkg = switchToCdkTerrain(JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")));
  // What npm installs and what postinstall runs; other scripts do not change the install.
  const installed = { dependencies: pkg.dependencies, devDependencies: pkg.devDependencies, overrides: pkg.overrides, postinstall: pkg.scripts.postinstall };
  const digest = crypto.createHash("sha256").update(JSON.stringify(installed));
  for (const file of INSTALL_FILES) digest.update(`\n${file}\n`).update(fs.readFileSync(path.join(root, file)));
  return path.join(toolsCacheDir(env), `cdk-terrain-${CDK_TERRAIN_VERSION}-constructs-${CDK_TERRAIN_CONSTRUCTS}-${digest.digest("hex").slice(0, 12)}`);
}

function run(command: string, args: readonly string[], cwd: string, timeoutMs: number): { ok: boolean; output: string } {
  // An existing CLI config keeps generate-metal-bindings.js from writing one into the temp folder.
  const tfConfig = process.env.TF_CLI_CONFIG_FILE && fs.existsSync(process.env.TF_CLI_CONFIG_FILE) ? process.env.TF_CLI_CONFIG_FILE : "/dev/null";
  const env = { ...process.env, CHECKPOINT_DISABLE: "1", TF_CLI_CONFIG_FILE: tfConfig };
  const result = spawnSync(command, args, { cwd, encoding: "utf8", timeout: timeoutMs, env, maxBuffer: 64 * 1024 * 1024 });
  const output = `${result.stdout ?? ""}${result.stderr ?? ""}${result.error ? `\n${result.error.message}` : ""}`.trim();
  return { ok: result.status === 0, output };
}

function lastLines(text: string, n = 20): string {
  return text.split("\n").slice(-n).join("\n");
}

/** Whether the install is cached (then no registry is needed). */
export function isCdkTerrainInstalled(): boolean {
  return fs.existsSync(path.join(cdkTerrainDir(), STAMP));
}

/** Why the npm registry cannot serve the install, or undefined when it can. */
export function registryProblem(): string | undefined {
  const probe = run("npm", ["view", `cdktn@${CDK_TERRAIN_VERSION}`, "version"], root, 60_000);
  if (probe.ok && probe.output.trim() === CDK_TERRAIN_VERSION) return undefined;
  return `the npm registry did not answer \`npm view cdktn@${CDK_TERRAIN_VERSION} version\`: ${lastLines(probe.output, 3).replace(/\s*\n\s*/g, " ") || "no output"}`;
}

/**
 * The cached install, made when missing: `npm install` of the switched package.json
 * beside the files the metal bindings are generated from (its postinstall generates
 * them, as in a clone). Made in a sibling folder and renamed, so an interrupted install
 * is never taken for a finished one.
 */
export function prepareCdkTerrain(): CdkTerrainInstall {
  const dir = cdkTerrainDir();
  if (fs.existsSync(path.join(dir, STAMP))) return { dir };
  const started = Date.now();
  const partial = `${dir}.partial-${process.pid}`;
  fs.rmSync(partial, { recursive: true, force: true });
  try {
    fs.mkdirSync(partial, { recursive: true });
    const pkg = switchToCdkTerrain(JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")));
    fs.writeFileSync(path.join(partial, "package.json"), `${JSON.stringify(pkg, null, 2)}\n`);
    for (const file of INSTALL_FILES) {
      fs.mkdirSync(path.dirname(path.join(partial, file)), { recursive: true });
      fs.copyFileSync(path.join(root, file), path.join(partial, file));
    }
    const install = run("npm", ["install", "--no-audit", "--no-fund"], partial, 15 * 60_000);
    if (!install.ok) throw new Error(`npm install of CDK Terrain ${CDK_TERRAIN_VERSION} failed:\n${lastLines(install.output)}`);
    if (!fs.existsSync(path.join(partial, ".gen", "providers", "metal", "index.ts"))) throw new Error(`npm install ran, but its postinstall wrote no metal bindings:\n${lastLines(install.output)}`);
    const installedInMs = Date.now() - started;
    fs.writeFileSync(path.join(partial, STAMP), `installed in ${seconds(installedInMs)} on ${new Date().toISOString()}\n`);
    // Another run may have finished the same install meanwhile: keep its folder, in use.
    if (!fs.existsSync(path.join(dir, STAMP))) {
      fs.rmSync(dir, { recursive: true, force: true });
      fs.renameSync(partial, dir);
    }
    return { dir, installedInMs };
  } finally {
    fs.rmSync(partial, { recursive: true, force: true });
  }
}

/** Library name and version that a synth ran on (scripts/synth-variants.ts). */
export interface SynthLibrary {
  readonly name: string;
  readonly version: string;
}

/**
 * Runs scripts/synth-variants.ts in `appDir` with `nodeModules` into `outdir`, in a child
 * process (each library is loaded into its own process).
 */
function synthVariants(appDir: string, nodeModules: string, outdir: string, variants: Record<string, Record<string, string>>): SynthLibrary {
  const tsNode = path.join(nodeModules, "ts-node", "register", "transpile-only");
  const result = run(process.execPath, ["-r", tsNode, path.join("scripts", "synth-variants.ts"), outdir, JSON.stringify(variants)], appDir, 10 * 60_000);
  if (!result.ok) throw new Error(`synth in ${appDir} failed:\n${lastLines(result.output, 30)}`);
  return JSON.parse(fs.readFileSync(path.join(outdir, "library.json"), "utf8")) as SynthLibrary;
}

/** The app as the repository has it, on cdktf. */
export function synthOnCdktf(outdir: string, variants: Record<string, Record<string, string>>): SynthLibrary {
  return synthVariants(root, path.join(root, "node_modules"), outdir, variants);
}

/**
 * The app's current sources on the install: copied into `workDir` (a fresh folder the
 * caller removes) with the install's package.json, beside links to its node_modules and
 * .gen, as a switched clone would be.
 */
export function synthOnCdkTerrain(install: CdkTerrainInstall, workDir: string, outdir: string, variants: Record<string, Record<string, string>>): SynthLibrary {
  for (const folder of APP_FOLDERS) fs.cpSync(path.join(root, folder), path.join(workDir, folder), { recursive: true });
  for (const file of [...APP_FILES, "package.json"]) {
    fs.mkdirSync(path.dirname(path.join(workDir, file)), { recursive: true });
    fs.copyFileSync(path.join(file === "package.json" ? install.dir : root, file), path.join(workDir, file));
  }
  for (const link of ["node_modules", ".gen"]) fs.symlinkSync(path.join(install.dir, link), path.join(workDir, link));
  return synthVariants(workDir, path.join(install.dir, "node_modules"), outdir, variants);
}

/** `npm run synth` in the `workDir` that synthOnCdkTerrain made, into `outdir` (CDKTF_OUTDIR, which the fork reads too). */
export function npmRunSynthOnCdkTerrain(workDir: string, outdir: string): void {
  const result = spawnSync("npm", ["run", "--silent", "synth"], { cwd: workDir, encoding: "utf8", timeout: 5 * 60_000, env: { ...process.env, CDKTF_OUTDIR: outdir } });
  if (result.status !== 0) throw new Error(`npm run synth on CDK Terrain failed:\n${lastLines(`${result.stdout}${result.stderr}`, 30)}`);
}

if (require.main === module) {
  if (!isCdkTerrainInstalled()) {
    const problem = registryProblem();
    if (problem) {
      console.error(`cdk-terrain: cannot install: ${problem}`);
      process.exit(1);
    }
  }
  try {
    const install = prepareCdkTerrain();
    const how = install.installedInMs === undefined ? "cached" : `installed in ${seconds(install.installedInMs)} (cold)`;
    console.log(`cdk-terrain: CDK Terrain ${CDK_TERRAIN_VERSION} ${how} in ${install.dir}`);
  } catch (err) {
    console.error(`cdk-terrain: ${(err as Error).message}`);
    process.exit(1);
  }
}
