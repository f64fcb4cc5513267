#!/usr/bin/env node
// Generates the equinix/metal 3.3.0 cdktf bindings into .gen/providers/metal, the
// path `cdktf get` would use, from the provider schema kept in providers/.
//
// Why not `cdktf get`: it needs the terraform CLI to download the provider from the
// registry, and no prebuilt @cdktf/provider-metal package exists. The schema file
// is what `terraform providers schema -json` prints, so the generated code is the
// same as `cdktf get` would write. Runs on `npm install`/`npm ci` (postinstall) and
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
const schemaFile = path.join(root, "providers", "equinix-metal-3.3.0.schema.json");
const providerAddress = "registry.terraform.io/equinix/metal";
const providerVersion = "3.3.0";
const stampFile = path.join(outDir, "providers", "metal", ".schema-sha256");

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

function declaredMetalProvider() {
  // cdktf.json is the single place the provider version is declared.
  const declared = (cdktfConfig.terraformProviders || []).find((p) =>
    String(typeof p === "string" ? p : p.source).replace(/^registry\.terraform\.io\//, "").startsWith("equinix/metal"),
  );
  const text = typeof declared === "string" ? declared : declared && `${declared.source}@${declared.version}`;
  if (!text || !text.endsWith(`@${providerVersion}`)) {
    throw new Error(`cdktf.json must declare "equinix/metal@${providerVersion}" in terraformProviders (found: ${text})`);
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
  declaredMetalProvider();
  quietTerraform();
  const library = require("cdktf/package.json").name;
  const generator = generatorFor(library);
  const generatorVersion = require(`${generator}/package.json`).version;
  const schemaText = fs.readFileSync(schemaFile, "utf8");
  // Switching library or generator regenerates, as a changed schema does.
  const digest = crypto.createHash("sha256").update(schemaText).update(`\n${generator}@${generatorVersion}`).digest("hex");
  if (fs.existsSync(stampFile) && fs.readFileSync(stampFile, "utf8") === digest) {
    console.log(`equinix/metal ${providerVersion} bindings are up to date in ${path.relative(root, outDir)}/providers/metal`);
    return;
  }
  // cdktf's generator resolves jsii/jsii-pacmak when loaded; they are devDependencies.
  const { generateProviderBindingsFromSchema } = require(generator);
  const schema = JSON.parse(schemaText);
  schema.provider_versions = { [providerAddress]: providerVersion };
  fs.rmSync(path.join(outDir, "providers", "metal"), { recursive: true, force: true });
  await generateProviderBindingsFromSchema(outDir, schema);
  if (library === "cdktn") importAsCdktf(path.join(outDir, "providers", "metal"));
  fs.writeFileSync(stampFile, digest);
  console.log(`generated equinix/metal ${providerVersion} bindings for ${library} with ${generator} ${generatorVersion} in ${path.relative(root, outDir)}/providers/metal`);
}

main().catch((err) => {
  console.error(`generate-metal-bindings: ${err.message}`);
  process.exit(1);
});
