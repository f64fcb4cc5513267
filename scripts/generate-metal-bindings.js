#!/usr/bin/env node
// Generates the equinix/metal 3.3.0 and poseidon/matchbox 0.5.4 cdktf bindings into
// .gen/providers/metal and .gen/providers/matchbox, the paths `cdktf get` would use,
// from the provider schemas kept in providers/.
//
// Why not `cdktf get`: it needs the terraform CLI to download the providers from the
// registry, and no prebuilt @cdktf/provider-metal or -matchbox package exists. Each
// schema file is what `terraform providers schema -json` prints (the matchbox one from
// the provider built by `npm run tools -- --only terraform-provider-matchbox`), so the
// generated code is the same as `cdktf get` would write. Runs on `npm install`/`npm ci` (postinstall) and
// as `npm run get`; it skips the work when the schema and the generator have not changed.
//
// It serves cdktf and CDK Terrain alike (README "cdktf's status and CDK Terrain"): the
// fork is installed under the name `cdktf`, so it takes the generator of whichever
// library `cdktf` resolves to.
"use strict";

const fs = require("node:fs");
const path = require("node:path");
const crypto = require("node:crypto");

const root = path.resolve(__dirname, "..");
const cdktfConfig = JSON.parse(fs.readFileSync(path.join(root, "cdktf.json"), "utf8"));
const outDir = path.resolve(root, cdktfConfig.codeMakerOutput || ".gen");
/** Each provider: its registry address, version, schema file and the folder under .gen/providers. */
const PROVIDERS = [
  { source: "equinix/metal", version: "3.3.0", schema: "equinix-metal-3.3.0.schema.json", folder: "metal" },
  { source: "poseidon/matchbox", version: "0.5.4", schema: "poseidon-matchbox-0.5.4.schema.json", folder: "matchbox" },
];

/**
 * The generator that matches the installed library: CDK Terrain's bindings need
 * CDK Terrain's generator (its base classes moved), cdktf's need cdktf's.
 */
function generatorFor(libraryName) {
  if (libraryName === "cdktf") return "@cdktf/provider-generator";
  if (libraryName === "cdktn") return "@cdktn/provider-generator";
  throw new Error(`"cdktf" resolves to the package ${libraryName}: expected cdktf, or cdktn installed as "cdktf": "npm:cdktn@<version>"`);
}

/**
 * CDK Terrain's generator writes `from 'cdktn'`; the app imports the library as
 * `cdktf` (the fork installed under that name). Both names would load two copies of the
 * library, so the bindings import `cdktf` too: one copy, one token map.
 */
function importAsCdktf(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) importAsCdktf(file);
    else if (entry.name.endsWith(".ts")) {
      const text = fs.readFileSync(file, "utf8");
      const rewritten = text.replace(/^(import [^;\n]* from )'cdktn';$/gm, "$1'cdktf';");
      if (rewritten !== text) fs.writeFileSync(file, rewritten);
    }
  }
}

function declaredProvider(provider) {
  // cdktf.json is the single place the provider version is declared.
  const declared = (cdktfConfig.terraformProviders || []).find((p) =>
    String(typeof p === "string" ? p : p.source).replace(/^registry\.terraform\.io\//, "").startsWith(provider.source),
  );
  const text = typeof declared === "string" ? declared : declared && `${declared.source}@${declared.version}`;
  if (!text || !text.endsWith(`@${provider.version}`)) {
    throw new Error(`cdktf.json must declare "${provider.source}@${provider.version}" in terraformProviders (found: ${text})`);
  }
}

/** The generator shells out to `terraform version`; keep it from complaining about a missing ~/.terraformrc. */
function quietTerraform() {
  process.env.CHECKPOINT_DISABLE = "1";
  const configured = process.env.TF_CLI_CONFIG_FILE;
  if (!configured || !fs.existsSync(configured)) {
    const empty = path.join(require("node:os").tmpdir(), "cdktf-empty.tfrc");
    fs.writeFileSync(empty, "");
    process.env.TF_CLI_CONFIG_FILE = empty;
  }
}

async function main() {
  quietTerraform();
  for (const provider of PROVIDERS) await generate(provider);
}

async function generate(provider) {
  declaredProvider(provider);
  const providerAddress = `registry.terraform.io/${provider.source}`;
  const providerVersion = provider.version;
  const folder = path.join(outDir, "providers", provider.folder);
  const stampFile = path.join(folder, ".schema-sha256");
  const library = require("cdktf/package.json").name;
  const generator = generatorFor(library);
  const generatorVersion = require(`${generator}/package.json`).version;
  const schemaText = fs.readFileSync(path.join(root, "providers", provider.schema), "utf8");
  // Switching library or generator regenerates, as a changed schema does.
  const digest = crypto.createHash("sha256").update(schemaText).update(`\n${generator}@${generatorVersion}`).digest("hex");
  if (fs.existsSync(stampFile) && fs.readFileSync(stampFile, "utf8") === digest) {
    console.log(`${provider.source} ${providerVersion} bindings are up to date in ${path.relative(root, folder)}`);
    return;
  }
  // cdktf's generator resolves jsii/jsii-pacmak when loaded; they are devDependencies.
  const { generateProviderBindingsFromSchema } = require(generator);
  const schema = JSON.parse(schemaText);
  schema.provider_versions = { [providerAddress]: providerVersion };
  fs.rmSync(folder, { recursive: true, force: true });
  await generateProviderBindingsFromSchema(outDir, schema);
  if (library === "cdktn") importAsCdktf(folder);
  fs.writeFileSync(stampFile, digest);
  console.log(`generated ${provider.source} ${providerVersion} bindings for ${library} with ${generator} ${generatorVersion} in ${path.relative(root, folder)}`);
}

main().catch((err) => {
  console.error(`generate-metal-bindings: ${err.message}`);
  process.exit(1);
});
